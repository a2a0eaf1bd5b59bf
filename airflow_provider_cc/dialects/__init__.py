"""The two API versions behind one face: what the operators, the sensor and the account machinery ask of "the
API", answered by v2 or v3 as the connection says.

A :class:`~airflow_provider_cc.dialects.base.Dialect` holds a version's hook and answers in the terms the
modules above it use (campaigns, the units a report is read in, a report's records in a window, whether a
campaign was sent, the account's campaigns for a window); it never hands them a URL, and they never ask
which version they are on. :func:`dialect_for` picks it from the connection's type.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_cc.dialects.base import Dialect, SentState, Target
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
from airflow_provider_cc.hooks.factory import hook_for

__all__ = ["Dialect", "SentState", "Target", "dialect_for", "dialect_of"]


def dialect_of(hook: Any) -> Dialect:
    """The dialect of a v2 or v3 hook.

    :param hook: a ``ConstantContactHook`` or ``ConstantContactV3Hook``.
    """
    if isinstance(hook, ConstantContactV3Hook):
        from airflow_provider_cc.dialects.v3 import V3Dialect

        return V3Dialect(hook)
    from airflow_provider_cc.dialects.v2 import V2Dialect

    return V2Dialect(hook)


def dialect_for(conn_id: str, **overrides: Any) -> Dialect:
    """The dialect of a connection (``constant_contact``: v2; ``constant_contact_v3``: v3); the connection is
    read, and its secrets masked, once.

    :param conn_id: the Airflow connection.
    :param overrides: ``timeout``, ``max_retries`` or ``requests_per_second`` for the hook.
    """
    return dialect_of(hook_for(conn_id, **overrides))
