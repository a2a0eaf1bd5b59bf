"""What every API version answers, and the pieces both share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.destinations import campaign_layout
from airflow_provider_cc.reports import CATALOGUE, DEFAULT_REPORTS, Report, report_of

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_cc.hooks.paging import RecordStream
    from airflow_provider_cc.selection import Listed
    from airflow_provider_cc.window import Window


@dataclass(frozen=True)
class Target:
    """What one file of a campaign report holds the records of: a campaign (v2), or one of a campaign's
    activities, its primary email or its resend (v3).

    :param campaign_id: the campaign.
    :param activity_id: the campaign activity (v3), or ``None``.
    """

    campaign_id: str
    activity_id: str | None = None

    @property
    def label(self) -> str:
        """``campaign 1100 `` or ``campaign 9f… activity 3c…``, for logs and errors."""
        return f"campaign {self.campaign_id}" + (f" activity {self.activity_id}" if self.activity_id else "")


@dataclass(frozen=True)
class SentState:
    """Whether a campaign was sent, for the sensor.

    :param sent: it was (tracking data exists).
    :param deleted: it was deleted, or is gone: it never will be.
    :param status: its status as the API names it.
    :param result: what the sensor hands downstream once it was sent.
    """

    sent: bool
    deleted: bool
    status: str
    result: dict[str, Any] | None = None


class Dialect(ABC):
    """One API version, in the terms the operators use.

    :param hook: the version's hook.
    """

    api: str = ""
    # Whether the API filters tracking reports by time itself (v2's created_since) or only lists them newest
    # first (v3): what a window's read costs, for the docs and the logs.
    server_side_window: bool = True
    # Whether finding a campaign's targets costs a request (v3: the campaign's activities), worth caching.
    targets_cost_a_request: bool = False
    # Whether the account's listing answers for each campaign (v3's bulk summaries: its latest send and
    # totals), so no send-time cache is consulted; a latest send may then be a resend's, not the first.
    listing_answers: bool = False
    # The tracking reports' own filters, beyond the window (v3: ``bounce_codes``).
    tracking_filters: tuple[str, ...] = ()
    # Whether a contact's activity summary is counted over a window (v3) or over all time (v2).
    windowed_contact_summary: bool = False

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    # ---- the catalogue -------------------------------------------------------------------------------------
    def report(self, name: Any) -> Report:
        """The campaign report ``name`` of this version, or a clear input error (naming the version that has
        it, if the other does)."""
        return report_of(str(name).strip() if isinstance(name, str) else name, self.api)

    @property
    def report_names(self) -> tuple[str, ...]:
        """Every campaign report of this version."""
        return tuple(CATALOGUE[self.api])

    @property
    def default_reports(self) -> tuple[str, ...]:
        """The reports pulled when none are named: every event log (snapshots are asked for by name)."""
        return DEFAULT_REPORTS[self.api]

    # ---- ids -----------------------------------------------------------------------------------------------
    @abstractmethod
    def campaign_id(self, value: Any, name: str = "campaign_id") -> str:
        """A campaign id in its canonical form, or a clear input error."""

    @abstractmethod
    def contact_id(self, value: Any, name: str = "contact_id") -> str:
        """A contact id in its canonical form, or a clear input error."""

    @abstractmethod
    def link_id(self, value: Any) -> str:
        """A link id (v2 ``link_id``, v3 ``url_id``) in its canonical form, or a clear input error."""

    # ---- campaign reports ----------------------------------------------------------------------------------
    @abstractmethod
    def targets(self, campaign_id: str) -> list[Target]:
        """What a campaign's reports are read in: itself (v2), its primary email and resend activities (v3; one
        request, two for an activity id)."""

    @abstractmethod
    def stream(self, target: Target, report: Report, window: Window, *, link_id: str | None = None,
               limit: int = 500, lookback: timedelta = timedelta(0), **filters: Any) -> RecordStream:
        """The records of ``report`` of ``target`` in ``window`` (a snapshot report: all of them), newest first.

        :param target: the campaign (v2) or activity (v3).
        :param report: a report of this version.
        :param window: the window.
        :param link_id: with ``clicks``, one link's.
        :param limit: page size.
        :param lookback: on v3, read this much further back than the window's start (no record outside the
            window is kept): a margin for an API that breaks its own newest-first order.
        :param filters: version-specific filters (v3 ``bounce_codes``).
        """

    def chain(self, targets: list[Target], report: Report, window: Window, **options: Any) -> Iterator[list[dict]]:
        """The record batches of several targets, one after the other (a v3 campaign's activities in one file)."""
        for target in targets:
            yield from self.stream(target, report, window, **options).batches()

    def layout(self, report: Report, target: Target, link_id: str | None = None) -> str:
        """The folder of a target's files of ``report`` below a root."""
        return campaign_layout(report.name, target.campaign_id, link_id, target.activity_id)

    def identity(self, report: Report, target: Target, link_id: str | None = None) -> dict[str, str]:
        """What a file's manifest entry says it holds."""
        ident = {"report": report.name, "campaign_id": target.campaign_id}
        if target.activity_id is not None:
            ident |= {"api": self.api, "campaign_activity_id": target.activity_id}
        return ident | ({"link_id": link_id} if link_id is not None else {})

    @abstractmethod
    def tracked(self, campaign_id: str) -> tuple[bool, str]:
        """``(has tracking data, status)`` of a campaign: whether an empty report means "no activity yet"."""

    @abstractmethod
    def sent(self, campaign_id: str) -> SentState:
        """Whether a campaign was sent, for the sensor (one request on v2; more on v3: the campaign, then its
        activities' send history until one was sent)."""

    def file_fields(self) -> dict[str, str]:
        """What a file entry of a manifest says of its API version (v3: ``api``; v2 entries predate it)."""
        return {}

    # ---- the account's sends, for the event trigger --------------------------------------------------------
    @abstractmethod
    def sent_pages(self, page_size: int) -> Iterator[list[tuple[str, datetime | None, str | None]]]:
        """The account's sent campaigns, newest send first, a page at a time: ``(campaign id, its send time,
        its name)``, either ``None`` where the list does not carry it (v2: the time; v3: the name)."""

    def send_of(self, campaign_id: str, campaign: dict[str, Any]) -> tuple[datetime, str | None]:
        """A listed campaign's send time and name from its campaign object, where the list has no send time;
        a sent campaign without one is malformed."""
        raise NotImplementedError(f"the {self.api} list of sent campaigns carries their send times")

    @abstractmethod
    def campaign_summary(self, campaign_id: str, *, update_summary: bool = False) -> dict[str, Any]:
        """A campaign's counters (v2 tracking summary; v3 campaign stats)."""

    @abstractmethod
    def list_campaigns(self, status: str, modified_since: Any = None) -> list[str]:
        """The ids of the campaigns in ``status`` (v2's names: ``SENT``, ``DRAFT``...), each once, sorted."""

    # ---- contact reports -----------------------------------------------------------------------------------
    @abstractmethod
    def contact_report(self, name: Any) -> Report | None:
        """A contact report of this version (``None``: every activity type, ``all``), or a clear input error."""

    @abstractmethod
    def contact_columns(self, report: Report | None) -> tuple[str, ...]:
        """The columns of a contact report's files."""

    @abstractmethod
    def contact_stream(self, contact_id: str, report: Report | None, window: Window, *, limit: int = 500
                       ) -> RecordStream:
        """One contact's activity in ``window``, newest first."""

    @abstractmethod
    def contact_summary(self, contact_id: str, *, by_campaign: bool, window: Window | None) -> Any:
        """A contact's counters, in all or per campaign (v3 counts them over ``window``)."""

    # ---- the account ---------------------------------------------------------------------------------------
    @abstractmethod
    def listings(self) -> Iterator[tuple[Iterator[Listed], bool]]:
        """The account's campaigns that can have tracking, as lists read lazily: ``(entries, ordered)``, where
        ``ordered`` says the list is newest send first (what lets a horizon end it)."""

    @abstractmethod
    def account_campaign(self, campaign_id: str) -> dict[str, Any]:
        """A campaign as the account's selection reads it, in v2's terms: ``status`` (``SENT``, ``RUNNING``,
        ``DELETED``...), ``last_run_date`` and ``tracking_summary`` (report totals by summary key); one request."""

    def activities(self, campaign_id: str, *, first_send: bool = True) -> tuple[tuple[str, ...], datetime | None]:
        """A campaign's activity ids (v3; none on v2) and, with ``first_send`` when its latest send may not be
        its first (a resend), its first send."""
        return tuple(t.activity_id for t in self.targets(campaign_id) if t.activity_id), None

    def activity_campaign(self, activity_id: str) -> str:
        """The campaign an activity names as its own (v3; one request): what settles an activity that two
        campaigns list. v2 has no activities."""
        raise NotImplementedError(f"the {self.api} API has no campaign activities")

    # Whether :meth:`event_totals` has counters to give (v3's activity stats).
    counts_events: bool = False

    def event_totals(self, activity_ids: list[str]) -> dict[str, dict[str, int]]:
        """Per activity, each report's count of records (not of contacts), by summary key, where the API has
        such counters (v3 activity stats); none on v2."""
        return {}

    # ---- completeness ----------------------------------------------------------------------------------------
    # The reports whose records the API counts (so that a lake's records can be compared with the count).
    comparable: tuple[str, ...] = ()

    def record_counts(self, totals: dict[str, dict[str, Any]], activities: dict[str, tuple[str, ...]]
                      ) -> dict[str, dict[str, int]]:
        """Per campaign, the API's count of records of each :attr:`comparable` report, by summary key.

        :param totals: the campaigns' report totals as the selection read them.
        :param activities: the campaigns' activities (v3).
        """
        return {}

    def counts_cost(self, activities: int) -> int:
        """The requests :meth:`record_counts` sends for that many activities."""
        return 0

    # ---- dimensions ----------------------------------------------------------------------------------------
    def answer_rows(self, answer: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """The dimension rows a campaign's answer to the selection gives, at no cost (v2: its campaign and
        links); by dimension name."""
        return {}

    def request_rows(self, campaigns: list[str], activities: list[tuple[str, str]], clicked: list[tuple[str, str]],
                     known: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """The dimension rows that cost requests (v3), by dimension name.

        :param campaigns: the campaigns the run described.
        :param activities: ``(campaign, activity)`` of its units.
        :param clicked: ``(campaign, activity)`` whose clicks the run wrote.
        :param known: activity rows kept from earlier runs, by activity id (read, and extended with new ones).
        """
        return {}

    def rows_cost(self, campaigns: int, activities: int, clicked: int) -> int:
        """At most the requests :meth:`request_rows` sends for that many campaigns, unknown activities and
        clicked activities."""
        return 0

    def answers_for(self, campaign_ids: list[str]) -> dict[str, Listed]:
        """Listing entries (with their answers) of the campaigns given, where the listing is cheaper than a
        request per campaign (v3); none on v2, where each campaign's own request says all."""
        return {}
