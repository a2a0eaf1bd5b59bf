"""``python -m airflow_provider_cc.auth login|refresh``: the first refresh token of a v3 connection, and a keep-alive.

``login`` runs the device flow (default) or the authorization-code flow with PKCE (``--flow pkce``), writes the
tokens to the token store the connection will read (an Airflow Variable by default), and prints the connection
to create, which holds no token. No secret is a command-line argument, so none reaches the shell history or
Airflow's CLI audit log (this is not an ``airflow`` command); none is printed or logged. A confidential app's
client secret is read from ``CC_CLIENT_SECRET`` or asked for without echo.

``refresh`` refreshes the connection's tokens now (CC expires a refresh token unused for 180 days): schedule it
if no task uses the connection for months.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import sys
import time
from typing import TYPE_CHECKING

from airflow_provider_cc.auth import flows
from airflow_provider_cc.auth.store import TokenState, fingerprint, open_store
from airflow_provider_cc.exceptions import ConstantContactError
from airflow_provider_cc.get_provider_info import V3_CONN_TYPE, V3_DEFAULT_CONN_ID, V3_DEFAULT_HOST, V3_TOKEN_URL

if TYPE_CHECKING:
    from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m airflow_provider_cc.auth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    login = sub.add_parser("login", help="authorize the app once and store its first refresh token")
    login.add_argument("--client-id", required=True, help="the application's API key (client id)")
    login.add_argument("--conn-id", default=V3_DEFAULT_CONN_ID, help="the connection that will use the tokens")
    login.add_argument("--flow", choices=("device", "pkce"), default="device")
    login.add_argument("--contact-data", action="store_true", help="also the contact_data scope (contact reports)")
    login.add_argument("--confidential", action="store_true",
                       help="the app has a client secret (read from CC_CLIENT_SECRET, or asked for without echo)")
    login.add_argument("--redirect-uri", default="https://localhost", help="pkce: the app's registered redirect URI")
    login.add_argument("--token-url", default=V3_TOKEN_URL)
    login.add_argument("--authorize-url", default=None, help="pkce: default beside the token URL")
    login.add_argument("--device-url", default=None, help="device: default beside the token URL")
    login.add_argument("--host", default=V3_DEFAULT_HOST, help="the API host, for the printed connection")
    login.add_argument("--token-store", default="airflow",
                       help="airflow (an Airflow Variable; needs this machine's Airflow DB), a shared directory, or "
                            "a redis:// URL: the connection's oauth_store")
    refresh = sub.add_parser("refresh", help="refresh a connection's tokens now (the 180-day keep-alive)")
    refresh.add_argument("--conn-id", default=V3_DEFAULT_CONN_ID)
    return p.parse_args(argv)


def _client_secret(confidential: bool) -> str:
    if not confidential:
        return ""
    secret = os.environ.get("CC_CLIENT_SECRET") or getpass.getpass("Client secret (not shown): ")
    if not secret.strip():
        raise ConstantContactError("no client secret: set CC_CLIENT_SECRET or type it at the prompt")
    return secret.strip()


def connection_json(a: argparse.Namespace, chain: str) -> str:
    """The connection to create: no token in it (the store holds them under ``chain``); a secret only as a
    placeholder."""
    extra = {"oauth_url": a.token_url, "oauth_chain": chain}
    if a.token_store != "airflow":
        extra["oauth_store"] = a.token_store
    conn = {"conn_type": V3_CONN_TYPE, "host": a.host, "login": a.client_id, "extra": extra}
    if a.confidential:
        conn["password"] = "<the client secret>"
    return json.dumps(conn)


def login(a: argparse.Namespace) -> int:
    from airflow_provider_cc._compat import mask_secret
    from airflow_provider_cc.hooks.connection_v3 import normalise_token_store, normalise_token_url

    token_url = normalise_token_url(a.token_url, allow_insecure_http=False)
    store_spec = normalise_token_store(a.token_store)
    secret = _client_secret(a.confidential)
    if secret:
        mask_secret(secret)
    scope = flows.scopes(a.contact_data)
    if a.flow == "device":
        answer = flows.device_flow(token_url, a.client_id, scope, device_url=a.device_url, client_secret=secret)
    else:
        answer = flows.pkce_flow(token_url, a.client_id, scope, a.redirect_uri, read=input,
                                 authorize=a.authorize_url, client_secret=secret)
    refresh_token, access_token = answer["refresh_token"], answer["access_token"]
    for value in (refresh_token, access_token):
        mask_secret(value)
    from airflow_provider_cc.auth.tokens import expiry_of

    now = time.time()
    chain = f"rt{fingerprint(refresh_token)[:16]}"  # what the connection's oauth_chain names
    store = open_store(store_spec, chain, a.client_id)
    store.write(TokenState(refresh_token=refresh_token, access_token=access_token, expires_at=expiry_of(answer, now),
                           refreshed_at=now, seed=fingerprint(refresh_token), scope=str(answer.get("scope") or "")))
    print(f"Authorized (scopes: {answer.get('scope') or scope}). The tokens are in {store.where}.")
    variable = f"AIRFLOW_CONN_{a.conn_id.upper()}"
    print(f"Create the connection {a.conn_id!r} (in the UI, the REST API or a secrets backend; not with "
          f"'airflow connections add', whose command line Airflow's audit log keeps), e.g.:\n"
          f"export {variable}={shlex.quote(connection_json(a, chain))}")
    return 0


def refresh(a: argparse.Namespace) -> int:
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

    hook = ConstantContactV3Hook(a.conn_id)
    state = hook.tokens.refresh_now()
    expires = time.strftime(" (access token valid until %Y-%m-%d %H:%M UTC)",
                                                     time.gmtime(state.expires_at))
    print(f"Connection {a.conn_id!r}: tokens fresh in {hook.tokens.store.where}{expires}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        return login(a) if a.command == "login" else refresh(a)
    except ConstantContactError as exc:
        print(f"{a.command} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
