"""v3 access tokens that never break the refresh-token chain.

One :class:`TokenManager` per connection and process, shared by every thread and hook of the process. It hands
out the cached access token until shortly before it expires; then, holding the store's lock (one refresh at
a time per connection across threads, processes and machines), it re-reads the store (another process may
have refreshed already) and only then calls the token endpoint, at most once a second per application.

A rotating refresh token (the answer carries a new one) is written to the store **before** the new access
token is handed out: if the write fails, the task fails before using it, saying what to do. An answer of
``invalid_grant`` re-reads the store and tries a newer token (another process may have rotated it), then the
connection's own token (after a new login), before it declares the chain broken. Every token and the client
secret is masked the moment it is read or received; no text of the token endpoint reaches a log or an error
unredacted.

The token call is bounded like every API request (:func:`~airflow_provider_cc.hooks.transport.exchange`): the
connection's ``timeout`` (its ``oauth_timeout`` when set) bounds the whole answer, and an answer above
:data:`TOKEN_ANSWER_BYTES` once decoded is refused unread. A stated expiry already past (a clock skew, an
``expires_in`` that is no duration) is not believed: such a token counts as living :data:`MIN_LIFETIME` (or its
JWT's own ``exp - iat``).

What a rotating chain cannot survive: a process killed after the token endpoint rotated the refresh token and
before the store holds the new one (the old one is dead, the new one died with the process). No client can close
that window; it lasts one store write.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.auth.store import TokenState, TokenStore, fingerprint, open_store
from airflow_provider_cc.exceptions import (
    ConstantContactServerError,
    ConstantContactTokenError,
    ConstantContactTokenStoreError,
)
from airflow_provider_cc.hooks.limiter import limiter_for
from airflow_provider_cc.hooks.transport import (
    _REDACTOR,
    _Retryable,
    exchange,
    new_session,
    parse_error_body,
    parse_retry_after,
    secret_pattern,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_cc.hooks.connection_v3 import V3Settings

log = logging.getLogger(__name__)

DAY = 86_400.0
# Constant Contact expires a refresh token unused for 180 days; warn well before.
EXPIRES_UNUSED_AFTER_DAYS = 180
WARN_UNUSED_AFTER_DAYS = 120
# Refresh this long before expiry (a fifth of the lifetime for short-lived tokens).
EARLY = 300.0
TOKEN_RATE = 1.0  # token calls per second per application (Constant Contact's limit)
TOKEN_CALL_RETRIES = 8
STORE_WRITE_TRIES = 3
LOCK_TIMEOUT = 180.0
# A token answer is a few kilobytes (a JWT of a few scopes); anything far larger is no token answer.
TOKEN_ANSWER_BYTES = 256 * 1024
# How long an access token counts as living when its stated expiry is impossible (already past): short, so a
# wrong guess costs a refresh every few minutes, not a refresh per request; a 401 still refreshes at once.
MIN_LIFETIME = 600.0
# No stated lifetime is believed beyond this: Constant Contact's access tokens live a static 24 hours, so a
# longer one is a malformed answer, and believing it would keep its expiry in the store for weeks.
MAX_LIFETIME = DAY


def reauthorize_hint(settings: V3Settings) -> str:
    """What to run when the refresh token no longer works: the login command for this connection."""
    return (f"Re-authorize: python -m airflow_provider_cc.auth login --conn-id {settings.conn_id}, run where Airflow "
            f"has connection {settings.conn_id!r} (it takes the client id from it and stores the new refresh token "
            f"where the connection reads it)")


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, without checking its signature; ``None`` if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (epoch seconds), without checking its signature; ``None`` if not a JWT."""
    return _number((jwt_claims(token) or {}).get("exp"))


_skew_logged = threading.Event()


def expiry_of(answer: dict[str, Any], now: float) -> float:
    """When an access token expires: the earliest that is still ahead of its JWT ``exp`` and ``expires_in``
    (seconds from now; above 1e9 an epoch time, as CC's SDK describes it), at most :data:`MAX_LIFETIME` away;
    24 hours when the answer states neither. A stated expiry already past (a clock behind or ahead of the
    authorization server's, an ``expires_in`` that is no duration) is not believed: the token then lives its
    JWT's ``exp - iat`` from now when that is a lifetime, else :data:`MIN_LIFETIME`; the skew is logged once."""
    claims = jwt_claims(str(answer.get("access_token", ""))) or {}
    stated: list[tuple[float, str]] = []
    exp = _number(claims.get("exp"))
    if exp is not None:
        stated.append((exp, "the JWT's exp"))
    seconds = _number(answer.get("expires_in"))
    if seconds is not None:
        stated.append((seconds if seconds > 1e9 else now + seconds, f"expires_in {seconds:g}"))
    if not stated:
        return now + DAY
    ahead = [when for when, _ in stated if when > now]
    past = [(when, source) for when, source in stated if when <= now]
    if past and not _skew_logged.is_set():
        _skew_logged.set()
        when, source = min(past)
        log.warning("the token endpoint's answer says its access token expired %.0f s ago (%s): this machine's "
                    "clock and the authorization server's disagree, or expires_in is not a number of seconds. %s "
                    "(logged once per process)", now - when, source,
                    "Using the other stated expiry." if ahead else
                    f"Counting the token as living {MIN_LIFETIME:.0f} s (or as its JWT's exp - iat says); check "
                    "the machine's clock (NTP)")
    if ahead:
        return min(min(ahead), now + MAX_LIFETIME)
    issued = _number(claims.get("iat"))
    lifetime = exp - issued if exp is not None and issued is not None else 0.0
    return now + (lifetime if 0 < lifetime <= MAX_LIFETIME else MIN_LIFETIME)


class _InvalidGrant(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TokenManager:
    """A connection's tokens in this process: the cache, the refresh under the store's lock, the token calls.

    :param settings: the connection's checked settings.
    :param store: where the tokens live (default: the one the connection names).
    :param sleep: how to wait between token-call retries.
    """

    def __init__(self, settings: V3Settings, store: TokenStore | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.store = store or open_store(settings.token_store, settings.chain, settings.client_id)
        self.sleep = sleep
        self.token_calls = 0  # token-endpoint requests this process sent (refreshes, retries included)
        self._lock = threading.RLock()
        self._state: TokenState | None = None
        self._refused: set[str] = set()  # access tokens the API answered 401 to
        self._seen = False  # whether the store held tokens when this process read or wrote it
        self._secrets: set[str] = set(settings.secrets)
        self._pattern = secret_pattern(self._secrets)
        if settings.client_secret:  # the Basic header, which a server may echo
            self._protect(base64.b64encode(f"{settings.client_id}:{settings.client_secret}".encode()).decode())
        self._limiter = limiter_for(self, settings.token_url, settings.client_id, TOKEN_RATE,
                                    settings.rate_limiter_url)
        self._session = new_session(settings.token_url)

    # ---- secrets --------------------------------------------------------------------------------------------
    def _protect(self, *values: str) -> None:
        """Mask each new secret with Airflow's masker and the transport's redaction, the moment it arrives."""
        from airflow_provider_cc._compat import mask_secret

        new = {v for v in values if v and v not in self._secrets}
        if not new:
            return
        for value in new:
            mask_secret(value)
        self._secrets |= new
        self._pattern = secret_pattern(self._secrets)
        _REDACTOR.add(new)

    def redact(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub("***", text)

    @property
    def secrets(self) -> frozenset[str]:
        """Every secret this manager has seen (the client secret, refresh and access tokens)."""
        return frozenset(self._secrets)

    # ---- the access token -------------------------------------------------------------------------------------
    def _usable(self, state: TokenState | None, now: float, after: float | None = None) -> bool:
        """Whether ``state``'s access token may be handed out: not refused, not about to expire, and (``after``)
        from a refresh answered after that time."""
        if state is None or not state.access_token or state.access_token in self._refused:
            return False
        if after is not None and state.refreshed_at < after:
            return False
        lifetime = max(state.expires_at - state.refreshed_at, 0.0)
        return state.expires_at - min(EARLY, lifetime / 5) > now

    def _read(self) -> TokenState | None:
        state = self.store.read()
        if state is None and self._seen:
            raise ConstantContactTokenStoreError(
                f"{self.store.where} reads as empty, although this process read or wrote tokens there before: the "
                "store is failing (for an Airflow Variable: Airflow answers 'not found' while its metadata DB or "
                "API server is down). Task retries apply; the refresh token is not affected. (Deleted on purpose? "
                "A new process starts from the connection's refresh token.)")
        if state is not None:
            self._seen = True
            self._protect(state.refresh_token, state.access_token)
        return state

    def access_token(self, after: float | None = None) -> str:
        """A valid access token: cached, else the store's, else a refresh (persisted before it is returned).

        :param after: a time (epoch seconds) the API answered 401: only a token from a refresh answered after it
            is handed out (never one another thread refreshed before that 401).
        """
        with self._lock:
            now = time.time()
            if self._usable(self._state, now, after):
                assert self._state is not None
                return self._state.access_token
            state = self._read()
            if not self._usable(state, now, after):
                with self.store.lock(LOCK_TIMEOUT):
                    state = self._read()
                    if not self._usable(state, time.time(), after):
                        state = self._refresh(state, after=after)
            assert state is not None
            self._state = state
            return state.access_token

    def refresh_now(self) -> TokenState:
        """Refresh at once, whatever the cache says, under the store's lock (the CLI's ``auth refresh``, the
        180-day keep-alive), and return the new state, stored.

        It always calls the token endpoint, and returns only after a refresh the endpoint accepted (with the
        store's token, or with a newer one the store shows after an ``invalid_grant``: another process rotated
        the chain meanwhile). A still-valid access token is never reported as success.

        :raises ConstantContactTokenError: the token endpoint refused every refresh token known (the chain is
            broken; the message names the connection and the login command), refused the client, or rotated the
            token while the store could not be written.
        :raises ConstantContactTokenStoreError: the store cannot be read, locked or written (retry later).
        :raises ConstantContactServerError: the token endpoint could not be reached or kept failing.
        """
        with self._lock, self.store.lock(LOCK_TIMEOUT):
            self._state = self._refresh(self._read(), forced=True)
            return self._state

    def unauthorized(self, token: str) -> float:
        """The API answered 401 to ``token``: never hand it out again. Returns the moment of the 401, for
        :meth:`access_token` (``after``): the retry waits for a refresh answered after it."""
        with self._lock:
            self._refused.add(token)
            return time.time()

    def state(self) -> TokenState | None:
        """The state this process holds (for tests and the login command)."""
        return self._state

    # ---- refreshing ---------------------------------------------------------------------------------------------
    def _refresh(self, state: TokenState | None, *, forced: bool = False, after: float | None = None) -> TokenState:
        """Refresh under the store's lock: the store's token first, then a newer one the store shows after an
        ``invalid_grant``, then the connection's own; persist before returning. Unless ``forced``, a newer
        usable state the store shows after an ``invalid_grant`` (another process refreshed) is taken as is."""
        settings = self.settings
        candidates = [t for t in ((state.refresh_token if state else ""), settings.refresh_token) if t]
        if not candidates:
            raise ConstantContactTokenError(
                f"connection {settings.conn_id!r} has no refresh token, and {self.store.where} holds none. "
                + reauthorize_hint(settings))
        self._warn_if_unused_for_long(state)
        tried: list[str] = []
        refusal = ""
        while candidates:
            candidate = candidates.pop(0)
            if candidate in tried:
                continue
            tried.append(candidate)
            try:
                answer = self._token_call(candidate)
            except _InvalidGrant as exc:
                refusal = exc.detail
                fresh = self._read()
                # Only a refresh token the store shows anew counts: the refused one's access token may still be
                # valid for hours, but its chain is dead (another process's crash, a reuse, a revocation).
                if fresh is not None and fresh.refresh_token not in tried:
                    if not forced and self._usable(fresh, time.time(), after):
                        return fresh  # another process refreshed meanwhile: use its tokens
                    candidates.insert(0, fresh.refresh_token)
                    state = fresh
                log.warning("connection %s: the token endpoint refused a refresh token (%s); %s", settings.conn_id,
                            refusal, "trying another" if candidates else "no other token to try")
                continue
            return self._persist(answer, candidate, state)
        raise ConstantContactTokenError(
            f"connection {settings.conn_id!r}: the refresh-token chain is broken: the token endpoint refused "
            f"every refresh token known ({len(tried)} tried: {refusal}). A rotated token was lost, the app's "
            "secret changed, the user revoked access, or the token went unused for 180 days. "
            + reauthorize_hint(settings))

    def _persist(self, answer: dict[str, Any], used: str, state: TokenState | None) -> TokenState:
        now = time.time()
        access = answer["access_token"]
        new_refresh = str(answer.get("refresh_token") or "") or used
        self._protect(access, new_refresh)
        rotating = new_refresh != used
        new = TokenState(
            refresh_token=new_refresh, access_token=access, expires_at=expiry_of(answer, now), refreshed_at=now,
            rotating=rotating, seed=(state.seed if state and state.seed else fingerprint(new_refresh)),
            generation=(state.generation if state else 0) + 1, scope=str(answer.get("scope") or ""))
        failure: ConstantContactTokenStoreError | None = None
        for attempt in range(STORE_WRITE_TRIES):
            try:
                self.store.write(new)
                self._seen = True
                return new
            except ConstantContactTokenStoreError as exc:
                failure = exc
                if attempt + 1 < STORE_WRITE_TRIES:
                    time.sleep(0.5 * (attempt + 1))
        if not rotating:  # nothing to lose: the refresh token is unchanged, only other processes' cache misses
            log.warning("connection %s: the new access token could not be stored (%s); other processes will "
                        "refresh on their own", self.settings.conn_id, failure)
            return new
        raise ConstantContactTokenError(
            f"connection {self.settings.conn_id!r}: the token endpoint rotated the refresh token, but "
            f"{self.store.where} cannot be written ({failure}); the new access token was not used. The previous "
            "refresh token is now dead and the new one exists only in this process, so the chain ends with it. "
            f"Make the store writable (or choose another oauth_store), then: {reauthorize_hint(self.settings)}")

    def _warn_if_unused_for_long(self, state: TokenState | None) -> None:
        if state is None or not state.refreshed_at:
            return
        days = (time.time() - state.refreshed_at) / DAY
        if days >= WARN_UNUSED_AFTER_DAYS:
            log.warning(
                "connection %s: its refresh token was last used %.0f days ago; Constant Contact expires a refresh "
                "token unused for %d days (rotating and long-lived alike). Run a task on this connection at least "
                "every few weeks (or: python -m airflow_provider_cc.auth refresh --conn-id %s).",
                self.settings.conn_id, days, EXPIRES_UNUSED_AFTER_DAYS, self.settings.conn_id)

    # ---- the token endpoint ----------------------------------------------------------------------------------
    def _token_call(self, refresh_token: str) -> dict[str, Any]:
        """One refresh: ``grant_type=refresh_token``, at most once a second per application, 429 waited for."""
        settings = self.settings
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        auth = None
        if settings.client_secret:
            auth = (settings.client_id, settings.client_secret)
        else:
            data["client_id"] = settings.client_id
        what = f"connection {settings.conn_id}: token refresh"
        lost = ""  # why an earlier attempt's answer never arrived (the server may have rotated the token then)
        for attempt in range(1, TOKEN_CALL_RETRIES + 2):
            slot = self._limiter.acquire(self.sleep)
            self.store.confirm_held()  # never a token call without the lock (a lost lock: another may refresh)
            self.token_calls += 1
            retry_after: float | None = None
            try:
                reply = exchange(self._session, "POST", settings.token_url, data=data, auth=auth,
                                 timeout=settings.token_timeout, cap=TOKEN_ANSWER_BYTES, what=what, slot=slot,
                                 oversize=f"{TOKEN_ANSWER_BYTES:,} bytes once decoded and was not read further (a "
                                 "token answer is a few kilobytes): check the connection's token URL")
            except _Retryable as failure:
                reason = lost = failure.reason
            else:
                status = reply.status
                if status == 200:
                    try:
                        answer = json.loads(reply.body)
                    except (ValueError, RecursionError):
                        answer = None
                    if isinstance(answer, dict) and isinstance(answer.get("access_token"), str) \
                            and answer["access_token"]:
                        return answer
                    reason = "the token endpoint's answer holds no access_token"
                elif 300 <= status < 400:
                    raise ConstantContactTokenError(f"{what}: the token URL answered a redirect (HTTP {status}); "
                                                    "check the connection's oauth_url", status=status)
                else:
                    key, message = parse_error_body(reply.body.decode("utf-8", "replace"))
                    detail = self.redact(f"HTTP {status}" + (f" {key}" if key else "") + (f": {message}" if message
                                                                                            else ""))
                    if (key or "").lower() == "invalid_grant":
                        raise _InvalidGrant(detail + (
                            f"; an earlier attempt's answer never arrived ({lost}): if the server had answered it, "
                            "it rotated this refresh token, and its successor was in that answer. A longer "
                            "oauth_timeout keeps such an answer" if lost else ""))
                    if status in (400, 401, 403):
                        raise ConstantContactTokenError(
                            f"{what} refused ({detail}): check the connection's client id, client secret and token "
                            f"URL. {reauthorize_hint(settings)}", status=status, error_key=key)
                    if status != 429 and status < 500:
                        raise ConstantContactTokenError(f"{what} failed ({detail})", status=status, error_key=key)
                    if status == 429:
                        self._limiter.penalise(slot)
                    reason = ("the token endpoint's 1 request/s limit" if status == 429 else "server error") + \
                        f" ({detail})"
                    retry_after = parse_retry_after(reply.headers.get("Retry-After"))
            if attempt > TOKEN_CALL_RETRIES:
                raise ConstantContactServerError(f"{what}: {reason}; gave up after {attempt} attempts")
            delay = min(retry_after if retry_after is not None else 1.0 * attempt, 30.0) + random.uniform(0, 0.5)
            log.warning("%s: %s; retry %d of %d in %.1f s", what, reason, attempt, TOKEN_CALL_RETRIES, delay)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


_MANAGERS: dict[tuple[str, ...], TokenManager] = {}
_MANAGERS_LOCK = threading.Lock()


def manager_for(settings: V3Settings, store: TokenStore | None = None) -> TokenManager:
    """The one :class:`TokenManager` of this connection in this process (a given store: a manager of its own)."""
    if store is not None:
        return TokenManager(settings, store)
    key = (settings.conn_id, settings.chain, settings.client_id, settings.token_url, settings.token_store,
           fingerprint(settings.refresh_token or "-"), fingerprint(settings.client_secret or "-"))
    with _MANAGERS_LOCK:
        manager = _MANAGERS.get(key)
        if manager is None:
            manager = _MANAGERS[key] = TokenManager(settings)
        return manager

