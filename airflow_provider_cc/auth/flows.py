"""Getting the first refresh token: Constant Contact's device flow and the authorization-code flow with PKCE.

Both need a person at a browser once. Neither logs a token or a secret; the caller stores what they return.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from airflow_provider_cc.exceptions import ConstantContactTokenError
from airflow_provider_cc.hooks.transport import secret_pattern

if TYPE_CHECKING:
    from collections.abc import Callable

AUTHORIZE_URL = "https://authz.constantcontact.com/oauth2/default/v1/authorize"
DEVICE_URL = "https://authz.constantcontact.com/oauth2/default/v1/device/authorize"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
BASE_SCOPES = ("campaign_data", "offline_access")
SLOW_DOWN_STEP = 5.0  # RFC 8628: each slow_down adds 5 s to the polling interval
TIMEOUT = 60.0


def scopes(contact_data: bool = False) -> str:
    """The scope string: ``campaign_data offline_access`` (+ ``contact_data`` for the contact reports)."""
    return " ".join((*BASE_SCOPES, *(("contact_data",) if contact_data else ())))


def endpoint_of(token_url: str, path: str) -> str:
    """Another endpoint of the authorization server that serves ``token_url`` (``.../v1/token``)."""
    base = token_url.rsplit("/", 1)[0]
    return f"{base}/{path}"


def _post(url: str, data: dict[str, str], client_id: str, client_secret: str) -> tuple[int, dict[str, Any]]:
    auth = (client_id, client_secret) if client_secret else None
    if not client_secret:
        data = {**data, "client_id": client_id}
    try:
        response = requests.post(url, data=data, auth=auth, timeout=TIMEOUT, allow_redirects=False,
                                 headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise ConstantContactTokenError(f"the authorization server cannot be reached ({type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


def _refused(what: str, status: int, body: dict[str, Any], *hide: str) -> ConstantContactTokenError:
    """The server's refusal, its text redacted of every secret of the flow (a server may echo them)."""
    key, text = str(body.get("error") or ""), str(body.get("error_description") or "")
    pattern = secret_pattern(hide)
    detail = f"HTTP {status} {key}: {text}"[:300]
    return ConstantContactTokenError(f"{what} refused ({detail if pattern is None else pattern.sub('***', detail)})",
                                     status=status, error_key=key or None)


def tokens_ok(body: dict[str, Any], what: str) -> dict[str, Any]:
    """The token answer, checked: an access token, and the refresh token only ``offline_access`` brings."""
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise ConstantContactTokenError(f"{what}: the answer holds no access token")
    if not isinstance(body.get("refresh_token"), str) or not body["refresh_token"]:
        raise ConstantContactTokenError(
            f"{what}: the answer holds no refresh token. The scope must include offline_access, and the app (in "
            "Constant Contact's v3 developer portal) must allow refresh tokens")
    return body


def device_flow(token_url: str, client_id: str, scope: str, *, device_url: str | None = None,
                client_secret: str = "", show: Callable[[str], None] = print,
                sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Run the device flow: show the verification URL and code, poll at the server's interval (slower on
    ``slow_down``), and give up when the code expires.

    :param token_url: the token endpoint.
    :param client_id: the application's client id.
    :param scope: space-separated scopes.
    :param device_url: the device-authorize endpoint (default: beside the token endpoint).
    :param client_secret: for a confidential app; empty for a public one.
    :param show: where the instructions for the person go.
    :param sleep: how to wait between polls.
    """
    status, start = _post(device_url or endpoint_of(token_url, "device/authorize"), {"scope": scope}, client_id,
                          client_secret)
    if status != 200 or not start.get("device_code"):
        raise _refused("the device authorization", status, start, client_secret)
    interval = float(start.get("interval") or 5)
    deadline = time.monotonic() + float(start.get("expires_in") or 600)
    link = start.get("verification_uri_complete") or start.get("verification_uri")
    show(f"Open {link} in a browser and approve the app" + (
        f" (code {start['user_code']})" if start.get("user_code") else "") + "; waiting for the approval...")
    while True:
        sleep(interval)
        if time.monotonic() > deadline:
            raise ConstantContactTokenError("the device code expired before it was approved; run login again")
        status, body = _post(token_url, {"grant_type": DEVICE_GRANT, "device_code": start["device_code"]}, client_id,
                             client_secret)
        if status == 200:
            return tokens_ok(body, "the device flow")
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_STEP
            continue
        if status == 429:
            interval += 1.0
            continue
        if error == "expired_token":
            raise ConstantContactTokenError("the device code expired before it was approved; run login again")
        raise _refused("the device flow", status, body, client_secret, start["device_code"])


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
        raise ConstantContactTokenError(f"the authorization was refused ({query['error'][0][:80]})")
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
                                     "code_verifier": verifier}, client_id, client_secret)
    if status != 200:
        raise _refused("the code exchange", status, body, client_secret, code, verifier)
    return tokens_ok(body, "the code exchange")
