"""The v3 API in the dialect's terms: a campaign's reports are read per activity (its primary email and its
resend), and windows are cut on the client, reading newest first and stopping after an in-order page that closes
with two records older than the window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.dialects.base import Dialect, SentState, Target
from airflow_provider_cc.dimensions import ACTIVITIES, CAMPAIGNS, LINKS, v3_activity_row, v3_campaign_row, v3_link_rows
from airflow_provider_cc.exceptions import (
    ConstantContactInputError,
    ConstantContactNotFoundError,
    ConstantContactResponseError,
)
from airflow_provider_cc.hooks.constant_contact import numeric_id
from airflow_provider_cc.hooks.constant_contact_v3 import (
    CONTACT_ACTIVITY_TYPES,
    MAX_ACTIVITY_STATS_IDS,
    MAX_CAMPAIGN_LIMIT,
    uuid_id,
)
from airflow_provider_cc.reports import ALL, V3, V3_CAMPAIGN_STATUS, V3_CONTACT_ACTIVITY, Report, report_of
from airflow_provider_cc.selection import Listed
from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
    from airflow_provider_cc.hooks.paging import RecordStream
    from airflow_provider_cc.window import Window

# The activities that have reports: the main email and its resend to non-openers (a permalink has none).
REPORTED_ROLES = ("primary_email", "resend")
# Campaign current_status values (title case on the API, compared lowered) with tracking data.
TRACKED = ("done", "executing")
REMOVED = "removed"
# The bulk summaries count contacts (an open by a contact who opened before adds nothing); the activity stats
# also count records: what proves an old campaign's report unchanged. By the summaries' keys.
EVENT_STATS = {"sends": "em_sends", "opens": "em_opens_all", "clicks": "em_clicks_all", "forwards": "em_forwards",
               "optouts": "em_optouts", "bounces": "em_bounces"}
# A campaign's current_status (title case, lowered) in the v2 names the account's selection reads.
AS_V2_STATUS = {v3.lower(): v2 for v2, (v3, _) in V3_CAMPAIGN_STATUS.items()}


def completed_sends(history: list[dict[str, Any]]) -> list[datetime]:
    """The run dates of an activity's completed sends (its checked ``send_history``)."""
    runs = [record_instant(h.get("run_date")) for h in history if h["send_status"] == "COMPLETED"]
    return [t for t in runs if t is not None]


def summary_answer(row: dict[str, Any]) -> Listed:
    """A bulk-summary row (checked by the hook) as a listing entry that answers for its campaign: sent at
    ``last_sent_date``, its report totals the ``unique_counts``."""
    return Listed(row["campaign_id"], row.get("last_sent_date"), answer={
        "id": row["campaign_id"], "status": "SENT", "last_run_date": row.get("last_sent_date"),
        "tracking_summary": dict(row.get("unique_counts") or {})})


def activities_of(campaign: dict[str, Any], campaign_id: str) -> list[Target]:
    """The reported activities of a checked campaign object (its primary email first, then its resend)."""
    listed = campaign["campaign_activities"]
    return [Target(campaign_id, a["campaign_activity_id"]) for role in REPORTED_ROLES for a in listed
            if a["role"] == role]


class V3Dialect(Dialect):
    """The v3 API (``constant_contact_v3`` connections).

    :param hook: the v3 hook.
    """

    api = V3
    server_side_window = False
    tracking_filters = ("bounce_codes",)
    windowed_contact_summary = True
    hook: ConstantContactV3Hook

    def file_fields(self) -> dict[str, str]:
        return {"api": V3}  # types the file's columns and schema

    def campaign_id(self, value: Any, name: str = "campaign_id") -> str:
        return uuid_id(value, name)

    def contact_id(self, value: Any, name: str = "contact_id") -> str:
        return uuid_id(value, name)

    def link_id(self, value: Any) -> str:
        return numeric_id(value, "link_id")

    # ---- campaign reports ----------------------------------------------------------------------------------
    def targets(self, campaign_id: str) -> list[Target]:
        """A campaign's primary email and resend activities (one request), or the one activity an activity
        id names (two: the campaign look-up answers 404 first)."""
        cid = self.campaign_id(campaign_id)
        try:
            return activities_of(self.hook.get_campaign(cid), cid)
        except ConstantContactNotFoundError:
            pass
        try:
            activity = self.hook.get_campaign_activity(cid)
        except ConstantContactNotFoundError:
            raise ConstantContactNotFoundError(
                f"campaign {cid} not found: the id is neither a campaign nor a campaign activity of this account "
                "(both answered 404)",
                status=404) from None
        if activity["role"] not in REPORTED_ROLES:
            raise ConstantContactInputError(
                f"campaign activity {cid} is a {activity['role']!r} activity, which has no reports: give its "
                "campaign's id, or its primary_email or resend activity's")
        return [Target(activity["campaign_id"], cid)]

    def stream(self, target: Target, report: Report, window: Window, *, link_id: str | None = None,
               limit: int = 500, lookback: timedelta = timedelta(0), **filters: Any) -> RecordStream:
        """Newest first, stopping after an in-order page that closes with two records older than the window's start
        (less ``lookback``); a snapshot report is read whole, whatever the window."""
        assert target.activity_id is not None
        snapshot = report.snapshot
        stop = None if snapshot or window.start is None else window.start - lookback
        return self.hook.iter_activity_tracking(target.activity_id, report.segment, url_id=link_id,
                                                bounce_codes=filters.get("bounce_codes"), limit=limit,
                                                window=None if snapshot else window, stop_before=stop,
                                                campaign_id=target.campaign_id)

    def tracked(self, campaign_id: str) -> tuple[bool, str]:
        try:
            status = self.hook.get_campaign(self.campaign_id(campaign_id))["current_status"]
        except ConstantContactNotFoundError:  # an activity id: its activity's status
            status = self.hook.get_campaign_activity(campaign_id)["current_status"]
        return status.lower() in TRACKED, status

    def sent(self, campaign_id: str) -> SentState:
        """Sent when the campaign is ``Done`` and one of its reported activities has a completed send in its
        history (one request while it is not done; then one per activity asked)."""
        cid = self.campaign_id(campaign_id)
        campaign = self.hook.get_campaign(cid)  # a 404 (deleted, or never was) raises
        status = campaign["current_status"]  # checked: a known status, in whatever case the API sent it
        if status.lower() == REMOVED:
            return SentState(False, True, status)
        if status.lower() != "done":
            return SentState(False, False, status)
        for target in activities_of(campaign, cid):
            assert target.activity_id is not None
            when = completed_sends(self.hook.get_send_history(target.activity_id))
            if when:
                return SentState(True, False, status, {
                    "campaign_id": cid, "name": campaign.get("name"), "status": status,
                    "last_run_date": format_api(max(when)), "campaign_activity_id": target.activity_id})
        return SentState(False, False, f"{status}, no completed send yet")

    def sent_pages(self, page_size: int) -> Iterator[list[tuple[str, datetime | None, str | None]]]:
        """The bulk summaries: every sent campaign, newest ``last_sent_date`` first, with that date but no name."""
        for batch in self.hook.iter_campaign_summaries(limit=page_size).batches():
            yield [(row["campaign_id"], _last_sent(row), None) for row in batch]

    def campaign_summary(self, campaign_id: str, *, update_summary: bool = False) -> dict[str, Any]:
        """The campaign's stats (``update_summary`` has no v3 meaning: stats carry their ``last_refresh_time``)."""
        cid = self.campaign_id(campaign_id)
        body = self.hook.get_campaign_stats([cid])
        results = [r for r in body.get("results") or [] if isinstance(r, dict)]
        if not results:
            raise ConstantContactNotFoundError(f"campaign {cid} has no stats (errors: {body.get('errors')})",
                                               status=404)
        return {**results[0], "campaign_id": cid}

    def list_campaigns(self, status: str, modified_since: Any = None) -> list[str]:
        wanted = str(status).upper()
        if wanted != "ALL" and wanted not in V3_CAMPAIGN_STATUS:
            raise ConstantContactInputError(
                f"unknown campaign status {status!r}; choose one of ALL, {', '.join(V3_CAMPAIGN_STATUS)}")
        names = {V3_CAMPAIGN_STATUS[wanted][0].lower()} if wanted != "ALL" else {
            v[0].lower() for k, v in V3_CAMPAIGN_STATUS.items() if k != "DELETED"}
        found = {str(c.get("campaign_id")).lower() for c in self.hook.iter_campaigns(updated_after=modified_since)
                 if str(c.get("current_status") or "").lower() in names and c.get("campaign_id")}
        return sorted(found)

    # ---- contact reports -----------------------------------------------------------------------------------
    def contact_report(self, name: Any) -> Report | None:
        if name == ALL:
            return None
        report = report_of(name, V3)
        if report.activity_type not in CONTACT_ACTIVITY_TYPES or report.snapshot:
            raise ConstantContactInputError(f"the v3 contact report has no {report.name!r}; choose all, or one "
                                            "of sends, opens, clicks, forwards, unsubscribes, bounces")
        return report

    def contact_columns(self, report: Report | None) -> tuple[str, ...]:
        return V3_CONTACT_ACTIVITY.columns

    def contact_stream(self, contact_id: str, report: Report | None, window: Window, *, limit: int = 100
                       ) -> RecordStream:
        types = CONTACT_ACTIVITY_TYPES if report is None else (report.activity_type,)
        return self.hook.iter_contact_activity(contact_id, activity_types=types, include_campaign_activity_names=True,
                                               limit=min(limit, 100), window=window, stop_before=window.start)

    def contact_summary(self, contact_id: str, *, by_campaign: bool, window: Window | None) -> Any:
        """Counts per campaign activity within ``window`` (v3 counts over a range; it needs one), or their sum."""
        if window is None or window.start is None or window.end is None:
            raise ConstantContactInputError("the v3 contact summary counts over a window: give created_since and "
                                            "created_before, or run it with a data interval")
        rows = [dict(r) for r in self.hook.iter_contact_activity_summary(contact_id, window.start, window.end)]
        if by_campaign:
            return rows
        keys = ("em_sends", "em_opens", "em_clicks", "em_forwards", "em_unsubscribes", "em_bounces")
        return {"contact_id": self.contact_id(contact_id),
                **{k: sum(int(r.get(k) or 0) for r in rows) for k in keys}}

    # ---- the account ---------------------------------------------------------------------------------------
    targets_cost_a_request = True
    listing_answers = True
    counts_events = True

    def listings(self) -> Iterator[tuple[Iterator[Listed], bool]]:
        """One list: the bulk campaign summaries, newest send first, 500 a page, each row answering for its
        campaign (send time and report totals): no request per campaign."""
        yield (summary_answer(row) for row in self.hook.iter_campaign_summaries()), True

    def activities(self, campaign_id: str, *, first_send: bool = True) -> tuple[tuple[str, ...], datetime | None]:
        """The campaign's primary email and resend (one request; the answer is checked: a campaign without
        exactly one primary email is a malformed answer, never "no activity") and, with a resend and
        ``first_send``, the primary email's first completed send (one more: the summaries' ``last_sent_date``
        is the resend's; asked only of a campaign the summaries list as sent, so it must have one)."""
        cid = self.campaign_id(campaign_id)
        targets = activities_of(self.hook.get_campaign(cid), cid)
        ids = tuple(t.activity_id for t in targets if t.activity_id is not None)
        first = None
        if first_send and len(ids) > 1:
            first = min(completed_sends(self.hook.get_send_history(ids[0], sent=True)))
        return ids, first

    def activity_campaign(self, activity_id: str) -> str:
        """The campaign a campaign activity names as its own (one request)."""
        return str(self.hook.get_campaign_activity(uuid_id(activity_id, "campaign_activity_id"))["campaign_id"])

    def event_totals(self, activity_ids: list[str]) -> dict[str, dict[str, int]]:
        """The activity stats' record counts (``em_opens_all``, not the unique ``em_opens``), by the bulk
        summaries' keys: ⌈activities / 10⌉ requests. An activity the stats leave out (``errors``) is absent."""
        found: dict[str, dict[str, int]] = {}
        for start in range(0, len(activity_ids), MAX_ACTIVITY_STATS_IDS):
            body = self.hook.get_activity_stats(activity_ids[start:start + MAX_ACTIVITY_STATS_IDS])
            for result in body.get("results") or []:
                stats, aid = result.get("stats"), str(result.get("campaign_activity_id") or "").lower()
                if isinstance(stats, dict) and aid:
                    found[aid] = {key: stats[name] for key, name in EVENT_STATS.items()
                                  if stats.get(name).__class__ is int}
        return found

    def answers_for(self, campaign_ids: list[str]) -> dict[str, Listed]:
        """The summaries of the campaigns given, read from the bulk summaries (⌈sent campaigns / 500⌉ pages,
        stopping once every one is found)."""
        wanted, found = set(campaign_ids), {}
        for row in self.hook.iter_campaign_summaries():
            if row["campaign_id"] in wanted:
                found[row["campaign_id"]] = summary_answer(row)
                if len(found) == len(wanted):
                    break
        return found

    def account_campaign(self, campaign_id: str) -> dict[str, Any]:
        """The campaign's status in v2's names (``Done`` is ``SENT``, ``Removed`` is ``DELETED``); no send time
        nor totals (the summaries carry those), so a campaign asked this way is pulled whole."""
        status = self.hook.get_campaign(self.campaign_id(campaign_id))["current_status"]
        return {"id": campaign_id, "status": AS_V2_STATUS.get(status.lower(), status.upper()),
                "last_run_date": None, "tracking_summary": {}}

    # ---- dimensions ----------------------------------------------------------------------------------------
    def request_rows(self, campaigns: list[str], activities: list[tuple[str, str]], clicked: list[tuple[str, str]],
                     known: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """Campaigns from the campaign list (500 a page, most recently updated first, until each is found);
        each activity from its own answer and send history (two requests, unless ``known``); each clicked
        activity's links (one request, every link, clicked or not)."""
        wanted, found = set(campaigns), {}
        if wanted:
            for item in self.hook.iter_campaigns(limit=MAX_CAMPAIGN_LIMIT):
                if item["campaign_id"] in wanted:
                    found[item["campaign_id"]] = v3_campaign_row(item)
                    if len(found) == len(wanted):
                        break
        rows: list[dict[str, Any]] = []
        for cid, aid in activities:
            if aid not in known:
                activity = self.hook.get_campaign_activity(aid)
                if activity["campaign_id"] != cid:
                    raise ConstantContactResponseError(
                        f"campaign activity {aid}: its answer names campaign {activity['campaign_id']}, while campaign "
                        f"{cid} lists it as its own")
                sends = [format_api(t) for t in completed_sends(self.hook.get_send_history(aid))]
                known[aid] = v3_activity_row(activity, sends)
            rows.append(known[aid])
        links = [row for cid, aid in clicked for row in v3_link_rows(
            cid, aid, self.hook.get_activity_links(aid, no_clicks=True)["link_click_counts"])]
        return {CAMPAIGNS: [found[c] for c in sorted(found)], ACTIVITIES: rows, LINKS: links}

    def rows_cost(self, campaigns: int, activities: int, clicked: int) -> int:
        """The campaign list's pages (at most one per 500 campaigns of the account; counted as one per 500 of
        the run's), two requests per unknown activity, one per clicked activity."""
        return -(-campaigns // MAX_CAMPAIGN_LIMIT) + 2 * activities + clicked

    # ---- completeness --------------------------------------------------------------------------------------
    comparable = ("sends", "opens", "clicks", "forwards", "unsubscribes", "bounces")

    def record_counts(self, totals: dict[str, dict[str, Any]], activities: dict[str, tuple[str, ...]]
                      ) -> dict[str, dict[str, int]]:
        """The activity stats' record counts, summed over each campaign's activities (⌈activities / 10⌉
        requests); a count the stats leave out for one of its activities is absent."""
        counts = self.event_totals([a for ids in activities.values() for a in ids])
        return {cid: {key: sum(counts[a][key] for a in ids) for key in EVENT_STATS
                      if all(key in counts.get(a, {}) for a in ids)} for cid, ids in activities.items()}

    def counts_cost(self, activities: int) -> int:
        """One activity-stats request per 10 activities."""
        return -(-activities // MAX_ACTIVITY_STATS_IDS)


def _last_sent(row: dict[str, Any]) -> datetime:
    """A summary row's send time (the hook checked that it is a date when present); a sent campaign's row without
    one is malformed: nothing on the page is believed."""
    moment = record_instant(row.get("last_sent_date"))
    if moment is None:
        raise ConstantContactResponseError(
            f"campaign summaries: campaign {row['campaign_id']} has no last_sent_date, though the summaries list "
            "only sent campaigns")
    return moment
