"""The hook for a connection id, whichever API version its connection type speaks.

Operators, sensors and the account machinery call :func:`hook_for` and never ask which version they are on:
a ``constant_contact`` connection gives the v2 hook, a ``constant_contact_v3`` one the v3 hook.
"""

from __future__ import annotations

from typing import Any, Union

from airflow_provider_cc._compat import BaseHook, mask_secret
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.get_provider_info import V3_CONN_TYPE
from airflow_provider_cc.hooks.connection import ConnectionSettings
from airflow_provider_cc.hooks.connection_v3 import V3Settings
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

AnyHook = Union[ConstantContactHook, ConstantContactV3Hook]  # noqa: UP007 (a runtime alias on Python 3.10)
V2_CONN_TYPE = ConstantContactHook.conn_type


def hook_for(conn_id: str, **overrides: Any) -> AnyHook:
    """The v2 or v3 hook for ``conn_id``, by its connection type; the connection is read (and its secrets
    masked) once, here.

    :param conn_id: an Airflow connection of type ``constant_contact`` or ``constant_contact_v3``.
    :param overrides: ``timeout``, ``max_retries`` or ``requests_per_second`` for the hook.
    """
    settings = settings_of(BaseHook.get_connection(conn_id), conn_id)
    for secret in settings.secrets:
        mask_secret(secret)
    return hook_with(conn_id, settings, **overrides)


def settings_of(connection: Any, conn_id: str) -> ConnectionSettings | V3Settings:
    """A connection's checked settings, of the version its type names (secrets not masked yet: the caller
    masks them, the async way in a trigger).

    :param connection: an Airflow ``Connection``.
    :param conn_id: its id, for messages.
    """
    conn_type = (connection.conn_type or "").replace("-", "_")
    if conn_type == V3_CONN_TYPE:
        return V3Settings.from_connection(connection)
    if conn_type in (V2_CONN_TYPE, ""):
        return ConnectionSettings.from_connection(connection)
    raise ConstantContactInputError(
        f"connection {conn_id!r} is of type {connection.conn_type!r}; the Constant Contact operators need a "
        f"{V2_CONN_TYPE!r} (v2 API) or {V3_CONN_TYPE!r} (v3 API, OAuth2) connection")


def hook_with(conn_id: str, settings: ConnectionSettings | V3Settings, **overrides: Any) -> AnyHook:
    """The hook of already-read settings (their secrets masked by the caller).

    :param conn_id: the connection's id.
    :param settings: its settings, v2 or v3.
    :param overrides: ``timeout``, ``max_retries`` or ``requests_per_second`` for the hook.
    """
    if isinstance(settings, V3Settings):
        return ConstantContactV3Hook(conn_id, settings=settings, **overrides)
    return ConstantContactHook(conn_id, settings=settings, **overrides)
