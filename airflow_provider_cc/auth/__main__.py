"""``python -m airflow_provider_cc.auth login|refresh``: the first refresh token of a v3 connection, and a keep-alive.

``login`` runs the device flow (default) or the authorization-code flow with PKCE (``--flow pkce``) and writes
the tokens where connection ``--conn-id`` reads them: when this machine's Airflow knows that connection, its
token store and chain (and its client id, secret, token URL and host, unless given), so a login repairs the
connection as it is; else the chain is named after the connection id, and the command prints the connection
to create, which holds no token. No secret is a command-line argument, so none reaches the shell history or
Airflow's CLI audit log (this is not an ``airflow`` command); none is printed or logged. A confidential app's
client secret is read from ``CC_CLIENT_SECRET`` (or the connection), a Redis token store's password from
``CC_REDIS_PASSWORD`` (or the connection); on a terminal either is asked for without echo.

``refresh`` refreshes the connection's tokens now (CC expires a refresh token unused for 180 days): schedule it
if no task uses the connection for months. It exits 1 when the token endpoint refused the refresh token.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from airflow_provider_cc.auth import flows
from airflow_provider_cc.exceptions import (
    ConstantContactError,
    ConstantContactInputError,
    ConstantContactTokenError,
    ConstantContactTokenStoreError,
)
from airflow_provider_cc.get_provider_info import V3_CONN_TYPE, V3_DEFAULT_CONN_ID, V3_DEFAULT_HOST, V3_TOKEN_URL

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_cc.auth.store import TokenState, TokenStore
    from airflow_provider_cc.hooks.connection_v3 import V3Settings

log = logging.getLogger(__name__)

SECRET_ENV = "CC_CLIENT_SECRET"
REDIS_PASSWORD_ENV = "CC_REDIS_PASSWORD"
LOCK_TIMEOUT = 180.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m airflow_provider_cc.auth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    login = sub.add_parser("login", help="authorize the app and store a new refresh token where the connection "
                                         "reads it")
    login.add_argument("--conn-id", default=V3_DEFAULT_CONN_ID, help="the connection that will use the tokens")
    login.add_argument("--client-id", default=None,
                       help="the application's API key (client id); default: the connection's login")
    login.add_argument("--flow", choices=("device", "pkce"), default="device")
    login.add_argument("--contact-data", action="store_true", help="also the contact_data scope (contact reports)")
    login.add_argument("--confidential", action="store_true",
                       help=f"the app has a client secret (read from {SECRET_ENV} or the connection, or asked for "
                            "without echo); implied when the connection has one")
    login.add_argument("--redirect-uri", default="https://localhost", help="pkce: the app's registered redirect URI")
    login.add_argument("--token-url", default=None, help=f"default: the connection's oauth_url, else {V3_TOKEN_URL}")
    login.add_argument("--authorize-url", default=None, help="pkce: default beside the token URL")
    login.add_argument("--device-url", default=None, help="device: default beside the token URL")
    login.add_argument("--host", default=None, help="the API host, for the printed connection; default: the "
                                                   f"connection's, else {V3_DEFAULT_HOST}")
    login.add_argument("--token-store", default=None,
                       help="airflow (an Airflow Variable; needs this machine's Airflow DB), a shared directory, or "
                            f"a redis:// URL (its password in {REDIS_PASSWORD_ENV}): the connection's oauth_store; "
                            "default: the connection's, else airflow")
    refresh = sub.add_parser("refresh", help="refresh a connection's tokens now (the 180-day keep-alive)")
    refresh.add_argument("--conn-id", default=V3_DEFAULT_CONN_ID)
    return p.parse_args(argv)


# ---- secrets: from the environment, the connection, or a prompt; never from the command line -------------------
def _ask(what: str, env: str, prompt: str) -> str:
    """A secret typed at the terminal without echo; a clear error where there is no terminal to ask on."""
    if not sys.stdin.isatty():
        raise ConstantContactInputError(f"no {what}: set {env} (there is no terminal to ask on)")
    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise ConstantContactInputError(f"no {what}: set {env} or type it at the prompt") from None


def _client_secret(a: argparse.Namespace, existing: V3Settings | None, client_id: str) -> str:
    known = existing.client_secret if existing is not None and existing.client_id == client_id else ""
    if not (a.confidential or known):
        return ""
    secret = os.environ.get(SECRET_ENV, "").strip() or known or _ask("client secret", SECRET_ENV,
                                                                           "Client secret (not shown): ").strip()
    if not secret:
        raise ConstantContactInputError(f"no client secret: set {SECRET_ENV} or type it at the prompt")
    return secret


def is_redis(spec: str) -> bool:
    from airflow_provider_cc.hooks.connection_v3 import REDIS_SCHEMES

    return "://" in spec and spec.split("://", 1)[0].lower() in REDIS_SCHEMES


def redis_password(url: str) -> str:
    """The password a Redis URL carries (in its user part or a ``password`` query argument), or ``""``."""
    parts = urlsplit(url)
    return unquote(parts.password or "") or dict(parse_qsl(parts.query)).get("password", "")


def without_password(url: str) -> str:
    """A Redis URL without its password (what may be printed)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# ---- the connection the tokens are for ------------------------------------------------------------------------
def read_connection(conn_id: str) -> tuple[V3Settings | None, str]:
    """``(settings, "")`` of connection ``conn_id`` as this machine's Airflow sees it (an environment variable,
    the metadata DB or a secrets backend), its secrets masked; ``(None, why)`` when it has no such v3
    connection."""
    from airflow_provider_cc._compat import get_connection, mask_secret
    from airflow_provider_cc.hooks.connection_v3 import V3Settings

    airflow_log = logging.getLogger("airflow")
    level = airflow_log.level
    airflow_log.setLevel(logging.CRITICAL)  # Airflow 2 logs a traceback for an unreachable backend
    try:
        conn = get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or a metadata DB that cannot be read
        log.debug("connection %s not read", conn_id, exc_info=True)
        return None, ("it is not defined here (an AIRFLOW_CONN_ variable, this machine's metadata DB or a secrets "
                      f"backend){'' if type(exc).__name__ == 'AirflowNotFoundException' else ' or cannot be read'}")
    finally:
        airflow_log.setLevel(level)
    if conn.conn_type != V3_CONN_TYPE:
        return None, f"it is a {flows.printable(conn.conn_type, 40)!r} connection, not {V3_CONN_TYPE}"
    settings = V3Settings.from_connection(conn)
    for secret in settings.secrets:
        mask_secret(secret)
    return settings, ""


@dataclass(frozen=True)
class Plan:
    """What a login uses: the connection's settings where the command line names none.

    :param client_id: the app's client id.
    :param client_secret: its secret, or empty (a public app).
    :param token_url: the token endpoint.
    :param host: the API host, for the printed connection.
    :param store: the token store (a Redis URL with its password: never printed).
    :param chain: the chain the tokens are stored under.
    :param redis_password: whether the store's Redis needs a password.
    """

    client_id: str
    client_secret: str
    token_url: str
    host: str
    store: str
    chain: str
    redis_password: bool

    @property
    def shown_store(self) -> str:
        return without_password(self.store) if is_redis(self.store) else self.store


def plan_login(a: argparse.Namespace, existing: V3Settings | None) -> Plan:
    """The login's settings, checked before anything is sent."""
    from airflow_provider_cc._compat import mask_secret
    from airflow_provider_cc.hooks.connection import _secret, with_password
    from airflow_provider_cc.hooks.connection_v3 import normalise_token_store, normalise_token_url

    client_id = a.client_id or (existing.client_id if existing else "")
    if not client_id:
        raise ConstantContactInputError(f"give --client-id (the app's API key): connection {a.conn_id!r} is not "
                                        "known here to take it from")
    client_id = _secret(client_id, "client id")
    token_url = normalise_token_url(a.token_url or (existing.token_url if existing else V3_TOKEN_URL),
                                    allow_insecure_http=False)
    store = normalise_token_store(a.token_store or (existing.token_store if existing else None))
    password = ""
    if is_redis(store):
        password = redis_password(store)
        if not password:
            known = existing.token_store if existing is not None and is_redis(existing.token_store) else ""
            password = os.environ.get(REDIS_PASSWORD_ENV, "") or (
                redis_password(known) if known and without_password(known) == store else "") or (_ask(
                "Redis password", REDIS_PASSWORD_ENV, "The token store's Redis password (not shown; Enter for "
                "none): ") if sys.stdin.isatty() else "")
            if password:
                store = with_password(store, password)
        if password:
            mask_secret(password)
            mask_secret(store)
    secret = _client_secret(a, existing, client_id)
    if secret:
        mask_secret(secret)
    host = a.host or (existing.base_url if existing else V3_DEFAULT_HOST)
    return Plan(client_id=client_id, client_secret=secret, token_url=token_url, host=host, store=store,
                chain=existing.chain if existing else a.conn_id, redis_password=bool(password))


def connection_json(plan: Plan) -> str:
    """The connection to create: no token in it (the store holds them under the chain); a secret only as a
    placeholder."""
    from airflow_provider_cc.hooks.connection import REDIS_PASSWORD

    extra: dict[str, Any] = {"oauth_url": plan.token_url, "oauth_chain": plan.chain}
    if plan.store != "airflow":
        extra["oauth_store"] = plan.shown_store
    if plan.redis_password:
        extra[REDIS_PASSWORD] = "<the Redis password>"
    conn: dict[str, Any] = {"conn_type": V3_CONN_TYPE, "host": plan.host, "login": plan.client_id, "extra": extra}
    if plan.client_secret:
        conn["password"] = "<the client secret>"
    return json.dumps(conn)


def _differences(plan: Plan, existing: V3Settings) -> list[str]:
    """What the existing connection would need changed to read the tokens this login stored."""
    found = []
    if existing.client_id != plan.client_id:
        found.append("its login (client id)")
    if existing.token_url != plan.token_url:
        found.append("its oauth_url")
    if existing.token_store != plan.store and not (
            is_redis(plan.store) and without_password(existing.token_store) == plan.shown_store):
        found.append("its oauth_store")
    return found


def _previous(store: TokenStore) -> TokenState | None:
    """The chain's state before this login, if it can be read (an unreadable one is replaced)."""
    try:
        return store.read()
    except ConstantContactTokenStoreError:
        return None


def _store_tokens(store: TokenStore, answer: dict[str, Any]) -> TokenState:
    """The new chain's first state, written under the store's lock (a refresh running meanwhile finishes first,
    then reads the new tokens)."""
    from airflow_provider_cc.auth.store import TokenState, fingerprint
    from airflow_provider_cc.auth.tokens import expiry_of

    refresh_token, access_token = answer["refresh_token"], answer["access_token"]
    with store.lock(LOCK_TIMEOUT):
        previous = _previous(store)
        now = time.time()
        state = TokenState(refresh_token=refresh_token, access_token=access_token, expires_at=expiry_of(answer, now),
                           refreshed_at=now, seed=fingerprint(refresh_token), scope=str(answer.get("scope") or ""),
                           generation=previous.generation + 1 if previous is not None else 0)
        store.write(state)
    return state


def login(a: argparse.Namespace) -> int:
    from airflow_provider_cc._compat import mask_secret
    from airflow_provider_cc.auth.store import open_store

    existing, why = read_connection(a.conn_id)
    plan = plan_login(a, existing)
    store = open_store(plan.store, plan.chain, plan.client_id)
    try:
        with store.lock(LOCK_TIMEOUT):  # the store answers (and takes writes) before anyone approves anything
            previous = _previous(store)
    except ConstantContactTokenStoreError as exc:
        if is_redis(plan.store) and not plan.redis_password:
            raise ConstantContactTokenStoreError(f"{exc}. If the Redis server needs a password, set "
                                                 f"{REDIS_PASSWORD_ENV}") from None
        raise
    # a new login of a chain keeps the scopes it had (contact reports need contact_data)
    scope = flows.scopes(a.contact_data or (previous is not None and "contact_data" in str(previous.scope).split()))
    if a.flow == "device":
        answer = flows.device_flow(plan.token_url, plan.client_id, scope, device_url=a.device_url,
                                   client_secret=plan.client_secret)
    else:
        answer = flows.pkce_flow(plan.token_url, plan.client_id, scope, a.redirect_uri, read=input,
                                 authorize=a.authorize_url, client_secret=plan.client_secret)
    for value in (answer["refresh_token"], answer["access_token"]):
        mask_secret(value)
    _store_tokens(store, answer)
    print(f"Authorized (scopes: {flows.printable(answer.get('scope') or scope, 200)}). The tokens are in "
          f"{store.where} (chain {plan.chain!r}).")
    if existing is not None:
        changes = _differences(plan, existing)
        if not changes:
            print(f"Connection {a.conn_id!r} reads them as it is: nothing to change. For reference, the same "
                  "connection without its optional extras:")
        else:
            print(f"Connection {a.conn_id!r} reads its tokens elsewhere: change {' and '.join(changes)}, or "
                  "replace it with this one (in the UI, the REST API or a secrets backend), e.g.:")
    else:
        print(f"Connection {a.conn_id!r}: {why}. Create it (in the UI, the REST API or a secrets backend; not with "
              "'airflow connections add', whose command line Airflow's audit log keeps), e.g.:")
    print(f"export AIRFLOW_CONN_{a.conn_id.upper()}={shlex.quote(connection_json(plan))}")
    if plan.client_secret or plan.redis_password:
        print("Put the " + " and the ".join(n for n, used in (("client secret", plan.client_secret),
                                                               ("Redis password", plan.redis_password)) if used)
              + " in place of the placeholders.")
    return 0


def refresh(a: argparse.Namespace) -> int:
    from airflow_provider_cc.auth.tokens import reauthorize_hint
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

    settings, why = read_connection(a.conn_id)
    if settings is None:
        raise ConstantContactInputError(f"connection {a.conn_id!r}: {why}")
    tokens = ConstantContactV3Hook(a.conn_id, settings=settings).tokens
    before = tokens.store.read()
    state = tokens.refresh_now()
    if before is not None and state.generation <= before.generation and state.refreshed_at <= before.refreshed_at:
        # no new tokens although no other process refreshed: the token endpoint refused the refresh token
        raise ConstantContactTokenError(
            f"connection {a.conn_id!r}: the token endpoint refused the stored refresh token (invalid_grant): the "
            f"refresh-token chain is broken. {reauthorize_hint(settings)}")
    kind = ("new tokens" if state.rotating is None else
            "a new refresh token (rotating)" if state.rotating else "the same refresh token (long-lived)")
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(state.expires_at))
    print(f"Connection {a.conn_id!r}: the token endpoint issued {kind}; stored in {tokens.store.where}; the access "
          f"token is valid until {until}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        return login(a) if a.command == "login" else refresh(a)
    except ConstantContactError as exc:
        print(f"{a.command} failed: {flows.printable(' '.join(str(exc).split()), 2000)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback (its text may quote a secret): the type, and where to look
        log.debug("%s failed", a.command, exc_info=True)
        print(f"{a.command} failed: unexpected {type(exc).__name__} (a defect of the provider: please report it)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
