"""The dimension tables the account run writes beside the events: what campaigns, campaign activities (v3) and
links are, so that events can be joined to names, subjects, send dates and URLs.

One :class:`Dimension` row per (API version, table): its typed columns (the catalogue's column types, as for
the reports) and its natural key. The row builders turn the API's (checked) answers into rows; they read
only fields the answers carry and never decide anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_cc.reports import INTEGER, STRING, TIMESTAMP, V2, V3, Column
from airflow_provider_cc.window import format_api, record_instant

CAMPAIGNS, ACTIVITIES, LINKS = "campaigns", "campaign_activities", "links"


@dataclass(frozen=True)
class Dimension:
    """One dimension table of one API version.

    :param name: the table (``campaigns``, ``campaign_activities``, ``links``): its folder and schema name.
    :param api: ``v2`` or ``v3``.
    :param schema: the typed columns, in file order.
    :param key: the natural key (one row per key in a file; across runs, the latest file's row is current).
    :param source: what the rows are read from, for the docs and the schema's description.
    """

    name: str
    api: str
    schema: tuple[Column, ...]
    key: tuple[str, ...]
    source: str

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, in file order."""
        return tuple(c.name for c in self.schema)


def _c(name: str, kind: str = STRING, description: str = "") -> Column:
    return Column(name, kind, description)


V2_DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(CAMPAIGNS, V2, (
        _c("campaign_id", description="the email campaign's id (digits, as a string)"),
        _c("name", description="the campaign's name"), _c("subject", description="the email's subject line"),
        _c("from_name", description="the sender's name"), _c("from_email", description="the sender's address"),
        _c("status", description="SENT, RUNNING, ... as the API names it"),
        _c("created_date", TIMESTAMP, "when the campaign was created"),
        _c("modified_date", TIMESTAMP, "when it was last changed"),
        _c("last_run_date", TIMESTAMP, "when it was last sent")), ("campaign_id",),
        "each campaign's own answer, which the selection reads anyway (no extra request)"),
    Dimension(LINKS, V2, (
        _c("campaign_id", description="the email campaign's id"),
        _c("link_id", description="the link's id (click records' link_id)"),
        _c("link_uri", description="the link's URL"),
        _c("click_count", INTEGER, "clicks on the link, as the campaign's answer counted them when the run read "
                                   "it")), ("campaign_id", "link_id"),
        "the campaign answers' click_through_details (no extra request)"),
)
V3_DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(CAMPAIGNS, V3, (
        _c("campaign_id", description="the email campaign's id (a UUID)"),
        _c("name", description="the campaign's name"),
        _c("current_status", description="Done, Executing, ... as the API names it"),
        _c("type", description="the campaign's type, e.g. NEWSLETTER"),
        _c("created_at", TIMESTAMP, "when the campaign was created"),
        _c("updated_at", TIMESTAMP, "when it was last changed")), ("campaign_id",),
        "the campaign list, GET /v3/emails (500 a page, most recently updated first, until every campaign of "
        "the run is found)"),
    Dimension(ACTIVITIES, V3, (
        _c("campaign_activity_id", description="the activity's id (a UUID): a primary_email or resend"),
        _c("campaign_id", description="its campaign's id"),
        _c("role", description="primary_email or resend"), _c("subject", description="the email's subject"),
        _c("preheader", description="the email's preheader"), _c("from_name", description="the sender's name"),
        _c("from_email", description="the sender's address"),
        _c("reply_to_email", description="the reply-to address"),
        _c("current_status", description="DONE, ... as the API names it"),
        _c("contact_list_ids", description="the contact lists it was sent to, comma-separated"),
        _c("first_sent", TIMESTAMP, "its first completed send"),
        _c("last_sent", TIMESTAMP, "its last completed send")), ("campaign_activity_id",),
        "GET /v3/emails/activities/{id} and its send_history: two requests per activity, once (kept under "
        "{root}_state/campaigns/ until its campaign is sent again)"),
    Dimension(LINKS, V3, (
        _c("campaign_id", description="the email campaign's id"),
        _c("campaign_activity_id", description="the activity's id"),
        _c("url_id", description="the link's id (click records' url_id)"), _c("link_url", description="its URL"),
        _c("unique_clicks", INTEGER, "contacts who clicked it, when the run read it")),
        ("campaign_activity_id", "url_id"),
        "GET /v3/reports/email_reports/{activity}/links: one request per activity whose clicks the run wrote"),
)
DIMENSIONS: dict[str, dict[str, Dimension]] = {V2: {d.name: d for d in V2_DIMENSIONS},
                                               V3: {d.name: d for d in V3_DIMENSIONS}}


def dimension_of(name: str, api: str) -> Dimension | None:
    """The dimension ``name`` of ``api``, or ``None``."""
    return DIMENSIONS.get(api, {}).get(name)


def _text(value: Any) -> str | None:
    """A scalar as text (ids arrive as numbers or strings); anything else as nothing."""
    if value is None or value.__class__ in (dict, list, bool):
        return None
    return str(value)


def _instant(value: Any) -> str | None:
    """A date in its canonical text, or nothing when it is not one."""
    moment = record_instant(value)
    return None if moment is None else format_api(moment)


def v2_rows(answer: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A v2 campaign's answer (checked: ``click_through_details`` a list of links with ids) as its rows."""
    cid = _text(answer.get("id"))
    campaign = {"campaign_id": cid, **{k: _text(answer.get(k)) for k in (
        "name", "subject", "from_name", "from_email", "status")},
        **{k: _instant(answer.get(k)) for k in ("created_date", "modified_date", "last_run_date")}}
    links = {}
    for link in answer.get("click_through_details") or ():
        count = link.get("click_count")
        links[str(link["url_uid"])] = {"campaign_id": cid, "link_id": str(link["url_uid"]),
                                       "link_uri": _text(link.get("url")),
                                       "click_count": count if count.__class__ is int else None}
    return {CAMPAIGNS: [campaign], LINKS: [links[k] for k in sorted(links)]}


def v3_campaign_row(item: dict[str, Any]) -> dict[str, Any]:
    """A v3 campaign list item (checked: a UUID ``campaign_id``) as its row."""
    return {"campaign_id": item["campaign_id"], **{k: _text(item.get(k)) for k in ("name", "current_status", "type")},
            **{k: _instant(item.get(k)) for k in ("created_at", "updated_at")}}


def v3_activity_row(activity: dict[str, Any], sends: list[str]) -> dict[str, Any]:
    """A v3 campaign activity (checked) and its completed sends' dates as its row."""
    lists = activity.get("contact_list_ids")
    return {"campaign_activity_id": activity["campaign_activity_id"], "campaign_id": activity["campaign_id"],
            "role": activity["role"], **{k: _text(activity.get(k)) for k in (
                "subject", "preheader", "from_name", "from_email", "reply_to_email", "current_status")},
            "contact_list_ids": ",".join(sorted(str(i) for i in lists if _text(i) is not None))
            if lists.__class__ is list else None,
            "first_sent": min(sends, default=None), "last_sent": max(sends, default=None)}


def v3_link_rows(campaign_id: str, activity_id: str, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A v3 activity's links answer (checked: each link with a ``url_id``) as its rows, by ``url_id``."""
    rows = {str(link["url_id"]): {"campaign_id": campaign_id, "campaign_activity_id": activity_id,
                                  "url_id": str(link["url_id"]), "link_url": _text(link.get("link_url")),
                                  "unique_clicks": link["unique_clicks"]
                                  if link.get("unique_clicks").__class__ is int else None}
            for link in links}
    return [rows[k] for k in sorted(rows)]
