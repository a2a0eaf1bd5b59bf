"""Deterministic synthetic v2 data, computed on demand so a million records cost no memory.

Record ``i`` of a (campaign, report) is a pure function of the seed and ``i``; timestamps fall as ``i``
rises (newest first, with occasional equal timestamps as in real data), so ``created_since`` is a binary
search. Contacts are an affine bijection of ``i``, so one contact's records are an arithmetic progression.

Two shapes of activity: ``uniform`` (the default, for small tests) spreads each report evenly from its
campaign's send to the end of the data; ``decay`` (a realistic account, :meth:`DataConfig.realistic`) sends
campaigns at a fixed interval and lets activity fade after each send: sends within minutes, bounces within
hours, most opens and clicks in the first days and a long tail after. Record ``i`` of ``n`` then sits at the
inverse of the report's delay distribution at ``1 - (i + 1/2) / n``, which falls as ``i`` rises.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_cc.reports import ACTIVITY_REPORTS, REPORTS, Report

DAY_MS = 86_400_000
M64 = (1 << 64) - 1
RATIOS = {"sends": 1.0, "opens": 0.6, "clicks": 0.3, "forwards": 0.05, "unsubscribes": 0.02, "bounces": 0.03}
BOUNCE_CODES = (("B", "Non-existent address"), ("S", "Suspended"), ("D", "Undeliverable"), ("F", "Mailbox full"),
                ("V", "Vacation or autoreply"), ("Z", "Blocked"), ("X", "Other or unknown"))
UNSUBSCRIBE_SOURCES = ("ACTION_BY_CUSTOMER", "ACTION_BY_OWNER", "ACTION_BY_CONTACT")
LINKS_PER_CAMPAIGN = 3
CAMPAIGN_ID_BASE = 1100394165000
LINK_ID_BASE = 1100397796000
ACTIVITY_SHAPES = ("uniform", "decay")
# Delay after the send, per report, in the decay shape: ("uniform", width) spreads evenly over ``width``;
# ("exponential", mean); ("lomax", scale): F(t) = t / (t + scale), half within ``scale``, a long tail after.
DELAYS: dict[str, tuple[str, float]] = {
    "sends": ("uniform", 600_000.0),
    "opens": ("lomax", DAY_MS * 1.0),
    "clicks": ("lomax", DAY_MS * 1.0),
    "forwards": ("lomax", DAY_MS * 2.0),
    "unsubscribes": ("lomax", DAY_MS * 1.0),
    "bounces": ("exponential", 7_200_000.0),
}
# In the decay shape only every third campaign has a forward-to-a-friend link: the others never get forwards.
FORWARDS_EVERY = 3


def delay_cdf(report: str, t: float) -> float:
    """Fraction of a report's eventual activity that happened within ``t`` ms of the send (decay shape)."""
    kind, scale = DELAYS[report]
    if t <= 0:
        return 0.0
    if kind == "uniform":
        return min(t / scale, 1.0)
    if kind == "exponential":
        return -math.expm1(-t / scale)
    return t / (t + scale)


def delay_quantile(report: str, u: float) -> float:
    """Inverse of :func:`delay_cdf` for ``0 <= u < 1``: the delay (ms) below which a fraction ``u`` falls."""
    kind, scale = DELAYS[report]
    if kind == "uniform":
        return u * scale
    if kind == "exponential":
        return -scale * math.log1p(-u)
    return scale * u / (1.0 - u)


def mix(value: int) -> int:
    """splitmix64: a cheap, well-spread deterministic hash."""
    value = (value + 0x9E3779B97F4A7C15) & M64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & M64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & M64
    return value ^ (value >> 31)


def ms_to_text(ms: int) -> str:
    """Epoch milliseconds as API text, ``YYYY-MM-DDTHH:MM:SS.sssZ``."""
    moment = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def text_to_ms(text: str) -> int:
    """API text (any ISO-8601 form) as epoch milliseconds; raises ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return math.ceil(moment.timestamp() * 1000 - 1e-6)


@dataclass(frozen=True)
class DataConfig:
    """Size and shape of the synthetic account.

    :param seed: changes every generated value.
    :param campaigns: SENT campaigns (one DRAFT, one SCHEDULED and one DELETED are added).
    :param contacts: contacts 1..N.
    :param activities: sends per SENT campaign; other reports scale by ``RATIOS``.
    :param start: when the first campaign is sent (ISO-8601).
    :param days: the data ends at ``start + days`` (the emulator's "now": no activity after it).
    :param send_interval_days: 0 (default): campaigns are sent minutes apart just after ``start``; above 0,
        SENT campaign ``k`` is sent at ``start + k * send_interval_days``.
    :param activity: ``uniform`` (default): each report spreads evenly from its send to the end of the data;
        ``decay``: activity fades after each send (see the module docstring); a report holds the part of its
        eventual activity that happened by the end of the data, and campaigns without a forward link have
        no forwards.
    """

    seed: int = 1
    campaigns: int = 3
    contacts: int = 100
    activities: int = 100
    start: str = "2024-01-01T00:00:00Z"
    days: float = 3.0
    send_interval_days: float = 0.0
    activity: str = "uniform"

    @classmethod
    def realistic(cls, *, weeks: int = 104, activities: int = 2000, every_days: float = 7.0,
                  start: str = "2022-02-07T15:00:00Z", seed: int = 1) -> DataConfig:
        """A realistic account: one campaign every ``every_days`` (weekly) for ``weeks`` sends, decaying
        activity, and the data ending one interval after the last send.

        :param weeks: SENT campaigns.
        :param activities: sends per campaign (one per contact, so summaries count records).
        :param every_days: days between two sends.
        :param start: the first send.
        :param seed: changes every generated value.
        """
        return cls(seed=seed, campaigns=weeks, contacts=activities, activities=activities, start=start,
                   days=weeks * every_days, send_interval_days=every_days, activity="decay")


@dataclass
class Campaign:
    """One campaign of the synthetic account."""

    index: int
    id: str
    status: str
    run_ms: int


@dataclass(frozen=True)
class View:
    """An arithmetic progression of record indices of one (campaign, report): ``offset + p * stride``."""

    campaign: Campaign
    report: Report
    offset: int
    stride: int
    size: int


@dataclass
class Dataset:
    """The synthetic account: campaigns, contacts and their activity records.

    :param now_ms: the account's clock (epoch ms; ``None``: the end of the data). Campaign tracking, campaign
        objects, lists and summaries show only what happened by then: a campaign sent later is SCHEDULED, a
        record dated later does not exist yet. Moving it forward lets one emulator play the days a schedule
        runs on. (Contact tracking ignores it.)
    :param hidden: ``(campaign id, report)`` pairs whose oldest record the campaign tracking pages (v2 and v3)
        leave out while the summaries and stats count it: a gap only a completeness check can see.
    """

    config: DataConfig
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    now_ms: int | None = None
    hidden: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        cfg = self.config
        if cfg.activity not in ACTIVITY_SHAPES:
            raise ValueError(f"activity={cfg.activity!r} is not one of {', '.join(ACTIVITY_SHAPES)}")
        self.decay = cfg.activity == "decay"
        self.start_ms = text_to_ms(cfg.start)
        self.end_ms = self.start_ms + int(cfg.days * DAY_MS)
        stagger = min(600_000, int(cfg.days * DAY_MS) // max(cfg.campaigns * 4, 1))
        if cfg.send_interval_days > 0:
            stagger = int(cfg.send_interval_days * DAY_MS)
            if cfg.campaigns and self.start_ms + (cfg.campaigns - 1) * stagger >= self.end_ms:
                raise ValueError(f"{cfg.campaigns} campaigns every {cfg.send_interval_days} days do not fit in "
                                 f"{cfg.days} days: the last would be sent after the end of the data")
        statuses = ["SENT"] * cfg.campaigns + ["DRAFT", "SCHEDULED", "DELETED"]
        for index, status in enumerate(statuses):
            cid = str(CAMPAIGN_ID_BASE + index)
            self.campaigns[cid] = Campaign(index, cid, status, self.start_ms + index * stagger)
        n = max(cfg.contacts, 1)
        self.multiplier = next(a for a in range(7919, 7919 + 10 * n + 10) if math.gcd(a, n) == 1)
        self.inverse = pow(self.multiplier, -1, n)

    # ---- counts and positions ---------------------------------------------------------------------
    def count(self, campaign: Campaign, report: Report) -> int:
        """How many records a report of a campaign has (0 unless the campaign was sent)."""
        if campaign.status != "SENT":
            return 0
        if self.decay:
            if report.name == "forwards" and campaign.index % FORWARDS_EVERY:
                return 0
            happened = delay_cdf(report.name, self.end_ms - campaign.run_ms)
            return int(self.config.activities * RATIOS[report.name] * happened)
        return max(1, int(self.config.activities * RATIOS[report.name])) if self.config.activities else 0

    def _shift(self, campaign: Campaign, report: Report) -> int:
        return mix(self.config.seed * 1_000_003 + campaign.index * 101 + ACTIVITY_REPORTS.index(report))

    def timestamp(self, campaign: Campaign, report: Report, i: int) -> int:
        """Epoch ms of record ``i``; non-increasing in ``i``; every seventh equals its predecessor."""
        if i % 7 == 6:
            i -= 1
        span = self.end_ms - campaign.run_ms
        if self.decay:
            n = max(self.count(campaign, report), 1)
            happened = delay_cdf(report.name, span)
            delay = int(delay_quantile(report.name, happened * (1.0 - (i + 0.5) / n)))
            return campaign.run_ms + min(delay, span - 1)
        return self.end_ms - 1 - (i * span) // max(self.count(campaign, report), 1)

    def contact_of(self, campaign: Campaign, report: Report, i: int) -> int:
        """Contact id of record ``i`` (1-based), a bijection on each block of ``contacts`` indices."""
        n = max(self.config.contacts, 1)
        return (i * self.multiplier + self._shift(campaign, report)) % n + 1

    def campaign_view(self, campaign: Campaign, report: Report, link_index: int | None = None) -> View:
        """All records of a campaign's report, or those of one link."""
        total = self.count(campaign, report)
        if link_index is None:
            return View(campaign, report, 0, 1, total)
        size = max(0, (total - link_index + LINKS_PER_CAMPAIGN - 1) // LINKS_PER_CAMPAIGN)
        return View(campaign, report, link_index, LINKS_PER_CAMPAIGN, size)

    def contact_view(self, campaign: Campaign, report: Report, contact: int) -> View:
        """One contact's records in a campaign's report."""
        n = max(self.config.contacts, 1)
        first = ((contact - 1 - self._shift(campaign, report)) * self.inverse) % n
        total = self.count(campaign, report)
        size = max(0, (total - first + n - 1) // n)
        return View(campaign, report, first, n, size)

    def status_of(self, campaign: Campaign) -> str:
        """The campaign's status by the clock: a SENT campaign whose send lies after it is still SCHEDULED."""
        if campaign.status == "SENT" and self.now_ms is not None and campaign.run_ms > self.now_ms:
            return "SCHEDULED"
        return campaign.status

    def head(self, view: View) -> int:
        """Leading (newest) positions of a view dated after the clock: they have not happened yet."""
        return 0 if self.now_ms is None else self.stop_for(view, self.now_ms + 1)

    def served_end(self, view: View) -> int:
        """Where a view's tracking pages end: its size, less its oldest record when ``(campaign id, report)`` is
        in :attr:`hidden` (a record the pages leave out while the summaries and stats count it)."""
        return view.size - (1 if (view.campaign.id, view.report.name) in self.hidden and view.size else 0)

    def visible(self, view: View) -> int:
        """How many records of a view have happened by the clock."""
        return view.size - self.head(view)

    def stop_for(self, view: View, since_ms: int | None) -> int:
        """Number of leading positions whose timestamp is ``>= since_ms``."""
        if since_ms is None:
            return view.size

        def key(p: int) -> int:
            return -self.timestamp(view.campaign, view.report, view.offset + p * view.stride)

        return bisect.bisect_right(range(view.size), -since_ms, key=key)

    # ---- records ------------------------------------------------------------------------------------
    def link_id(self, campaign: Campaign, link_index: int) -> str:
        """The ``url_uid`` of a campaign's link."""
        return str(LINK_ID_BASE + campaign.index * 10 + link_index)

    def link_index(self, campaign: Campaign, link_id: str) -> int | None:
        """Inverse of :meth:`link_id`; ``None`` for a link the campaign does not have."""
        offset = int(link_id) - LINK_ID_BASE - campaign.index * 10
        return offset if 0 <= offset < LINKS_PER_CAMPAIGN else None

    def record(self, view: View, p: int, *, for_contact: bool = False) -> dict[str, Any]:
        """Record at position ``p`` of a view, in the exact shape of the SDK fixtures.

        Campaign tracking sends ``campaign_id`` as a JSON number (even campaigns also ``link_id``), as the
        Ruby and PHP fixtures do; contact tracking sends strings and adds ``link_uri`` to clicks.
        """
        campaign, report = view.campaign, view.report
        i = view.offset + p * view.stride
        contact = self.contact_of(campaign, report, i)
        h = mix(self._shift(campaign, report) ^ i)
        record: dict[str, Any] = {
            "activity_type": report.activity_type,
            "campaign_id": campaign.id if for_contact else int(campaign.id),
            "contact_id": str(contact),
            "email_address": f"contact{contact}@example.com",
        }
        stamp = ms_to_text(self.timestamp(campaign, report, i))
        name = report.name
        if name == "clicks":
            link = self.link_id(campaign, i % LINKS_PER_CAMPAIGN)
            record["link_id"] = link if (for_contact or campaign.index % 2) else int(link)
            if for_contact:
                record["link_uri"] = f"https://example.com/campaign/{campaign.id}/link/{i % LINKS_PER_CAMPAIGN}"
        elif name == "bounces":
            code, description = BOUNCE_CODES[h % len(BOUNCE_CODES)]
            record.update(bounce_code=code, bounce_description=description, bounce_message="")
        elif name == "unsubscribes":
            record[report.date_field] = stamp
            record["unsubscribe_source"] = UNSUBSCRIBE_SOURCES[h % 3]
            record["unsubscribe_reason"] = "" if h % 4 else "Too many emails"
            return record
        record[report.date_field] = stamp
        return record

    def records(self, view: View, start: int, stop: int, *, for_contact: bool = False) -> list[dict[str, Any]]:
        """Records at positions ``start..stop-1`` of a view."""
        return [self.record(view, p, for_contact=for_contact) for p in range(start, stop)]

    def contact_activity(self, contact: int, report_name: str | None,
                         since_ms: int | None) -> list[tuple[int, View, int]]:
        """``(timestamp, view, position)`` of a contact's records in every campaign, newest first."""
        reports = ACTIVITY_REPORTS if report_name is None else (REPORTS[report_name],)
        found: list[tuple[int, View, int]] = []
        for campaign in self.campaigns.values():
            if campaign.status != "SENT":
                continue
            for report in reports:
                view = self.contact_view(campaign, report, contact)
                for p in range(self.stop_for(view, since_ms)):
                    stamp = self.timestamp(campaign, report, view.offset + p * view.stride)
                    found.append((stamp, view, p))
        found.sort(key=lambda t: (-t[0], t[1].campaign.index, ACTIVITY_REPORTS.index(t[1].report), t[2]))
        return found

    # ---- summaries and campaigns -----------------------------------------------------------------------
    def summary(self, campaign: Campaign) -> dict[str, int]:
        """Campaign counters: sends is records, the rest unique contacts (as the docs define them)."""
        n = max(self.config.contacts, 1)
        counts = {r.summary_key: self.visible(self.campaign_view(campaign, r)) for r in ACTIVITY_REPORTS}
        return {k: (v if k == "sends" else min(v, n)) for k, v in counts.items()}

    def contact_counts(self, contact: int, campaign: Campaign) -> dict[str, int]:
        """One contact's record count per report in one campaign."""
        if campaign.status != "SENT":
            return {r.summary_key: 0 for r in ACTIVITY_REPORTS}
        return {r.summary_key: self.contact_view(campaign, r, contact).size for r in ACTIVITY_REPORTS}

    def campaign_object(self, campaign: Campaign) -> dict[str, Any]:
        """The full campaign object (E2), shaped like the SDK fixture."""
        status = self.status_of(campaign)
        sent = status == "SENT"
        run = ms_to_text(campaign.run_ms)
        created = ms_to_text(self.start_ms - 86_400_000 + campaign.index * 1000)
        body: dict[str, Any] = {
            "id": campaign.id, "name": f"Campaign {campaign.index + 1}", "subject": f"News {campaign.index + 1}",
            "status": status, "from_name": "Emulated Org", "from_email": "news@example.com",
            "reply_to_email": "news@example.com", "template_type": "CUSTOM", "created_date": created,
            "modified_date": run if sent else created,
        }
        if sent:
            body["last_run_date"] = run
        if campaign.status == "SCHEDULED":
            body["next_run_date"] = ms_to_text(self.end_ms)
        elif status == "SCHEDULED":
            body["next_run_date"] = run
        body.update({
            "permalink_url": f"https://myemail.example.com/{campaign.id}.html",
            "email_content": "<html><body><p>Hello</p></body></html>", "text_content": "Hello",
            "email_content_format": "HTML", "style_sheet": "",
            "message_footer": {"organization_name": "Emulated Org", "address_line_1": "1 Main St", "city": "Anytown",
                               "state": "MA", "postal_code": "01245", "country": "US",
                               "include_forward_email": True, "include_subscribe_link": True},
            "tracking_summary": {**self.summary(campaign), "spam_count": 0},
            "sent_to_contact_lists": [{"id": "1"}],
            "click_through_details": [
                {"url": f"https://example.com/campaign/{campaign.id}/link/{k}", "url_uid": self.link_id(campaign, k),
                 "click_count": self.visible(self.campaign_view(campaign, REPORTS["clicks"], k))}
                for k in range(LINKS_PER_CAMPAIGN)
            ],
        })
        return body

    def campaign_summary_item(self, campaign: Campaign) -> dict[str, Any]:
        """A campaign list item (E1)."""
        obj = self.campaign_object(campaign)
        return {"id": campaign.id, "name": obj["name"], "status": obj["status"],
                "modified_date": obj["modified_date"]}
