"""What the provider reads from counter answers (v2 campaign and contact summaries, v2 per-campaign contact
summaries, v3 stats and contact activity summaries), checked before anything is returned or added up.

An answer of the wrong shape (not an object, a counter missing or not a count, another contact's id, a row
listed twice) raises :class:`~airflow_provider_cc.hooks.transport.ResponseShapeError`, which the transport
retries as a malformed answer and then turns into a ``ConstantContactResponseError`` naming the endpoint and
the field. An id the answer leaves out is the one asked for; an id it gives must be that one.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_cc.hooks.campaigns import _v3_id, canonical_id
from airflow_provider_cc.hooks.paging import _kind
from airflow_provider_cc.hooks.transport import ResponseShapeError

# v2's counters: the campaign summary and the contact summary have all six; the per-campaign rows have no
# sends nor unsubscribes ("Unsubscribe activities are not included").
V2_COUNTERS = ("sends", "opens", "clicks", "forwards", "unsubscribes", "bounces")
V2_BY_CAMPAIGN_COUNTERS = ("opens", "clicks", "forwards", "bounces")
V3_CONTACT_COUNTERS = ("em_sends", "em_opens", "em_clicks", "em_forwards", "em_unsubscribes", "em_bounces")


def _counters(body: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    """Each of ``keys`` a count, made an int in place (guides show digit strings where specs say integers)."""
    for key in keys:
        value = body.get(key)
        if value.__class__ is str and value.strip().isascii() and value.strip().isdigit():
            value = body[key] = int(value)
        if value.__class__ is not int or value < 0:
            raise ResponseShapeError(f"{where}{key} is {_kind(value)}" + (", not a count" if key in body
                                                                         else " (missing)"))


def _object(body: Any, what: str) -> dict[str, Any]:
    if body.__class__ is not dict:
        raise ResponseShapeError(f"expected {what}, got {_kind(body)}")
    return body


def _same_v2_id(body: dict[str, Any], key: str, asked: str, where: str = "") -> None:
    if key in body and canonical_id(body[key]) != asked:
        raise ResponseShapeError(f"{where}{key} is not the one asked for ({_kind(body[key])} of another)")


def check_v2_campaign_summary(body: Any) -> dict[str, Any]:
    """A v2 campaign tracking summary: an object with the six counters as counts.

    :param body: the decoded answer to ``GET /emailmarketing/campaigns/{id}/tracking/reports/summary``.
    """
    _counters(_object(body, "a summary object"), V2_COUNTERS, "")
    return body


def check_v2_contact_summary(body: Any, contact_id: str) -> dict[str, Any]:
    """A v2 contact tracking summary: an object with the six counters, for the contact asked for (its
    ``contact_id`` as asked when the answer leaves it out).

    :param body: the decoded answer to ``GET /contacts/{id}/tracking/reports/summary``.
    :param contact_id: the contact asked for (canonical text).
    """
    _counters(_object(body, "a summary object"), V2_COUNTERS, "")
    _same_v2_id(body, "contact_id", contact_id)
    return {**body, "contact_id": contact_id}


def check_v2_by_campaign(body: Any, contact_id: str) -> list[dict[str, Any]]:
    """A v2 contact's per-campaign summary: an array of rows, each with a numeric ``campaign_id`` (made
    canonical), listed once, and its four counters.

    :param body: the decoded answer to ``GET /contacts/{id}/tracking/reports/summaryByCampaign``.
    :param contact_id: the contact asked for (canonical text).
    """
    if body.__class__ is not list:
        raise ResponseShapeError(f"expected an array of per-campaign summaries, got {_kind(body)}")
    rows, seen = [], set()
    for position, row in enumerate(body, 1):
        where = f"row {position}: "
        if row.__class__ is not dict:
            raise ResponseShapeError(f"row {position} is {_kind(row)}, not an object")
        cid = canonical_id(row.get("campaign_id"))
        if cid is None:
            shown = "missing" if "campaign_id" not in row else _kind(row["campaign_id"])  # never echoed
            raise ResponseShapeError(f"{where}campaign_id is not a numeric id ({shown})")
        if cid in seen:
            raise ResponseShapeError(f"campaign {cid} is listed twice")
        seen.add(cid)
        _same_v2_id(row, "contact_id", contact_id, where)
        _counters(row, V2_BY_CAMPAIGN_COUNTERS, where)
        rows.append({**row, "campaign_id": cid})
    return rows


def check_v3_stats(body: Any, id_key: str) -> dict[str, Any]:
    """A v3 stats answer (campaigns or activities) the provider can rely on: an object whose ``results`` is an
    array of objects, each with a v3 ``id_key`` (lower-cased) and a ``stats`` object, and whose ``errors``, if
    any, an array. (An id the stats leave out is under ``errors``: absent, not 0.)

    :param body: the decoded answer to ``GET /v3/reports/stats/...``.
    :param id_key: ``campaign_id`` or ``campaign_activity_id``.
    """
    _object(body, "a stats object with results")
    results = body.get("results")
    if results.__class__ is not list or any(r.__class__ is not dict for r in results):
        raise ResponseShapeError(f"results is {_kind(results)}" + ("" if "results" in body else " (missing)")
                                 + ", not an array of objects")
    errors = body.get("errors")
    if errors is not None and errors.__class__ is not list:
        raise ResponseShapeError(f"errors is {_kind(errors)}, not an array")
    checked = []
    for position, result in enumerate(results, 1):
        rid = _v3_id(result, id_key, f"results[{position}].")
        if result.get("stats").__class__ is not dict:
            raise ResponseShapeError(f"results[{position}].stats is {_kind(result.get('stats'))}, not an object")
        checked.append({**result, id_key: rid})
    return {**body, "results": checked}


class ContactActivityRows:
    """Checks the pages of one v3 contact activity summary: each row with a v3 ``campaign_activity_id``
    (lower-cased in place), its six counters, and listed once in the whole summary."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        page: set[str] = set()
        for position, row in enumerate(rows, 1):
            text = _v3_id(row, "campaign_activity_id", f"row {position}: ")
            if text in page or text in self._seen:
                raise ResponseShapeError(f"campaign activity {text} is listed twice")
            page.add(text)
            _counters(row, V3_CONTACT_COUNTERS, f"row {position}: ")
        for row in rows:
            row["campaign_activity_id"] = row["campaign_activity_id"].strip().lower()
        self._seen |= page
