"""Where files go: the one home of the output layout, file names and destination resolution.

Every writer of the provider (the per-campaign and per-contact operators, the account operator) names its
files here, so a daily run, a rerun and a one-pass history load of the same interval name the same objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.sinks import extension

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_cc.window import Window


def stamp(value: datetime) -> str:
    """Compact UTC time for object keys: ``20240101T000000Z`` (milliseconds only when present)."""
    ms = value.microsecond // 1000
    return f"{value:%Y%m%dT%H%M%S}" + (f".{ms:03d}" if ms else "") + "Z"


def file_name(window: Window, file_format: str, compression: str | None) -> str:
    """``{start}_{end}.{ext}`` of a window's file."""
    assert window.start is not None and window.end is not None
    return f"{stamp(window.start)}_{stamp(window.end)}{extension(file_format, compression)}"


def campaign_layout(report: str, campaign_id: str, link_id: str | None = None) -> str:
    """Folder of a campaign report's files below a root; ids must already be normalised."""
    link = f"/link_id={link_id}" if link_id is not None else ""
    return f"campaign/{report}/campaign_id={campaign_id}{link}"


def contact_layout(report: str, contact_id: str) -> str:
    """Folder of a contact report's files below a root; ids must already be normalised."""
    return f"contact/{report}/contact_id={contact_id}"


def resolve_target(destination: Any, storage_conn_id: str | None, layout: str, window: Window, *,
                   file_format: str, compression: str | None) -> ObjectStoragePath:
    """The object to write: ``destination`` itself, or, when it is a root (ends in ``/``), the layout's file."""
    path = destination
    if not isinstance(path, ObjectStoragePath):
        text = str(destination)
        if text.startswith("/"):
            text = "file://" + text
        path = ObjectStoragePath(text, conn_id=storage_conn_id)
    if str(destination).endswith("/"):
        path = path / layout / file_name(window, file_format, compression)
    return path
