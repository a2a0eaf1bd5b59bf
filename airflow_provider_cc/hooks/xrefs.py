"""What the provider reads from the v2 → v3 cross-reference answers, checked before anything relies on it.

A cross-reference table is written once and read for good (the switch-over views join on it), so an answer is
held to the standard of a report page: a body of the wrong shape, an item without a v2 id or with one that was
not asked, a v3 id that is not a UUID, or one v2 id listed twice with different v3 ids raises
:class:`~airflow_provider_cc.hooks.transport.ResponseShapeError`, which the transport retries as a malformed
answer and then turns into a ``ConstantContactResponseError`` naming the endpoint and the field.

What "unknown" looks like: the API lists only the ids it knows (``CrossReferenceResponse.xrefs``), so an id is
unknown when a well-formed answer leaves it out, or lists it with no v3 id at all (accepted, though the
reference never shows it). One such answer is not believed: the caller asks again for the ids it left unmapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_cc.hooks.campaigns import UUID_PATTERN, canonical_id
from airflow_provider_cc.hooks.paging import _kind
from airflow_provider_cc.hooks.transport import ResponseShapeError


@dataclass(frozen=True)
class XrefEndpoint:
    """One cross-reference endpoint.

    :param path: the endpoint's path.
    :param param: the query parameter taking the comma-separated v2 ids.
    :param what: what it maps (``campaign``, ``contact``), for labels.
    :param v2_field: the answer's v2 id field.
    :param v3_fields: the answer's v3 id fields (UUIDs), all present for a known id.
    """

    path: str
    param: str
    what: str
    v2_field: str
    v3_fields: tuple[str, ...]

    def label(self, count: int, confirming: bool = False) -> str:
        """A safe description of one request, naming the endpoint."""
        again = ", asked again: the first answer did not map them" if confirming else ""
        return f"{self.what} id cross-reference GET {self.path} ({count} ids{again})"


CAMPAIGN_XREF_ENDPOINT = XrefEndpoint("/v3/emails/campaign_id_xrefs", "v2_email_campaign_ids", "campaign",
                                      "v2_email_campaign_id", ("campaign_id", "campaign_activity_id"))
CONTACT_XREF_ENDPOINT = XrefEndpoint("/v3/contacts/contact_id_xrefs", "sequence_ids", "contact", "sequence_id",
                                    ("contact_id",))


def _uuid(value: Any, where: str) -> str:
    text = value.strip().lower() if value.__class__ is str else ""
    if not UUID_PATTERN.fullmatch(text):
        raise ResponseShapeError(f"{where} is {_kind(value)} that is not a v3 id (a UUID)")  # never echoed
    return text


def check_xrefs(body: Any, endpoint: XrefEndpoint, asked: frozenset[str]) -> dict[str, tuple[str, ...] | None]:
    """``{v2 id: its v3 ids, or None when the item says it has none}`` of one answer, ids canonical (v2 ids
    without leading zeros, v3 ids in lower case); :class:`ResponseShapeError` for anything the table cannot
    rely on. Ids the answer leaves out are not in the result.

    :param body: the decoded answer.
    :param endpoint: the endpoint asked.
    :param asked: the canonical v2 ids the request named.
    """
    if body.__class__ is not dict:
        raise ResponseShapeError(f"the body is {_kind(body)}, not an object with xrefs")
    items = body.get("xrefs")
    if items.__class__ is not list:
        raise ResponseShapeError("xrefs is " + ("missing" if "xrefs" not in body else _kind(items)) + ", not an array")
    found: dict[str, tuple[str, ...] | None] = {}
    for position, item in enumerate(items):
        where = f"xrefs[{position}]"
        if item.__class__ is not dict:
            raise ResponseShapeError(f"{where} is {_kind(item)}, not an object")
        raw = item.get(endpoint.v2_field)
        v2 = canonical_id(raw)
        if v2 is None:
            shown = "missing" if endpoint.v2_field not in item else f"{_kind(raw)} that is not a v2 id"
            raise ResponseShapeError(f"{where}.{endpoint.v2_field} is {shown}")
        if v2 not in asked:
            raise ResponseShapeError(f"{where}.{endpoint.v2_field} {v2} was not asked for")
        values = [item.get(field) for field in endpoint.v3_fields]
        ids: tuple[str, ...] | None = None
        if any(v not in (None, "") for v in values):  # none at all: the item says the id is unknown
            ids = tuple(_uuid(v, f"{where}.{field}") for field, v in zip(endpoint.v3_fields, values, strict=True))
        if v2 in found and found[v2] != ids:
            raise ResponseShapeError(
                f"{where}: v2 id {v2} is listed twice with different v3 ids ({_shown(found[v2])} and {_shown(ids)})")
        found[v2] = ids
    return found


def _shown(ids: tuple[str, ...] | None) -> str:
    return "none" if ids is None else "/".join(ids)
