"""The v2 API in the dialect's terms: a campaign is its own target, and the API filters by time itself."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.dialects.base import Dialect, SentState, Target
from airflow_provider_cc.dimensions import v2_rows
from airflow_provider_cc.exceptions import ConstantContactResponseError
from airflow_provider_cc.hooks.constant_contact import TRACKED_STATUSES, numeric_id
from airflow_provider_cc.reports import V2, Report, columns_for
from airflow_provider_cc.reports import contact_report as v2_contact_report
from airflow_provider_cc.selection import Listed
from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
    from airflow_provider_cc.hooks.paging import RecordStream
    from airflow_provider_cc.window import Window


def sent_result(campaign: dict[str, Any]) -> dict[str, Any]:
    """The small result a SENT campaign hands downstream."""
    return {"campaign_id": str(campaign.get("id")), "name": campaign.get("name"), "status": campaign.get("status"),
            "last_run_date": campaign.get("last_run_date")}


# RUNNING first: a campaign that finishes between the two lists is still seen.
LIST_STATUSES = ("RUNNING", "SENT")


class V2Dialect(Dialect):
    """The v2 API (``constant_contact`` connections).

    :param hook: the v2 hook.
    """

    api = V2
    hook: ConstantContactHook

    def campaign_id(self, value: Any, name: str = "campaign_id") -> str:
        return numeric_id(value, name)

    def contact_id(self, value: Any, name: str = "contact_id") -> str:
        return numeric_id(value, name)

    def link_id(self, value: Any) -> str:
        return numeric_id(value, "link_id")

    def targets(self, campaign_id: str) -> list[Target]:
        return [Target(self.campaign_id(campaign_id))]

    def stream(self, target: Target, report: Report, window: Window, *, link_id: str | None = None,
               limit: int = 500, lookback: timedelta = timedelta(0), **filters: Any) -> RecordStream:
        return self.hook.iter_campaign_tracking(target.campaign_id, report.name, link_id=link_id,
                                                created_since=window.start, created_before=window.end, limit=limit,
                                                on_unreadable_date=window.on_unreadable_date)

    def tracked(self, campaign_id: str) -> tuple[bool, str]:
        status = self.hook.get_campaign(campaign_id)["status"]
        return status.upper() in TRACKED_STATUSES, status

    def sent(self, campaign_id: str) -> SentState:
        campaign = self.hook.get_campaign(campaign_id)  # a 404 (deleted, or never was) raises
        status = campaign["status"].upper()
        if status == "SENT":
            return SentState(True, False, status, sent_result(campaign))
        return SentState(False, status == "DELETED", status)

    def sent_pages(self, page_size: int) -> Iterator[list[tuple[str, datetime | None, str | None]]]:
        """``SENT`` campaigns, newest ``last_run_date`` first, with their names but not that date."""
        for batch in self.hook.iter_campaigns(status="SENT", limit=page_size).batches():
            yield [(item["id"], None, item.get("name") if isinstance(item.get("name"), str) else None)
                   for item in batch]

    def send_of(self, campaign_id: str, campaign: dict[str, Any]) -> tuple[datetime, str | None]:
        moment = record_instant(campaign.get("last_run_date"))
        if moment is None or campaign["status"].upper() != "SENT":
            raise ConstantContactResponseError(
                f"campaign {campaign_id}: listed as SENT, but it answered status {campaign['status'][:20]!r} and "
                f"last_run_date {'missing' if moment is None else format_api(moment)}")
        name = campaign.get("name")
        return moment, name if isinstance(name, str) else None

    def campaign_summary(self, campaign_id: str, *, update_summary: bool = False) -> dict[str, Any]:
        summary = self.hook.get_campaign_summary(campaign_id, update_summary=update_summary)
        return {**summary, "campaign_id": self.campaign_id(campaign_id)}

    def list_campaigns(self, status: str, modified_since: Any = None) -> list[str]:
        return sorted({str(c["id"]) for c in self.hook.iter_campaigns(status=status, modified_since=modified_since)})

    def contact_report(self, name: Any) -> Report | None:
        return v2_contact_report(name)

    def contact_columns(self, report: Report | None) -> tuple[str, ...]:
        return columns_for(report)

    def contact_stream(self, contact_id: str, report: Report | None, window: Window, *, limit: int = 500
                       ) -> RecordStream:
        return self.hook.iter_contact_tracking(contact_id, "all" if report is None else report.name,
                                               created_since=window.start, created_before=window.end, limit=limit,
                                               on_unreadable_date=window.on_unreadable_date)

    def contact_summary(self, contact_id: str, *, by_campaign: bool, window: Window | None) -> Any:
        if by_campaign:
            return self.hook.get_contact_summary_by_campaign(contact_id)
        return self.hook.get_contact_summary(contact_id)

    def listings(self) -> Iterator[tuple[Iterator[Listed], bool]]:
        """The RUNNING list, then the SENT list (newest send first), 50 campaigns a page."""
        for status in LIST_STATUSES:
            stream = self.hook.iter_campaigns(status=status)
            yield (Listed(c["id"], c.get("modified_date") if isinstance(c.get("modified_date"), str) else None)
                   for c in stream), status == "SENT"

    def account_campaign(self, campaign_id: str) -> dict[str, Any]:
        """The campaign with current report totals (``updateSummary=true``)."""
        return self.hook.get_campaign(campaign_id, update_summary=True)

    def answer_rows(self, answer: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """The campaign's row and its links' (``click_through_details``), from its own answer."""
        return v2_rows(answer)

    # The tracking summary counts records of these; opens, clicks and forwards it counts as unique contacts.
    comparable = ("sends", "bounces", "unsubscribes")

    def record_counts(self, totals: dict[str, dict[str, Any]], activities: dict[str, tuple[str, ...]]
                      ) -> dict[str, dict[str, int]]:
        """The campaigns' own ``tracking_summary`` (read by the selection: no request), where it is a count."""
        keys = {self.report(r).summary_key for r in self.comparable}
        return {cid: {k: v for k, v in t.items() if k in keys and v.__class__ is int} for cid, t in totals.items()}
