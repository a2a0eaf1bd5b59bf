"""The v3 API in the dialect's terms: a campaign's reports are read per activity (its primary email and its
resend), and windows are cut on the client, reading newest first and stopping at the first older record."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.dialects.base import Dialect, SentState, Target
from airflow_provider_cc.exceptions import ConstantContactInputError, ConstantContactNotFoundError
from airflow_provider_cc.hooks.constant_contact import numeric_id
from airflow_provider_cc.hooks.constant_contact_v3 import CONTACT_ACTIVITY_TYPES, uuid_id
from airflow_provider_cc.reports import ALL, V3, V3_CAMPAIGN_STATUS, V3_CONTACT_ACTIVITY, Report, report_of
from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
    from airflow_provider_cc.hooks.paging import RecordStream
    from airflow_provider_cc.window import Window

# The activities that have reports: the main email and its resend to non-openers (a permalink has none).
REPORTED_ROLES = ("primary_email", "resend")
# Campaign current_status values (title case) with tracking data.
TRACKED = ("done", "executing")
REMOVED = "removed"


def activities_of(campaign: Any, campaign_id: str) -> list[Target]:
    """The reported activities of a campaign object (``campaign_activities`` with their ``role``), leniently:
    entries without an id or of another role are passed over."""
    found = []
    for activity in (campaign.get("campaign_activities") or []) if isinstance(campaign, dict) else []:
        if isinstance(activity, dict) and activity.get("role") in REPORTED_ROLES and activity.get(
                "campaign_activity_id"):
            found.append(Target(campaign_id, str(activity["campaign_activity_id"]).lower()))
    return found


class V3Dialect(Dialect):
    """The v3 API (``constant_contact_v3`` connections).

    :param hook: the v3 hook.
    """

    api = V3
    server_side_window = False
    hook: ConstantContactV3Hook

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
                f"{cid} is neither a campaign nor a campaign activity of this account (both answered 404)",
                status=404) from None
        if activity.get("role") not in REPORTED_ROLES:
            raise ConstantContactInputError(
                f"campaign activity {cid} is a {activity.get('role')!r} activity, which has no reports: give its "
                "campaign's id, or its primary_email or resend activity's")
        return [Target(self.campaign_id(activity.get("campaign_id"), "its campaign_id"), cid)]

    def stream(self, target: Target, report: Report, window: Window, *, link_id: str | None = None,
               limit: int = 500, lookback: timedelta = timedelta(0), **filters: Any) -> RecordStream:
        """Newest first, stopping after the first page with a record older than the window's start (less
        ``lookback``); a snapshot report is read whole, whatever the window."""
        assert target.activity_id is not None
        snapshot = report.snapshot
        stop = None if snapshot or window.start is None else window.start - lookback
        return self.hook.iter_activity_tracking(target.activity_id, report.segment, url_id=link_id,
                                                bounce_codes=filters.get("bounce_codes"), limit=limit,
                                                window=None if snapshot else window, stop_before=stop,
                                                campaign_id=target.campaign_id)

    def tracked(self, campaign_id: str) -> tuple[bool, str]:
        try:
            status = str(self.hook.get_campaign(self.campaign_id(campaign_id)).get("current_status") or "")
        except ConstantContactNotFoundError:  # an activity id: its activity's status
            status = str(self.hook.get_campaign_activity(campaign_id).get("current_status") or "")
        return status.lower() in TRACKED, status

    def sent(self, campaign_id: str) -> SentState:
        """Sent when the campaign is ``Done`` and one of its reported activities has a completed send in its
        history (one request while it is not done; then one per activity asked)."""
        cid = self.campaign_id(campaign_id)
        campaign = self.hook.get_campaign(cid)  # a 404 (deleted, or never was) raises
        status = str(campaign.get("current_status") or "")
        if status.lower() == REMOVED:
            return SentState(False, True, status)
        if status.lower() != "done":
            return SentState(False, False, status)
        for target in activities_of(campaign, cid):
            assert target.activity_id is not None
            runs = [h for h in self.hook.get_send_history(target.activity_id) or []
                    if isinstance(h, dict) and str(h.get("send_status", "COMPLETED")).upper() == "COMPLETED"]
            when = [t for t in (record_instant(h.get("run_date")) for h in runs) if t is not None]
            if when:
                return SentState(True, False, status, {
                    "campaign_id": cid, "name": campaign.get("name"), "status": status,
                    "last_run_date": format_api(max(when)), "campaign_activity_id": target.activity_id})
        return SentState(False, False, f"{status}, no completed send yet")

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
