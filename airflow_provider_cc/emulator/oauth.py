"""The emulator's OAuth2 server, shaped like Constant Contact's (an Okta authorization server).

* Device flow: ``POST /oauth2/default/v1/device/authorize``; the person opens the verification URL it answers
  (``GET /_emulator/oauth/device?user_code=...``: a page with Approve and Deny buttons, which post the form
  back), or a program approves (or denies) through the control endpoint ``POST /_emulator/oauth/device`` with
  the JSON body ``{"user_code": "ABCD-1234", "deny": false}`` (``{"ok": true}``, or 404 for an unknown or
  already decided code); polling answers ``authorization_pending``, ``slow_down`` (faster than the interval),
  ``expired_token``, ``access_denied``.
* Authorization code + PKCE (S256): ``GET /oauth2/default/v1/authorize`` approves at once and redirects to
  the ``redirect_uri`` with ``code`` and ``state``; a code lives 5 minutes and works once.
* Refresh: rotating (each refresh returns a new refresh token and kills the earlier ones; a reused one gets
  ``invalid_grant``) or long-lived (the same token again); any refresh token unused for 180 days expires.
* At most one token call a second per client (429 beyond), access tokens as JWTs (``exp`` and ``expires_in``),
  with a lifetime the control endpoint ``POST /_emulator/oauth/settings`` can shorten to force refreshes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

DAY = 86_400.0
REFRESH_UNUSED_DAYS = 180
CODE_LIFETIME = 300.0
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_PAGE = "/_emulator/oauth/device"  # the verification URL: the approval page, and its control endpoint
MODES = ("rotating", "long_lived")

Reply = tuple[int, Any]


def oauth_error(status: int, error: str, description: str) -> Reply:
    """A token-endpoint error: ``{"error", "error_description"}``."""
    return status, {"error": error, "error_description": description}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Chain:
    """The refresh tokens of one authorization: only ``current`` works (rotating), or it stays (long-lived)."""

    client_id: str
    scope: str
    current: str
    used: set[str] = field(default_factory=set)
    last_used: float = field(default_factory=time.time)
    alive: bool = True


@dataclass
class _Device:
    client_id: str
    scope: str
    user_code: str
    expires: float
    interval: float
    last_poll: float = 0.0
    state: str = "pending"  # pending, approved, denied, done


class OAuthServer:
    """Clients, grants and tokens of the emulator's authorization server. Thread-safe.

    :param client_id: the application's client id (API key).
    :param client_secret: its secret (Basic auth); public clients (PKCE, device) send only the id.
    :param mode: ``rotating`` or ``long_lived`` refresh tokens.
    :param access_token_lifetime: seconds an access token lives (Constant Contact: 24 h).
    :param token_calls_per_second: the token endpoint's limit per client (0: none).
    :param device_interval: seconds the device flow asks clients to wait between polls.
    :param device_lifetime: seconds a device code lives.
    """

    def __init__(self, client_id: str, client_secret: str, *, mode: str = "rotating",
                 access_token_lifetime: float = DAY, token_calls_per_second: float = 1.0,
                 device_interval: float = 5.0, device_lifetime: float = 600.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not one of {', '.join(MODES)}")
        self.clients = {client_id: client_secret}
        self.client_id = client_id
        self.mode = mode
        self.access_token_lifetime = float(access_token_lifetime)
        self.token_calls_per_second = token_calls_per_second
        self.device_interval = device_interval
        self.device_lifetime = device_lifetime
        self.deactivated = False
        self.reject_access_tokens = False  # every access token answered 401 (a revoked user, a changed key)
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._chains: dict[str, _Chain] = {}  # every refresh token ever issued -> its chain
        self._access: dict[str, tuple[str, str, float]] = {}  # access token -> (client, scope, expiry)
        self._codes: dict[str, dict[str, Any]] = {}
        self._devices: dict[str, _Device] = {}
        self._user_codes: dict[str, str] = {}
        self._last_call: dict[str, float] = {}
        self.token_calls: list[tuple[float, str, str]] = []  # (time, grant type, outcome): no secrets
        self.seen_tokens: set[str] = set()  # every access token issued, also after expire_access_tokens
        self.issued_access = 0
        self.reused = 0  # refreshes that sent a rotated (dead) refresh token

    # ---- issuing --------------------------------------------------------------------------------------
    def _jwt(self, client_id: str, scope: str, now: float) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"iss": "cc-emulator", "sub": "emulator-user", "cid": client_id, "scp": scope.split(),
                  "iat": int(now), "exp": now + self.access_token_lifetime, "jti": secrets.token_hex(8)}
        body = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest())
        return f"{header}.{body}.{signature}"

    def _tokens(self, client_id: str, scope: str, chain: _Chain | None, now: float) -> dict[str, Any]:
        """A token answer; a new chain (``chain`` None) when the scope asks for ``offline_access``."""
        access = self._jwt(client_id, scope, now)
        self._access[access] = (client_id, scope, now + self.access_token_lifetime)
        self.seen_tokens.add(access)
        self.issued_access += 1
        answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": int(self.access_token_lifetime),
                                  "access_token": access, "scope": scope}
        if chain is None and "offline_access" in scope.split():
            refresh = secrets.token_urlsafe(32)
            chain = _Chain(client_id, scope, refresh)
            self._chains[refresh] = chain
        if chain is not None:
            if self.mode == "rotating":
                chain.used.add(chain.current)
                chain.current = secrets.token_urlsafe(32)
                self._chains[chain.current] = chain
            chain.last_used = now
            answer["refresh_token"] = chain.current
        return answer

    def issue(self, scope: str = "campaign_data contact_data offline_access") -> dict[str, Any]:
        """Tokens for the default client without a flow (the CLI's ready-to-paste connection line)."""
        with self._lock:
            return self._tokens(self.client_id, scope, None, time.time())

    def alias(self, access_token: str) -> str:
        """An opaque access token (not a JWT) that works exactly as ``access_token`` does (fault injection: an
        answer whose expiry only ``expires_in`` tells)."""
        alias = secrets.token_urlsafe(32)
        with self._lock:
            found = self._access.get(access_token)
            if found is not None:
                self._access[alias] = found
            self.seen_tokens.add(alias)
        return alias

    # ---- checks -----------------------------------------------------------------------------------------
    def check_access(self, token: str) -> tuple[str, set[str]] | None:
        """``(client id, scopes)`` of a valid access token, else ``None``."""
        with self._lock:
            found = self._access.get(token)
        if found is None or found[2] <= time.time() or self.reject_access_tokens:
            return None
        return found[0], set(found[1].split())

    def revoke_all(self) -> None:
        """Every access and refresh token stops working (a user revoking the app)."""
        with self._lock:
            self._access.clear()
            for chain in self._chains.values():
                chain.alive = False

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working; refresh tokens still do (a 401 mid-run)."""
        with self._lock:
            self._access.clear()

    def refresh_tokens(self) -> set[str]:
        """Every refresh token ever issued (for tests that look for leaks)."""
        with self._lock:
            return set(self._chains)

    def access_tokens(self) -> set[str]:
        """Every access token still known (for tests that look for leaks)."""
        with self._lock:
            return set(self._access)

    def age_refresh_tokens(self, days: float) -> None:
        """Pretend every refresh token was last used ``days`` earlier (the 180-day rule)."""
        with self._lock:
            for chain in self._chains.values():
                chain.last_used -= days * DAY

    def chain_intact(self, refresh_token: str) -> bool:
        """Whether ``refresh_token`` is the live head of its chain (what the next refresh must send)."""
        with self._lock:
            chain = self._chains.get(refresh_token)
            return bool(chain and chain.alive and chain.current == refresh_token)

    # ---- the device flow ------------------------------------------------------------------------------
    def device_authorize(self, form: dict[str, str], base_url: str, basic: tuple[str, str] | None = None) -> Reply:
        found = self._client(form, basic)  # a public client names itself; a confidential one authenticates
        if isinstance(found[0], int):  # a refusal
            return found
        client_id = found[0]
        device_code = secrets.token_urlsafe(24)
        user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        with self._lock:
            self._devices[device_code] = _Device(client_id, form.get("scope", ""), user_code,
                                                 time.time() + self.device_lifetime, self.device_interval)
            self._user_codes[user_code] = device_code
        uri = f"{base_url}{DEVICE_PAGE}"
        return 200, {"device_code": device_code, "user_code": user_code, "verification_uri": uri,
                     "verification_uri_complete": f"{uri}?user_code={user_code}",
                     "expires_in": int(self.device_lifetime), "interval": int(self.device_interval) or 1}

    def device_decide(self, user_code: str, deny: bool = False) -> bool:
        """The user at the browser approves (or denies) a device code; ``False`` if unknown."""
        with self._lock:
            device = self._devices.get(self._user_codes.get(user_code, ""))
            if device is None or device.state != "pending":
                return False
            device.state = "denied" if deny else "approved"
            return True

    def device_page(self, fields: dict[str, str], posted: bool) -> tuple[int, str]:
        """The verification page a person opens (``GET``: the code and an Approve and a Deny button) and its
        answer when a button posts the form back; ``(status, HTML)``."""
        code = fields.get("user_code", "").strip().upper()
        if not posted:
            return 200, _page("Approve a device", _DEVICE_FORM.format(code=html.escape(code, quote=True)))
        deny = fields.get("decision") == "deny"
        if not self.device_decide(code, deny=deny):
            return 404, _page("Unknown code", f"<p>No device is waiting for the code <b>{html.escape(code)}</b> (it "
                                              "is unknown, expired or already decided). Run the login again.</p>")
        return 200, _page("Denied" if deny else "Approved", "<p>The device is {}. Go back to the terminal: the login "
                                                           "command goes on by itself.</p>".format(
                                                               "denied" if deny else "approved"))

    # ---- authorization code + PKCE ------------------------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """``(status, redirect location or error text)`` for a browser's authorize request (auto-approved)."""
        if query.get("client_id") not in self.clients:
            return 400, "Unknown or invalid client_id."
        if query.get("response_type") != "code" or not query.get("redirect_uri"):
            return 400, "response_type=code and redirect_uri are required."
        challenge = query.get("code_challenge")
        if challenge and query.get("code_challenge_method", "plain") != "S256":
            return 400, "code_challenge_method must be S256."
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {"client_id": query["client_id"], "redirect_uri": query["redirect_uri"],
                                 "challenge": challenge, "scope": query.get("scope", "").replace("+", " "),
                                 "expires": time.time() + CODE_LIFETIME}
        separator = "&" if "?" in query["redirect_uri"] else "?"
        state = query.get("state")
        return 302, f"{query['redirect_uri']}{separator}code={code}" + (f"&state={state}" if state else "")

    # ---- the token endpoint ----------------------------------------------------------------------------
    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> Reply:
        """Answer one token request (form body and query merged)."""
        grant = form.get("grant_type", "")
        with self._lock:
            reply = self._token(form, basic, grant)
            self.token_calls.append((time.time(), grant, str(reply[1].get("error", "ok"))))
            return reply

    def _client(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[str, bool] | Reply:
        """``(client id, whether it proved its secret)``, or the refusal. RFC 6749 §2.3.1: a client authenticates
        with HTTP Basic (id and secret form-encoded, or as they are) or with ``client_id`` and ``client_secret``
        in the form, never both; a public client names itself with ``client_id`` alone."""
        refused = oauth_error(401, "invalid_client", "Client authentication failed.")
        if basic is not None:
            if "client_secret" in form:
                return oauth_error(400, "invalid_request", "Use one client authentication method, not two.")
            client_id = basic[0] if basic[0] in self.clients else unquote_plus(basic[0])
            if self.clients.get(client_id) not in (basic[1], unquote_plus(basic[1])) or \
                    form.get("client_id", client_id) != client_id:
                return refused
            return client_id, True
        client_id = form.get("client_id", "")
        if client_id not in self.clients:
            return refused
        if "client_secret" not in form:
            return client_id, False
        return (client_id, True) if form["client_secret"] == self.clients[client_id] else refused

    def _token(self, form: dict[str, str], basic: tuple[str, str] | None, grant: str) -> Reply:
        found = self._client(form, basic)
        if isinstance(found[0], int):  # a refusal
            return found
        client, authenticated = found
        now = time.time()
        if self.token_calls_per_second:
            last = self._last_call.get(client, -1e9)
            if now - last < 1.0 / self.token_calls_per_second:
                return oauth_error(429, "too_many_requests", "API call exceeded rate limit due to too many requests.")
            self._last_call[client] = now
        if self.deactivated:
            return oauth_error(400, "invalid_client", "The client is deactivated.")
        if grant == "refresh_token":
            chain = self._chains.get(form.get("refresh_token", ""))
            if (chain is None or not chain.alive or chain.client_id != client
                    or now - chain.last_used > REFRESH_UNUSED_DAYS * DAY):
                return oauth_error(400, "invalid_grant", "The refresh token is invalid or expired.")
            if self.mode == "rotating" and form["refresh_token"] != chain.current:
                self.reused += 1  # used before: refused; the chain's current token still works
                return oauth_error(400, "invalid_grant", "The refresh token is invalid or expired.")
            return 200, self._tokens(client, chain.scope, chain, now)
        if grant == "authorization_code":
            code = self._codes.pop(form.get("code", ""), None)
            if code is None or code["expires"] < now or code["client_id"] != client:
                return oauth_error(400, "invalid_grant", "The authorization code is invalid or has expired.")
            if code["redirect_uri"] != form.get("redirect_uri"):
                return oauth_error(400, "invalid_grant", "The redirect_uri does not match.")
            if code["challenge"]:
                verifier = form.get("code_verifier", "")
                if _b64(hashlib.sha256(verifier.encode()).digest()) != code["challenge"]:
                    return oauth_error(400, "invalid_grant", "PKCE verification failed.")
            elif not authenticated:
                return oauth_error(401, "invalid_client", "A confidential client must authenticate.")
            return 200, self._tokens(client, code["scope"], None, now)
        if grant == DEVICE_GRANT:
            device = self._devices.get(form.get("device_code", ""))
            if device is None or device.client_id != client or device.state == "done":
                return oauth_error(400, "invalid_grant", "The device code is invalid.")
            if device.expires < now:
                return oauth_error(400, "expired_token", "The device code has expired.")
            if device.state == "denied":
                return oauth_error(400, "access_denied", "The user denied the request.")
            if device.state == "pending":
                too_fast = now - device.last_poll < device.interval - 0.05
                device.last_poll = now
                if too_fast:
                    device.interval += 1
                    return oauth_error(400, "slow_down", "Polling too fast.")
                return oauth_error(400, "authorization_pending", "The user has not yet approved.")
            device.state = "done"
            return 200, self._tokens(client, device.scope, None, now)
        return oauth_error(400, "unsupported_grant_type", f"grant_type {grant[:40]!r} is not supported.")


_DEVICE_FORM = """<p>A program asks to use the emulator's Constant Contact account (scopes as it asked). Check that
the code below is the one the terminal shows, then approve.</p>
<form method="post">
  <label>Code <input name="user_code" value="{code}" autocomplete="off"></label>
  <button type="submit" name="decision" value="approve">Approve</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}: Constant Contact emulator</title>"
            f"</head><body><h1>{title}</h1>{body}<p><small>Constant Contact emulator (OAuth2 device flow)</small></p>"
            "</body></html>")
