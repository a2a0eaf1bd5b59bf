"""Getting the first refresh token: Constant Contact's device flow and the authorization-code flow with PKCE.

Both need a person at a browser once. Neither logs a token or a secret; the caller stores what they return.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import time
import unicodedata
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from airflow_provider_cc.exceptions import ConstantContactServerError, ConstantContactTokenError
from airflow_provider_cc.hooks.transport import _Retryable, exchange, new_session, parse_error_body, secret_pattern

if TYPE_CHECKING:
    from collections.abc import Callable

AUTHORIZE_URL = "https://authz.constantcontact.com/oauth2/default/v1/authorize"
DEVICE_URL = "https://authz.constantcontact.com/oauth2/default/v1/device/authorize"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
BASE_SCOPES = ("campaign_data", "offline_access")
SLOW_DOWN_STEP = 5.0  # RFC 8628: each slow_down adds 5 s to the polling interval
DEFAULT_INTERVAL = 5.0  # RFC 8628 §3.2, when the server names none
MAX_INTERVAL = 60.0  # a server asking for more is not waited for longer between polls
DEFAULT_CODE_LIFETIME = 600.0
MAX_CODE_LIFETIME = 3600.0  # the command never waits for an approval longer than this
TIMEOUT = 60.0  # one request to the authorization server, as a whole
POLL_TIMEOUT = 30.0  # one poll of the device flow, as a whole (and never past the code's lifetime)
MAX_ANSWER_BYTES = 1024 * 1024  # a token answer is a few kB
_UNPRINTABLE = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def scopes(contact_data: bool = False) -> str:
    """The scope string: ``campaign_data offline_access`` (+ ``contact_data`` for the contact reports)."""
    return " ".join((*BASE_SCOPES, *(("contact_data",) if contact_data else ())))


def endpoint_of(token_url: str, path: str) -> str:
    """Another endpoint of the authorization server that serves ``token_url`` (``.../v1/token``)."""
    base = token_url.rsplit("/", 1)[0]
    return f"{base}/{path}"


def _post(url: str, data: dict[str, str], client_id: str, client_secret: str, timeout: float,
          what: str) -> tuple[int, dict[str, Any]]:
    """One form POST to the authorization server, bounded as every request of the provider is (``timeout`` for
    the whole exchange, the decoded answer capped); ``(status, the JSON object or {})``. The client
    authenticates with HTTP Basic when it has a secret (RFC 6749 §2.3.1), else names itself in the form."""
    auth = (client_id, client_secret) if client_secret else None
    if not client_secret:
        data = {**data, "client_id": client_id}
    try:
        with new_session(url) as session:  # closed at once: a poll cut short leaves no socket open
            answer = exchange(session, "POST", url, data=data, auth=auth, timeout=timeout, cap=MAX_ANSWER_BYTES,
                              oversize=f"{MAX_ANSWER_BYTES:,} bytes once decoded (a token answer is a few kB)",
                              what=what)
    except _Retryable as exc:
        raise ConstantContactServerError(f"{what}: {exc.reason}") from None
    if 300 <= answer.status < 400:
        raise ConstantContactTokenError(f"{what}: the authorization server answered a redirect (HTTP "
                                        f"{answer.status}); check --token-url and --device-url", status=answer.status)
    try:
        body = json.loads(answer.body)
    except (ValueError, RecursionError):
        body = {}
    return answer.status, body if isinstance(body, dict) else {}


def _refused(what: str, status: int, body: dict[str, Any], *hide: str) -> ConstantContactTokenError:
    """The server's refusal, its text redacted of every secret of the flow (a server may echo them) and safe
    for a terminal."""
    found, text = parse_error_body(json.dumps(body))  # OAuth2's error/error_description, or the API's error_key
    key = found or ""
    pattern = secret_pattern(hide)
    detail = f"HTTP {status}" + (f" {key}" if key else "") + (f": {text}" if text else "")
    detail = detail[:300]
    detail = printable(detail if pattern is None else pattern.sub("***", detail))
    return ConstantContactTokenError(f"{what} refused ({detail})", status=status, error_key=key[:100] or None)


def tokens_ok(body: dict[str, Any], what: str) -> dict[str, Any]:
    """The token answer, checked: an access token, and the refresh token only ``offline_access`` brings."""
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise ConstantContactTokenError(f"{what}: the answer holds no access token")
    if not isinstance(body.get("refresh_token"), str) or not body["refresh_token"]:
        raise ConstantContactTokenError(
            f"{what}: the answer holds no refresh token. The scope must include offline_access, and the app (in "
            "Constant Contact's v3 developer portal) must allow refresh tokens")
    return body


def printable(text: Any, limit: int = 500) -> str:
    """``text`` safe for a terminal: control and format characters (escape sequences, bidi overrides) shown
    as escapes, never sent raw; at most ``limit`` characters."""
    shown = "".join(ch if unicodedata.category(ch) not in _UNPRINTABLE else ch.encode("unicode_escape").decode()
                    for ch in str(text))
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _seconds(start: dict[str, Any], name: str, default: float, maximum: float) -> float:
    """A duration of the device authorization's answer: the default when absent, at most ``maximum``; anything
    but a positive number is a malformed answer."""
    value = start.get(name)
    if value is None:
        return default
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        seconds = float(value)
    except (ValueError, OverflowError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConstantContactTokenError(
            f"the device authorization answered {name}={printable(repr(value), 40)}, not a positive number of "
            "seconds (a malformed answer); run login again, or check --device-url")
    return min(seconds, maximum)


def device_flow(token_url: str, client_id: str, scope: str, *, device_url: str | None = None,
                client_secret: str = "", show: Callable[[str], None] = print,
                sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Run the device flow: show the verification URL and code, poll at the server's interval (slower on
    ``slow_down``; at most :data:`MAX_INTERVAL`), and give up when the code expires: the deadline is checked
    before every wait, no wait passes it, and each poll is bounded as a whole by it.

    :param token_url: the token endpoint.
    :param client_id: the application's client id.
    :param scope: space-separated scopes.
    :param device_url: the device-authorize endpoint (default: beside the token endpoint).
    :param client_secret: for a confidential app; empty for a public one.
    :param show: where the instructions for the person go (already safe for a terminal).
    :param sleep: how to wait between polls.
    """
    status, start = _post(device_url or endpoint_of(token_url, "device/authorize"), {"scope": scope}, client_id,
                          client_secret, TIMEOUT, "the device authorization")
    if status != 200:
        raise _refused("the device authorization", status, start, client_secret)
    device_code = start.get("device_code")
    if not isinstance(device_code, str) or not device_code:
        raise ConstantContactTokenError("the device authorization answered no device_code (a malformed answer); "
                                        "run login again, or check --device-url")
    interval = _seconds(start, "interval", DEFAULT_INTERVAL, MAX_INTERVAL)
    deadline = time.monotonic() + _seconds(start, "expires_in", DEFAULT_CODE_LIFETIME, MAX_CODE_LIFETIME)
    link = start.get("verification_uri_complete") or start.get("verification_uri")
    if not isinstance(link, str) or not link.strip():
        raise ConstantContactTokenError("the device authorization answered no verification_uri (a malformed "
                                        "answer); run login again, or check --device-url")
    code = start.get("user_code")
    show(f"Open {printable(link)} in a browser and approve the app"
         + (f" (code {printable(code, 40)})" if isinstance(code, (str, int)) and str(code) else "")
         + "; waiting for the approval...")
    expired = "the device code expired before it was approved; run login again"
    last_error = ""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConstantContactTokenError(expired + last_error)
        sleep(min(interval, remaining))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConstantContactTokenError(expired + last_error)
        try:
            status, body = _post(token_url, {"grant_type": DEVICE_GRANT, "device_code": device_code}, client_id,
                                 client_secret, max(0.1, min(POLL_TIMEOUT, math.floor(remaining * 10) / 10)),
                                 "the last poll")
        except ConstantContactServerError as exc:  # unreachable or too slow: poll again while the code lives
            last_error = f" ({exc})"
            continue
        if status == 200:
            return tokens_ok(body, "the device flow")
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = min(interval + SLOW_DOWN_STEP, MAX_INTERVAL)
            continue
        if status == 429 or status >= 500:
            interval = min(interval + 1.0, MAX_INTERVAL)
            last_error = f" (the last poll: HTTP {status})"
            continue
        if error == "expired_token":
            raise ConstantContactTokenError(expired)
        raise _refused("the device flow", status, body, client_secret, device_code)


def pkce_pair() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` for S256."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(authorize: str, client_id: str, redirect_uri: str, scope: str, state: str, challenge: str) -> str:
    """The URL the person opens; Constant Contact wants literal ``+`` between scopes."""
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "state": state, "code_challenge": challenge, "code_challenge_method": "S256"})
    return f"{authorize}?{query}&scope={'+'.join(scope.split())}"


def code_from(pasted: str, state: str) -> str:
    """The authorization code from what the person pasted: the redirected URL (its ``state`` checked) or the
    bare code."""
    text = pasted.strip()
    if "code=" not in text:
        if not text:
            raise ConstantContactTokenError("nothing was pasted: paste the URL the browser was redirected to")
        return text
    query = parse_qs(urlsplit(text).query or text.partition("?")[2] or text)
    if query.get("state", [state])[0] != state:
        raise ConstantContactTokenError("the pasted URL's state does not match this login (an old or foreign URL)")
    if "error" in query:
        raise ConstantContactTokenError(f"the authorization was refused ({printable(query['error'][0], 80)})")
    return query["code"][0]


def pkce_flow(token_url: str, client_id: str, scope: str, redirect_uri: str, *, read: Callable[[str], str],
              authorize: str | None = None, client_secret: str = "",
              show: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the authorization-code flow with PKCE: show the authorize URL, read back the redirected URL (or the
    code), exchange it.

    :param token_url: the token endpoint.
    :param client_id: the application's client id.
    :param scope: space-separated scopes.
    :param redirect_uri: the redirect URI registered for the app (e.g. ``https://localhost``).
    :param read: reads what the person pastes (given a prompt).
    :param authorize: the authorize endpoint (default: beside the token endpoint).
    :param client_secret: for a confidential app; empty for a public one.
    :param show: where the instructions go.
    """
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    show("Open this URL in a browser, approve the app, then paste the address the browser was sent to:\n"
         + authorize_url(authorize or endpoint_of(token_url, "authorize"), client_id, redirect_uri, scope, state,
                         challenge))
    code = code_from(read("Redirected URL (or code): "), state)
    status, body = _post(token_url, {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                     "code_verifier": verifier}, client_id, client_secret, TIMEOUT,
                         "the code exchange")
    if status != 200:
        raise _refused("the code exchange", status, body, client_secret, code, verifier)
    return tokens_ok(body, "the code exchange")
