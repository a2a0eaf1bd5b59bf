"""Reading a ``constant_contact_v3`` Airflow connection (OAuth2) into checked settings.

The client id (Constant Contact calls it the API key) is the connection's login, the client secret its
password (empty for a PKCE or device-flow app), the refresh token an extra. Every value is checked here,
before any request, with the same rules as the v2 connection for what both have.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.get_provider_info import V3_CONN_TYPE, V3_DEFAULT_HOST, V3_DEFAULTS, V3_TOKEN_URL
from airflow_provider_cc.hooks.connection import (
    REDIS_PASSWORD,
    _extra,
    _number,
    _redis_url,
    _secret,
    _shown,
    base_url_of,
    is_loopback,
    normalise_base_url,
    redis_url,
    transport_values,
    url_secrets,
)

# The values ``oauth_store`` takes besides a path: the Airflow Variable store, and Redis URLs.
AIRFLOW_STORE = "airflow"
REDIS_SCHEMES = ("redis", "rediss", "unix")


def normalise_token_url(url: str, *, allow_insecure_http: bool) -> str:
    """The token endpoint as a full URL (scheme and host lower-cased), or a clear error."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018
    except ValueError:
        raise ConstantContactInputError(f"extra oauth_url {_shown(url)!r} is not a valid URL") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("https", "http") or not host:
        raise ConstantContactInputError(f"extra oauth_url {_shown(url)!r} must be an https URL, e.g. {V3_TOKEN_URL}")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ConstantContactInputError("extra oauth_url must not carry a user name, password or fragment")
    if scheme == "http" and not is_loopback(host) and not allow_insecure_http:
        raise ConstantContactInputError(
            f"extra oauth_url {_shown(url)!r} uses plain http to a non-local host, which would send the refresh "
            'token and client secret unencrypted; use https, or set "allow_insecure_http": true')
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def normalise_token_store(value: Any, redis_password: Any = None) -> str:
    """``airflow``, a Redis URL, or an absolute directory (a ``file://`` URL or a path).

    :param value: the store as the user gave it (the extra ``oauth_store``, the login's ``--token-store``).
    :param redis_password: given: ``value`` is the user's, so a Redis URL must carry no password (Airflow would
        show it), and this one is joined to it for the client. ``None``: ``value`` is a checked store already.
    """
    text = AIRFLOW_STORE if value is None or str(value).strip() == "" else str(value).strip()
    if text.lower() == AIRFLOW_STORE:
        return AIRFLOW_STORE
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in REDIS_SCHEMES:  # the same checks as the limiter's URL (never echoed)
        if redis_password is None:
            return _redis_url(text, "extra oauth_store") or text
        return redis_url(text, "extra oauth_store", redis_password) or text
    if scheme == "file":
        text = urlsplit(text).path
    elif scheme:
        raise ConstantContactInputError(
            "extra oauth_store must be airflow, a Redis URL (redis://host:6379/0) or a directory (an absolute path "
            "or file:///path) on a disk every worker shares")
    if not text.startswith("/"):
        raise ConstantContactInputError(f"extra oauth_store {text!r}: a directory must be an absolute path")
    return text.rstrip("/") or "/"


@dataclass(frozen=True)
class V3Settings:
    """What the v3 hook needs from a connection, checked (and normalised) on construction.

    :param conn_id: the connection's id (names its tokens in the store).
    :param base_url: scheme and host, no path (default ``https://api.cc.email``).
    :param client_id: the application's API key (client id).
    :param client_secret: its secret, or empty for a public (PKCE or device-flow) app.
    :param refresh_token: the refresh token from the login command (the store's may be newer).
    :param token_url: the OAuth2 token endpoint (extra ``oauth_url``).
    :param token_store: ``airflow``, a Redis URL or a shared directory (extra ``oauth_store``).
    :param oauth_chain: names the refresh-token chain in the store (extra ``oauth_chain``, which the login
        command prints); default: a hash of the connection's refresh token, else the connection id.
    :param requests_per_second: client-side ceiling per application (client id), shared by its connections.
    :param timeout: seconds for a whole request.
    :param oauth_timeout: seconds for a whole token-endpoint request (extra ``oauth_timeout``); ``None``: the
        ``timeout`` (:attr:`token_timeout`).
    :param max_retries: retries per request.
    :param backoff: first retry wait in seconds.
    :param max_page_bytes: cap on one decoded response body.
    :param allow_insecure_http: allow plain http to a non-loopback host.
    :param rate_limiter_url: Redis URL of a limiter shared across processes (with its password, if any: the
        extra ``redis_password``, which also opens a Redis ``oauth_store``).
    """

    conn_id: str
    base_url: str
    client_id: str
    client_secret: str = ""
    refresh_token: str = ""
    token_url: str = V3_TOKEN_URL
    token_store: str = AIRFLOW_STORE
    oauth_chain: str = ""
    requests_per_second: float = V3_DEFAULTS["requests_per_second"]
    timeout: float = V3_DEFAULTS["timeout"]
    oauth_timeout: float | None = None
    max_retries: int = V3_DEFAULTS["max_retries"]
    backoff: float = V3_DEFAULTS["backoff"]
    max_page_bytes: int = V3_DEFAULTS["max_page_bytes"]
    allow_insecure_http: bool = V3_DEFAULTS["allow_insecure_http"]
    rate_limiter_url: str | None = None

    def __post_init__(self) -> None:
        shared = transport_values(self)
        insecure = shared["allow_insecure_http"]
        values = {
            **shared,
            "client_id": _secret(self.client_id, "client id (the connection's login)"),
            "client_secret": _secret(self.client_secret, "client secret") if str(self.client_secret or "").strip()
            else "",
            "refresh_token": _secret(self.refresh_token, "refresh token") if str(self.refresh_token or "").strip()
            else "",
            "oauth_timeout": None if self.oauth_timeout is None else _number(self.oauth_timeout, "oauth_timeout",
                                                                              minimum=0.001),
            "token_store": normalise_token_store(self.token_store),
            "token_url": normalise_token_url(str(self.token_url or V3_TOKEN_URL), allow_insecure_http=insecure),
            "base_url": normalise_base_url(str(self.base_url), allow_insecure_http=insecure,
                                           default=V3_DEFAULT_HOST, version="v3"),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:  # never the secrets, nor a Redis password
        store = self.token_store if self.token_store == AIRFLOW_STORE or self.token_store.startswith("/") else "redis"
        return (f"V3Settings(conn_id={self.conn_id!r}, base_url={self.base_url!r}, token_url={self.token_url!r}, "
                f"token_store={store!r}, requests_per_second={self.requests_per_second}, timeout={self.timeout}, "
                f"max_retries={self.max_retries}, rate_limiter={'redis' if self.rate_limiter_url else 'in-process'})")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs or errors: the client secret, the connection's refresh token
        and Redis URLs with their passwords (tokens received later are registered as they arrive)."""
        found = [s for s in (self.client_secret, self.refresh_token) if s]
        for url in (self.rate_limiter_url, self.token_store if "://" in self.token_store else None):
            found += url_secrets(url)
        return tuple(dict.fromkeys(found))

    @property
    def chain(self) -> str:
        """What names this connection's tokens in the store: the same for every connection (and every copy
        of one, such as the transient one Airflow's Test button builds) that continues one authorization."""
        if self.oauth_chain:
            return self.oauth_chain
        if self.refresh_token:
            from airflow_provider_cc.auth.store import fingerprint

            return f"rt{fingerprint(self.refresh_token)[:16]}"
        return self.conn_id

    @property
    def token_timeout(self) -> float:
        """What bounds one token call as a whole: ``oauth_timeout``, else the ``timeout`` every request has. Its
        answer holds the only copy of a rotated refresh token, so giving it up after the server answered loses the
        chain: a connection whose ``timeout`` is short for its token endpoint sets a longer ``oauth_timeout``."""
        return self.timeout if self.oauth_timeout is None else self.oauth_timeout

    @property
    def api_key(self) -> str:
        """What the key's limiter is named by: the client id (limits are per application, not per account)."""
        return self.client_id

    def replace(self, **changes: Any) -> V3Settings:
        """A copy with some settings changed, checked again."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return V3Settings(**{**values, **changes})

    @classmethod
    def from_connection(cls, conn: Any) -> V3Settings:
        """Read and check an Airflow ``Connection`` of type ``constant_contact_v3``."""
        conn_id = getattr(conn, "conn_id", None) or "constant_contact_v3"
        extras = conn.extra_dejson or {}

        def extra(name: str) -> Any:
            return _extra(extras, name, V3_CONN_TYPE)

        client_id = conn.login or extra("client_id")
        if client_id is None or not str(client_id).strip():
            raise ConstantContactInputError(
                f"connection {conn_id!r} has no client id: set its login to the application's API key (client id) "
                "from Constant Contact's v3 developer portal")
        optional = {name: value for name in ("requests_per_second", "timeout", "max_retries", "backoff",
                                             "max_page_bytes", "allow_insecure_http", "oauth_chain",
                                             "oauth_timeout")
                    if (value := extra(name)) is not None}
        for setting, names in (("token_url", ("oauth_url", "token_url")), ("token_store", ("oauth_store",
                                                                                          "token_store"))):
            value = next((v for n in names if (v := extra(n)) is not None), None)
            if value is not None:
                optional[setting] = value
        try:
            base_url = base_url_of(conn, V3_DEFAULT_HOST)
            password = extra(REDIS_PASSWORD) or ""
            optional["rate_limiter_url"] = redis_url(extra("rate_limiter_url"), "extra rate_limiter_url", password)
            if "token_store" in optional:  # a Redis store opens with the same password
                optional["token_store"] = normalise_token_store(optional["token_store"], password)
            return cls(conn_id=conn_id, base_url=base_url, client_id=client_id,
                       client_secret=conn.password or extra("client_secret") or "",
                       refresh_token=extra("refresh_token") or "", **optional)
        except ConstantContactInputError as exc:
            raise ConstantContactInputError(f"connection {conn_id!r}: {exc}") from None
