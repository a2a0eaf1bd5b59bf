"""Reading a ``constant_contact`` Airflow connection into checked settings.

Every setting is checked here, once, before any request: the hook, the trigger and the transport read
only :class:`ConnectionSettings`, so a bad value fails with a message naming it and nothing is sent.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.get_provider_info import CONN_FIELDS, DEFAULTS

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_HOST = "https://api.constantcontact.com"
MIN_MAX_PAGE_BYTES: int = CONN_FIELDS["max_page_bytes"]["schema"]["minimum"]
RATE_LIMITER_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_PORTS = {"https": 443, "http": 80}  # left out of a base URL: one limiter per key however it is written
REDIS_PASSWORD = "redis_password"  # the extra holding the Redis password: Airflow masks it by its name

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
# Control characters (C0, DEL, C1) and anything outside Latin-1 cannot travel in an HTTP header.
_BAD_SECRET_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]|[^\x00-\xff]")


def _extra(extras: dict[str, Any], name: str, conn_type: str = "constant_contact") -> Any:
    """An extra by its plain name or the legacy ``extra__<conn_type>__`` prefix."""
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(f"extra__{conn_type}__{name}")
    return None if value == "" else value


def _number(value: Any, name: str, *, minimum: float, integer: bool = False) -> float:
    """A finite number at least ``minimum`` (an integer where asked), from a number or a numeric string."""
    if isinstance(value, bool):
        raise ConstantContactInputError(f"extra {name}={value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConstantContactInputError(f"extra {name}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConstantContactInputError(f"extra {name}={value!r} must be a finite number")
    if number < minimum:
        raise ConstantContactInputError(f"extra {name}={value!r} must be at least {minimum:g}")
    if integer and not number.is_integer():
        raise ConstantContactInputError(f"extra {name}={value!r} must be a whole number")
    return number


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConstantContactInputError(f"extra {name}={value!r} is not true or false")


def _secret(value: Any, what: str) -> str:
    """Surrounding whitespace stripped; control or non-Latin-1 characters refused without echoing the value."""
    text = str(value).strip()
    if not text:
        raise ConstantContactInputError(f"the {what} is empty")
    if _BAD_SECRET_CHARS.search(text):
        raise ConstantContactInputError(
            f"the {what} contains a control character or a character outside Latin-1, which cannot be sent in "
            "an HTTP request; copy it again (without line breaks or smart quotes)")
    return text


def is_loopback(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(url: str) -> str:
    """``url`` as it may appear in an error: without any user name or password."""
    scheme, sep, rest = url.strip().partition("://")
    netloc, slash, tail = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{tail}"[:200]


def normalise_base_url(url: str, *, allow_insecure_http: bool, default: str = DEFAULT_HOST,
                       version: str = "v2") -> str:
    """``scheme://host[:port]`` in lower case, or a clear error.

    A path prefix is refused rather than dropped: every API path and ``next_link`` starts at ``/v2/``
    (``/v3/``) on the host itself, so a prefix could not be honoured for the links the API returns.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConstantContactInputError(f"host {_shown(url)!r} is not a valid URL ({exc})") from None
    url = _shown(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ConstantContactInputError(f"host {url!r}: the scheme must be https (or http for a local emulator)")
    if not parts.hostname:
        raise ConstantContactInputError(f"host {url!r} has no host name")
    if parts.username is not None or parts.password is not None:
        raise ConstantContactInputError("the host must not carry a user name or password; put the access token in "
                                        "the connection's password and the api_key in its extras")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        extra = parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
        raise ConstantContactInputError(
            f"host {url!r} has a path or query ({extra!r}); give only the scheme and host, e.g. "
            f"{default} (the provider adds /{version}/... itself, and the API's next links start at the host)")
    host = parts.hostname.lower()
    if scheme == "http" and not is_loopback(host) and not allow_insecure_http:
        raise ConstantContactInputError(
            f"host {url!r} uses plain http to a non-local host, which would send the "
            f"{'access token and api_key' if version == 'v2' else 'tokens'} unencrypted; use https, or set the "
            'extra "allow_insecure_http": true if you really mean it')
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


def base_url_of(conn: Any, default: str) -> str:
    """The API's base URL from a connection's host and port fields, as the forms let a user fill them: a host
    with its scheme (``https://api.cc.email``, ``http://127.0.0.1:8099``) or a bare name (https, or the schema
    field); the port in the host, in the port field, or in both when they agree. An empty port field is
    ``None``, or ``0`` where Airflow 3's UI sends one."""
    host = (conn.host or "").strip()
    port = conn.port or None
    if not host:
        host = default
    elif "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
    if port is None:
        return host
    try:
        given = urlsplit(host).port
    except ValueError:
        return host  # normalise_base_url refuses it with its own message
    if given is None:
        return host.rstrip("/") + f":{port}"
    if given != int(port):
        raise ConstantContactInputError(
            f"host {_shown(host)!r} names port {given} and the port field says {port}: give the port in one of "
            "them, or the same in both")
    return host


def _redis_url(value: Any, name: str) -> str | None:
    """A Redis URL checked (scheme, host, port, brackets), never echoed: it may hold a password.

    :param name: what holds it, for the message: ``extra rate_limiter_url``, ``--token-store``...
    """
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    example = "redis://host:6379/0, rediss://... or unix:///path/to/redis.sock"
    if scheme not in RATE_LIMITER_SCHEMES:
        raise ConstantContactInputError(f"{name} must be a Redis URL: {example}")
    try:  # a bracket host left open, a port that is not one: refused here, before the secrets are read from it
        parts = urlsplit(text)
        parts.port  # noqa: B018
        parts.password  # noqa: B018
    except ValueError:
        raise ConstantContactInputError(
            f"{name} is not a valid Redis URL (check its host, port and brackets): {example}") from None
    return text


def _limiter_url(value: Any) -> str | None:
    return _redis_url(value, "extra rate_limiter_url")


def redis_url(value: Any, name: str, password: Any = None, *,
              move_to: str = f'the extra "{REDIS_PASSWORD}" (masked)') -> str | None:
    """The Redis URL a client connects with, from a URL without a password and the password, or ``None`` for
    an empty value.

    Airflow masks an extra by its name, not its content, so a password inside the URL would be shown in clear
    by its UI and REST API: such a URL is refused before any request, naming where the password goes instead
    (and never echoing it).

    :param value: the URL as the user gave it (a connection's extra, a command's option).
    :param name: what holds it, for the message: ``extra rate_limiter_url``, ``extra oauth_store``, ``--token-store``.
    :param password: the password (the extra ``redis_password``); empty: none.
    :param move_to: where the message tells the user to put the password instead.
    """
    url = _redis_url(value, name)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is not None or "password=" in parts.query.lower():
        raise ConstantContactInputError(
            f"{name} carries a Redis password, which Airflow shows in clear in its UI and REST API: move the "
            f"password to {move_to} and give the URL without it, e.g. redis://host:6379/0")
    return with_password(url, password)


def with_password(url: str, password: Any) -> str:
    """``url`` (a Redis URL without a password) carrying ``password`` for the client; ``url`` itself when the
    password is empty."""
    if password is None or str(password).strip() == "":
        return url
    secret = _secret(password, f"extra {REDIS_PASSWORD}")
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    address = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}:{quote(secret, safe='')}@{address}", parts.path, parts.query,
                       parts.fragment))


def url_secrets(url: str | None) -> list[str]:
    """What of a Redis URL must never be shown: the URL itself and its password, as written and decoded."""
    if not url:
        return []
    found = [url]
    try:
        password = urlsplit(url).password
    except ValueError:
        return found
    if password:
        found += [password, unquote(password)]
    return list(dict.fromkeys(found))


def transport_values(settings: Any) -> dict[str, Any]:
    """The transport's settings of a v2 or v3 connection, checked: the rate, the bounds, the retries, plain http
    and the shared limiter's URL."""
    return {
        "requests_per_second": _number(settings.requests_per_second, "requests_per_second", minimum=0.0),
        "timeout": _number(settings.timeout, "timeout", minimum=0.001),
        "max_retries": int(_number(settings.max_retries, "max_retries", minimum=0, integer=True)),
        "backoff": _number(settings.backoff, "backoff", minimum=0.0),
        "max_page_bytes": int(_number(settings.max_page_bytes, "max_page_bytes", minimum=MIN_MAX_PAGE_BYTES,
                                      integer=True)),
        "allow_insecure_http": _flag(settings.allow_insecure_http, "allow_insecure_http"),
        "rate_limiter_url": _limiter_url(settings.rate_limiter_url),  # the client's URL: may hold a password
    }


def hook_settings(given: Any, read: Callable[[], Any], overrides: dict[str, Any]) -> Any:
    """A hook's settings: those it was given (their secrets masked by the caller), else ``read()``'s with every
    secret masked as it is read; then the hook's own overrides, checked again."""
    from airflow_provider_cc._compat import mask_secret

    settings = given
    if settings is None:
        settings = read()
        for secret in settings.secrets:
            mask_secret(secret)
    chosen = {k: v for k, v in overrides.items() if v is not None}
    return settings.replace(**chosen) if chosen else settings


@dataclass(frozen=True)
class ConnectionSettings:
    """What the hook needs from a connection, checked (and normalised) on construction.

    :param base_url: scheme and host, no path.
    :param api_key: the v2 API key.
    :param token: the v2 OAuth2 access token.
    :param requests_per_second: client-side rate ceiling per api_key (0: off).
    :param timeout: seconds for a whole request (connect, headers and body).
    :param max_retries: retries per request.
    :param backoff: first retry wait in seconds.
    :param max_page_bytes: cap on one decoded response body.
    :param allow_insecure_http: allow plain http to a non-loopback host.
    :param rate_limiter_url: Redis URL of a limiter shared across processes (``None``: in-process limiter).
    """

    base_url: str
    api_key: str
    token: str
    requests_per_second: float = DEFAULTS["requests_per_second"]
    timeout: float = DEFAULTS["timeout"]
    max_retries: int = DEFAULTS["max_retries"]
    backoff: float = DEFAULTS["backoff"]
    max_page_bytes: int = DEFAULTS["max_page_bytes"]
    allow_insecure_http: bool = DEFAULTS["allow_insecure_http"]
    rate_limiter_url: str | None = None

    def __post_init__(self) -> None:
        _flag(self.allow_insecure_http, "allow_insecure_http")  # checked first, as it always was
        values = {
            "api_key": _secret(self.api_key, "api_key"),
            "token": _secret(self.token, "access token"),
            **transport_values(self),
        }
        values["base_url"] = normalise_base_url(str(self.base_url), allow_insecure_http=values["allow_insecure_http"])
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:  # never show the secrets (nor a Redis password)
        return (f"ConnectionSettings(base_url={self.base_url!r}, requests_per_second={self.requests_per_second}, "
                f"timeout={self.timeout}, max_retries={self.max_retries}, backoff={self.backoff}, "
                f"max_page_bytes={self.max_page_bytes}, allow_insecure_http={self.allow_insecure_http}, "
                f"rate_limiter={'redis' if self.rate_limiter_url else 'in-process'})")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs or errors: the key, the token and a Redis password."""
        return (self.api_key, self.token, *url_secrets(self.rate_limiter_url))

    def replace(self, **changes: Any) -> ConnectionSettings:
        """A copy with some settings changed, checked again."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return ConnectionSettings(**{**values, **changes})

    @classmethod
    def from_connection(cls, conn: Any) -> ConnectionSettings:
        """Read and check an Airflow ``Connection``; anything missing or wrong is refused here.

        The API key is the login (the form's *API key*), or the extra ``api_key`` of older connections; the
        access token the password; a Redis password the extra ``redis_password``, never inside the URL.
        """
        conn_id = getattr(conn, "conn_id", None) or "constant_contact"
        extras = conn.extra_dejson or {}
        api_key = conn.login if str(conn.login or "").strip() else _extra(extras, "api_key")
        token = conn.password or _extra(extras, "access_token") or _extra(extras, "token")
        missing = [name for name, value in (("API key (login)", api_key), ("access token (password)", token))
                   if value is None or not str(value).strip()]
        if missing:
            raise ConstantContactInputError(
                f"connection {conn_id!r} has no {' and no '.join(missing)}: fill the form's API key and Access "
                "token fields (the connection's login and password)")
        optional = {name: value for name in ("requests_per_second", "timeout", "max_retries", "backoff",
                                             "max_page_bytes", "allow_insecure_http")
                    if (value := _extra(extras, name)) is not None}
        try:
            base_url = base_url_of(conn, DEFAULT_HOST)
            limiter = redis_url(_extra(extras, "rate_limiter_url"), "extra rate_limiter_url",
                                _extra(extras, REDIS_PASSWORD))
            return cls(base_url=base_url, api_key=api_key, token=token, rate_limiter_url=limiter, **optional)
        except ConstantContactInputError as exc:
            raise ConstantContactInputError(f"connection {conn_id!r}: {exc}") from None


def message_for_test(exc: Exception, conn_id: str) -> str:
    """What a failed Test shows: the error without the connection id it was read under. Airflow's Test button
    tests a copy of the form under a random id, which would send the user after a connection that does not
    exist (``login --conn-id <random>``); the user knows which connection they are testing."""
    text = str(exc)
    if not conn_id:
        return text
    name = re.escape(conn_id)
    text = re.sub(rf"^connection '{name}': ", "", text)
    text = re.sub(rf"(?:[Tt]he )?connection '{name}'", "this connection", text)
    text = re.sub(rf"(--conn-id[ =]){name}(?![\w.-])", r"\1<your connection id>", text)
    if len(conn_id) >= 6:  # also inside names made from it (a token store's key): too long to be a chance match
        return text.replace(f"'{conn_id}'", conn_id).replace(conn_id, "<your connection id>")
    return re.sub(rf"(?<![\w.-])'?{name}'?(?![\w.-])", "<your connection id>", text)


def form_widgets(conn_fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The Airflow 2 connection form's extra fields for a table of ``conn-fields`` (Airflow 3.2+ reads the same
    table from the provider info): password fields for secrets, check boxes, whole and free-form numbers."""
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for name, field in conn_fields.items():
        schema = field["schema"]
        text = {"label": lazy_gettext(field["label"]), "description": lazy_gettext(field.get("description", ""))}
        if schema.get("format") == "password":
            widgets[name] = PasswordField(**text, widget=BS3PasswordFieldWidget())
        elif "boolean" in schema["type"]:
            widgets[name] = BooleanField(**text, default=bool(schema.get("default")))
        elif "integer" in schema["type"]:
            widgets[name] = IntegerField(**text, widget=BS3TextFieldWidget(), validators=[Optional()])
        else:  # numbers and text: a text field keeps "2.5" as typed
            widgets[name] = StringField(**text, widget=BS3TextFieldWidget(), validators=[Optional()])
    return widgets
