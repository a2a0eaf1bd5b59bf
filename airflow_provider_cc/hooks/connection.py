"""Reading a ``constant_contact`` Airflow connection into checked settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_cc.exceptions import ConstantContactInputError

DEFAULT_HOST = "https://api.constantcontact.com"


def _extra(extras: dict[str, Any], name: str) -> Any:
    """An extra by its plain name or the legacy ``extra__constant_contact__`` prefix."""
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(f"extra__constant_contact__{name}")
    return None if value == "" else value


def _number(value: Any, name: str, conn_id: str, *, default: float, minimum: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConstantContactInputError(f"connection {conn_id!r}: extra {name}={value!r} is not a number") from None
    if number < minimum:
        raise ConstantContactInputError(f"connection {conn_id!r}: extra {name} must be at least {minimum}")
    return number


@dataclass(frozen=True)
class ConnectionSettings:
    """What the hook needs from a connection.

    :param base_url: scheme and host, no path.
    :param api_key: the v2 API key.
    :param token: the v2 OAuth2 access token.
    :param requests_per_second: client-side rate ceiling (0: off).
    :param timeout: seconds per request.
    :param max_retries: retries per request.
    :param backoff: first retry wait in seconds.
    """

    base_url: str
    api_key: str
    token: str
    requests_per_second: float = 4.0
    timeout: float = 60.0
    max_retries: int = 5
    backoff: float = 1.0

    def __repr__(self) -> str:  # never show the secrets
        return (f"ConnectionSettings(base_url={self.base_url!r}, requests_per_second={self.requests_per_second}, "
                f"timeout={self.timeout}, max_retries={self.max_retries})")

    @classmethod
    def from_connection(cls, conn: Any) -> ConnectionSettings:
        """Read and check an Airflow ``Connection``; missing credentials are refused here."""
        conn_id = getattr(conn, "conn_id", None) or "constant_contact"
        extras = conn.extra_dejson or {}
        api_key = _extra(extras, "api_key") or conn.login
        token = conn.password or _extra(extras, "access_token") or _extra(extras, "token")
        missing = [name for name, value in (("api_key (extra)", api_key), ("access token (password)", token))
                   if not value]
        if missing:
            raise ConstantContactInputError(
                f"connection {conn_id!r} has no {' and no '.join(missing)}: set the password to the access token "
                'and the extra {"api_key": "..."}'
            )
        host = (conn.host or "").strip().rstrip("/")
        if not host:
            base_url = DEFAULT_HOST
        elif "://" in host:
            base_url = host
        else:
            base_url = f"{conn.schema or 'https'}://{host}" + (f":{conn.port}" if conn.port else "")
        return cls(
            base_url=base_url,
            api_key=str(api_key),
            token=str(token),
            requests_per_second=_number(_extra(extras, "requests_per_second"), "requests_per_second", conn_id,
                                        default=4.0, minimum=0.0),
            timeout=_number(_extra(extras, "timeout"), "timeout", conn_id, default=60.0, minimum=0.001),
            max_retries=int(_number(_extra(extras, "max_retries"), "max_retries", conn_id, default=5, minimum=0)),
            backoff=_number(_extra(extras, "backoff"), "backoff", conn_id, default=1.0, minimum=0.0),
        )
