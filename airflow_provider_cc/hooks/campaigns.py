"""What the provider reads from campaign answers (v2 campaigns, v3 bulk summaries), checked before anything
relies on it.

A campaign answer decides whether a campaign's tracking is pulled at all, so it is held to the same standard
as a report page: an answer of the wrong shape (no ``status``, a ``tracking_summary`` that is not an object,
a send time that cannot be true) raises :class:`~airflow_provider_cc.hooks.transport.ResponseShapeError`,
which the transport retries as a malformed answer and then turns into a ``ConstantContactResponseError``
naming the campaign and the field. Nothing is ever skipped on the strength of a field that is missing.

Ids have one canonical text form (ASCII digits, no sign, no leading zeros, no surrounding white space), for
ids given by users and ids listed by the API alike, so one campaign is always one folder.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_cc.hooks.paging import _kind
from airflow_provider_cc.hooks.transport import ResponseShapeError
from airflow_provider_cc.window import format_api, record_instant

# A v3 id, in the lower case the provider keeps.
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A send time later than this past the moment the answer arrived cannot be true (clocks may differ a little).
FUTURE_TOLERANCE = timedelta(hours=1)


def canonical_id(value: Any) -> str | None:
    """The canonical text of a numeric id (``" 0012\\n"`` → ``"12"``), or ``None`` when it is not one.

    :param value: an int or a string of ASCII digits (white space around it is dropped).
    """
    if value.__class__ is int:
        return str(value) if value >= 0 else None
    if value.__class__ is not str:
        return None
    text = value.strip()
    if not text or not text.isascii() or not text.isdigit():
        return None
    return text.lstrip("0") or "0"


def check_campaign(body: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """``body`` if it is a campaign object the provider can rely on; :class:`ResponseShapeError` otherwise.

    :param body: the decoded answer to ``GET /emailmarketing/campaigns/{id}``.
    :param now: the moment the answer arrived (default: now).
    """
    if body.__class__ is not dict:
        raise ResponseShapeError(f"expected a campaign object, got {_kind(body)}")
    status = body.get("status")
    if status.__class__ is not str or not status.strip():
        raise ResponseShapeError(f"status is {_kind(status)}" + ("" if "status" in body else " (missing)"))
    summary = body.get("tracking_summary")
    if summary is not None and summary.__class__ is not dict:
        raise ResponseShapeError(f"tracking_summary is {_kind(summary)}, not an object")
    if body.get("last_run_date") is not None:
        sent = record_instant(body["last_run_date"])
        if sent is None:
            raise ResponseShapeError(f"last_run_date is {_kind(body['last_run_date'])} that is not a date")
        arrived = now or datetime.now(timezone.utc)
        if sent > arrived + FUTURE_TOLERANCE:
            raise ResponseShapeError(f"last_run_date {format_api(sent)} is in the future")
        created = record_instant(body.get("created_date"))
        if created is not None and sent < created:
            raise ResponseShapeError(f"last_run_date {format_api(sent)} is before its created_date "
                                     f"{format_api(created)}")
    return body


def check_campaign_items(items: list[dict[str, Any]]) -> None:
    """Give every campaign list item its canonical ``id``, in place; :class:`ResponseShapeError` for an item
    without one (a missing or null id, or one that is not a numeric id)."""
    for position, item in enumerate(items, 1):
        cid = canonical_id(item.get("id"))
        if cid is None:
            shown = "missing" if "id" not in item else _kind(item["id"])  # never echoed: it could be anything
            raise ResponseShapeError(f"campaign list item {position} has no usable id ({shown})")
        item["id"] = cid


def check_summary_items(items: list[dict[str, Any]], *, now: datetime | None = None) -> None:
    """v3 bulk-summary rows the account's selection can rely on, normalised in place (the ``campaign_id`` in
    lower case); :class:`ResponseShapeError` for a row without a UUID ``campaign_id``, with a
    ``last_sent_date`` that is not a date or is in the future, or with ``unique_counts`` that is not an object."""
    arrived = now or datetime.now(timezone.utc)
    for position, item in enumerate(items, 1):
        cid = item.get("campaign_id")
        text = cid.strip().lower() if cid.__class__ is str else ""
        if not UUID_PATTERN.fullmatch(text):
            shown = "missing" if "campaign_id" not in item else _kind(cid)  # never echoed
            raise ResponseShapeError(f"campaign summary {position} has no usable campaign_id ({shown})")
        item["campaign_id"] = text
        sent_text = item.get("last_sent_date")
        if sent_text is not None:
            sent = record_instant(sent_text)
            if sent is None:
                raise ResponseShapeError(f"campaign summary {position}: last_sent_date is {_kind(sent_text)} that "
                                         "is not a date")
            if sent > arrived + FUTURE_TOLERANCE:
                raise ResponseShapeError(f"campaign summary {position}: last_sent_date {format_api(sent)} is in "
                                         "the future")
        counts = item.get("unique_counts")
        if counts is not None and counts.__class__ is not dict:
            raise ResponseShapeError(f"campaign summary {position}: unique_counts is {_kind(counts)}, not an object")
