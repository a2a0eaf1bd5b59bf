"""What the provider reads from campaign answers (v2 campaigns; v3 campaigns, their activities, send histories
and bulk summaries), checked before anything relies on it.

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
# v3 enums, lower case (the API is inconsistent about case: ``Draft`` in a campaign, ``DRAFT`` in an activity).
V3_ROLES = ("primary_email", "permalink", "resend")
V3_STATUSES = ("draft", "scheduled", "executing", "done", "error", "removed")
V3_SEND_STATUSES = ("COMPLETED", "ERRORED")
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


def check_campaign(body: Any, *, now: datetime | None = None, campaign_id: str | None = None) -> dict[str, Any]:
    """``body`` if it is a campaign object the provider can rely on, its ``status`` in upper case (v2's
    enums are; compared so) and, with ``campaign_id``, its ``id`` the one asked for (as asked when the answer
    leaves it out); :class:`ResponseShapeError` otherwise.

    :param body: the decoded answer to ``GET /emailmarketing/campaigns/{id}``.
    :param now: the moment the answer arrived (default: now).
    :param campaign_id: the campaign asked for (canonical text).
    """
    if body.__class__ is not dict:
        raise ResponseShapeError(f"expected a campaign object, got {_kind(body)}")
    status = body.get("status")
    if status.__class__ is not str or not status.strip():
        raise ResponseShapeError(f"status is {_kind(status)}" + ("" if "status" in body else " (missing)"))
    if campaign_id is not None and "id" in body and canonical_id(body["id"]) != campaign_id:
        raise ResponseShapeError(f"id is another campaign's ({_kind(body['id'])})")  # never echoed
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
    links = body.get("click_through_details")
    if links is not None:
        if links.__class__ is not list:
            raise ResponseShapeError(f"click_through_details is {_kind(links)}, not an array")
        for position, link in enumerate(links, 1):
            if link.__class__ is not dict or canonical_id(link.get("url_uid")) is None:
                raise ResponseShapeError(f"click_through_details[{position}] has no usable url_uid (missing, or not an "
                                         "id)")
            link["url_uid"] = canonical_id(link["url_uid"])
    checked = {**body, "status": status.strip().upper()}
    return checked if campaign_id is None else {**checked, "id": campaign_id}




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


def _v3_enum(body: dict[str, Any], key: str, known: tuple[str, ...], where: str = "") -> str:
    """``body[key]`` without surrounding space, if it is one of ``known`` in any letter case;
    :class:`ResponseShapeError` naming the field otherwise."""
    value = body.get(key)
    if value.__class__ is not str or not value.strip():
        raise ResponseShapeError(f"{where}{key} is {_kind(value)}" + ("" if key in body else " (missing)"))
    if value.strip().lower() not in known:
        raise ResponseShapeError(f"{where}{key} {value.strip()[:40]!r} is none of {', '.join(known)}")
    return str(value.strip())


def _v3_id(body: dict[str, Any], key: str, where: str = "") -> str:
    """``body[key]`` as a lower-case UUID; :class:`ResponseShapeError` naming the field otherwise."""
    value = body.get(key)
    text = value.strip().lower() if value.__class__ is str else ""
    if not UUID_PATTERN.fullmatch(text):
        shown = "missing" if key not in body else _kind(value)  # never echoed: it could be anything
        raise ResponseShapeError(f"{where}{key} is not a v3 id ({shown})")
    return text


def check_v3_campaign(body: Any, campaign_id: str) -> dict[str, Any]:
    """A v3 campaign object the provider can rely on, normalised: each activity's ``role`` and id in lower
    case, an activity listed twice (with one role) once; ``current_status`` as sent (``Done``; compare it in
    lower case).
    :class:`ResponseShapeError` for anything else: not an object, another campaign's ``campaign_id``, an
    unknown ``current_status``, ``campaign_activities`` missing or not a list, an entry without a v3 id or a
    known ``role``, one id with two roles, or not exactly one ``primary_email`` (Constant Contact creates it
    with the campaign, so every campaign has one, and a sent campaign's reports are read in it).

    :param body: the decoded answer to ``GET /v3/emails/{campaign_id}``.
    :param campaign_id: the campaign asked for (a lower-case UUID).
    """
    if body.__class__ is not dict:
        raise ResponseShapeError(f"expected a campaign object, got {_kind(body)}")
    if "campaign_id" in body and _v3_id(body, "campaign_id") != campaign_id:
        raise ResponseShapeError("campaign_id is another campaign's")
    status = _v3_enum(body, "current_status", V3_STATUSES)
    listed = body.get("campaign_activities")
    if listed.__class__ is not list:
        raise ResponseShapeError(f"campaign_activities is {_kind(listed)}"
                                 + (", not an array" if "campaign_activities" in body else " (missing)"))
    roles: dict[str, str] = {}
    activities = []
    for position, activity in enumerate(listed, 1):
        where = f"campaign_activities[{position}]."
        if activity.__class__ is not dict:
            raise ResponseShapeError(f"campaign_activities[{position}] is {_kind(activity)}, not an object")
        aid = _v3_id(activity, "campaign_activity_id", where)
        role = _v3_enum(activity, "role", V3_ROLES, where).lower()
        if aid in roles:
            if roles[aid] != role:
                raise ResponseShapeError(f"campaign activity {aid} is listed twice, as {roles[aid]} and as {role}")
            continue  # listed twice alike: one activity, read once
        roles[aid] = role
        activities.append({**activity, "campaign_activity_id": aid, "role": role})
    primaries = sum(role == "primary_email" for role in roles.values())
    if primaries != 1:
        raise ResponseShapeError(f"campaign_activities holds {primaries} primary_email activities, not one (every "
                                 "campaign has one: its reports are read in it)")
    return {**body, "current_status": status, "campaign_activities": activities}


def check_v3_campaign_items(items: list[dict[str, Any]]) -> None:
    """v3 campaign list items the provider can rely on, normalised in place (``campaign_id`` in lower case);
    :class:`ResponseShapeError` for an item without a v3 ``campaign_id`` or with an unknown ``current_status``
    (an item left out would be a campaign missing from the list)."""
    for position, item in enumerate(items, 1):
        where = f"campaign list item {position}: "
        item["campaign_id"] = _v3_id(item, "campaign_id", where)
        _v3_enum(item, "current_status", V3_STATUSES, where)


def check_v3_activity(body: Any, campaign_activity_id: str) -> dict[str, Any]:
    """A v3 campaign activity object the provider can rely on (its ``campaign_id`` a v3 id, ``role`` and
    ``current_status`` known), ids and ``role`` in lower case; :class:`ResponseShapeError` otherwise. Its
    ``campaign_activity_id`` is the one asked for (an answer may leave it out; one naming another is refused).

    :param body: the decoded answer to ``GET /v3/emails/activities/{campaign_activity_id}``.
    :param campaign_activity_id: the activity asked for (a lower-case UUID).
    """
    if body.__class__ is not dict:
        raise ResponseShapeError(f"expected a campaign activity object, got {_kind(body)}")
    if "campaign_activity_id" in body and _v3_id(body, "campaign_activity_id") != campaign_activity_id:
        raise ResponseShapeError("campaign_activity_id is another activity's")
    return {**body, "campaign_activity_id": campaign_activity_id, "campaign_id": _v3_id(body, "campaign_id"),
            "role": _v3_enum(body, "role", V3_ROLES).lower(),
            "current_status": _v3_enum(body, "current_status", V3_STATUSES)}


def check_send_history(body: Any, *, sent: bool = False) -> list[dict[str, Any]]:
    """A v3 activity's send history the provider can rely on: an array of sends, each with a known
    ``send_status`` (upper-cased) and, when ``COMPLETED``, a ``run_date`` that is a date.
    :class:`ResponseShapeError` otherwise, and with ``sent`` for a history without a completed send.

    :param body: the decoded answer to ``GET /v3/emails/activities/{id}/send_history``.
    :param sent: the activity is known to be sent (its campaign's primary email, when the campaign was).
    """
    if body.__class__ is not list:
        raise ResponseShapeError(f"expected an array of sends, got {_kind(body)}")
    runs = []
    for position, run in enumerate(body, 1):
        if run.__class__ is not dict:
            raise ResponseShapeError(f"send {position} is {_kind(run)}, not an object")
        status = _v3_enum(run, "send_status", tuple(s.lower() for s in V3_SEND_STATUSES), f"send {position}: ").upper()
        if status == "COMPLETED" and record_instant(run.get("run_date")) is None:
            raise ResponseShapeError(f"send {position}: run_date is {_kind(run.get('run_date'))} that is not a date"
                                     + ("" if "run_date" in run else " (missing)"))
        runs.append({**run, "send_status": status})
    if sent and not any(run["send_status"] == "COMPLETED" for run in runs):
        raise ResponseShapeError("it holds no COMPLETED send, though its campaign was sent")
    return runs


def check_v3_links(body: Any) -> dict[str, Any]:
    """A v3 activity's links answer the provider can rely on: ``link_click_counts`` an array of links, each
    with a ``url_id`` (as text) and, if any, an integer ``unique_clicks``; :class:`ResponseShapeError` otherwise.

    :param body: the decoded answer to ``GET /v3/reports/email_reports/{id}/links``.
    """
    if body.__class__ is not dict:
        raise ResponseShapeError(f"expected a links object, got {_kind(body)}")
    links = body.get("link_click_counts")
    if links.__class__ is not list:
        raise ResponseShapeError(f"link_click_counts is {_kind(links)}"
                                 + (", not an array" if "link_click_counts" in body else " (missing)"))
    checked = []
    for position, link in enumerate(links, 1):
        if link.__class__ is not dict:
            raise ResponseShapeError(f"link_click_counts[{position}] is {_kind(link)}, not an object")
        url_id = canonical_id(link.get("url_id"))
        if url_id is None:
            raise ResponseShapeError(f"link_click_counts[{position}] has no usable url_id")
        clicks = link.get("unique_clicks")
        if clicks is not None and (clicks.__class__ is not int or clicks < 0):
            raise ResponseShapeError(f"link_click_counts[{position}].unique_clicks is {_kind(clicks)}, not a count")
        checked.append({**link, "url_id": url_id})
    return {**body, "link_click_counts": checked}


