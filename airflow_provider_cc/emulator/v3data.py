"""The v3 view of the emulator's account: the same :class:`Dataset`, seen through v3's shapes.

Nothing is generated twice. A v3 record is a function of the v2 record it stands for (same contact, same
time, same link, bounce code and reason), so the account served through both APIs holds the same activity:

* every v2 campaign is a v3 campaign with a ``primary_email`` and a ``permalink`` activity, except that
  every ``resend_every``-th SENT campaign (a knob; 0: none) is the ``resend`` activity of the campaign before
  it, as v2 resends were campaigns of their own;
* ids are UUIDs derived from the seed and the v2 ids (campaigns, activities, contacts);
* ``unique_opens`` is each contact's newest open, ``didnotopens`` the sends whose contact never opened.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.emulator.data import LINKS_PER_CAMPAIGN, Campaign, mix, ms_to_text
from airflow_provider_cc.reports import REPORTS, V3_CAMPAIGN_STATUS, V3_REPORTS

if TYPE_CHECKING:
    from airflow_provider_cc.emulator.data import Dataset, View

FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam")
LAST_NAMES = ("Brown", "Garcia", "Ito", "Jones", "Khan", "Lopez", "Meyer", "Novak", "Okafor", "Smith")
DEVICES = ("computer", "mobile", "tablet", "other")
BOUNCE_STATS = {"B": "nonexistent_address", "D": "undeliverable", "F": "mailbox_full", "S": "suspended",
                "V": "vacation", "X": "other", "Z": "blocked"}
_KIND = {"campaign": 1, "primary_email": 2, "permalink": 3, "resend": 4, "contact": 5, "list": 6}


@dataclass
class Activity:
    """One v3 campaign activity; ``source`` is the v2 campaign whose records it serves (none for a permalink)."""

    id: str
    role: str
    campaign: V3Campaign
    source: Campaign | None


@dataclass
class V3Campaign:
    """One v3 campaign: its v2 campaign (the primary email) and, maybe, a v2 campaign served as its resend."""

    id: str
    primary: Campaign
    activities: list[Activity] = field(default_factory=list)

    @property
    def resend(self) -> Campaign | None:
        return next((a.source for a in self.activities if a.role == "resend"), None)

    @property
    def status(self) -> str:
        return self.primary.status


class V3View:
    """The account of ``dataset`` as the v3 API serves it.

    :param dataset: the v2 emulator's account.
    :param resend_every: every n-th SENT campaign (after a SENT one) is the previous campaign's resend; 0: none.
    """

    def __init__(self, dataset: Dataset, *, resend_every: int = 3) -> None:
        self.dataset = dataset
        self.seed = dataset.config.seed
        self.campaigns: dict[str, V3Campaign] = {}
        self.activities: dict[str, Activity] = {}
        self.by_v2: dict[str, Activity] = {}  # v2 campaign id -> the activity serving its records
        previous: V3Campaign | None = None
        for v2 in sorted(dataset.campaigns.values(), key=lambda c: c.index):
            index = int(v2.id)
            if (resend_every > 0 and v2.status == "SENT" and previous is not None and previous.status == "SENT"
                    and previous.resend is None and v2.index % resend_every == resend_every - 1):
                activity = Activity(self.uid("resend", index), "resend", previous, v2)
                previous.activities.append(activity)
                self._add(activity)
                continue
            campaign = V3Campaign(self.uid("campaign", index), v2)
            for role, source in (("primary_email", v2), ("permalink", None)):
                self._add_to(campaign, Activity(self.uid(role, index), role, campaign, source))
            self.campaigns[campaign.id] = campaign
            previous = campaign
        n = max(dataset.config.contacts, 1)
        self.contact_ids = {number: self.uid("contact", number) for number in range(1, n + 1)}
        self.contact_numbers = {v: k for k, v in self.contact_ids.items()}
        self.list_id = self.uid("list", 1)
        self._unique: dict[tuple[str, str], list[int]] = {}

    def _add_to(self, campaign: V3Campaign, activity: Activity) -> None:
        campaign.activities.append(activity)
        self._add(activity)

    def _add(self, activity: Activity) -> None:
        self.activities[activity.id] = activity
        if activity.source is not None:
            self.by_v2[activity.source.id] = activity

    def uid(self, kind: str, number: int) -> str:
        """A stable UUID (version 4 layout) for a kind of object and its v2 number."""
        high = mix(self.seed * 1_000_003 + _KIND[kind] * 7_919 + number)
        low = mix(high ^ (number * 0x9E3779B97F4A7C15 & ((1 << 64) - 1)))
        return str(uuid.UUID(int=(high << 64) | low, version=4))

    # ---- records ---------------------------------------------------------------------------------------
    def sent(self, campaign: Campaign | None) -> bool:
        """Whether a v2 campaign (a primary email or resend) was sent by the account's clock."""
        return campaign is not None and self.dataset.status_of(campaign) == "SENT"

    def _view(self, activity: Activity, v2_name: str) -> View | None:
        if activity.source is None or not self.sent(activity.source):
            return None
        return self.dataset.campaign_view(activity.source, REPORTS[v2_name])

    def _v3_record(self, activity: Activity, report: str, view: View, p: int) -> dict[str, Any]:
        v2 = self.dataset.record(view, p)
        number = int(v2["contact_id"])
        spec = V3_REPORTS[report]
        h = mix(number * 31 + p + view.campaign.index * 1_000_003)
        record: dict[str, Any] = {
            "contact_id": self.contact_ids.get(number, self.uid("contact", number)),
            "campaign_activity_id": activity.id,
            "tracking_activity_type": spec.activity_type,
            "email_address": v2["email_address"],
            "first_name": FIRST_NAMES[number % len(FIRST_NAMES)],
            "last_name": LAST_NAMES[number % len(LAST_NAMES)],
            "created_time": v2[view.report.date_field],
        }
        if number % 97 == 0:
            record["deleted_at"] = v2[view.report.date_field][:10]
        if "device_type" in spec.extra_columns:
            record["device_type"] = DEVICES[h % len(DEVICES)]
        if report == "clicks":
            record["url_id"] = str(v2["link_id"])  # the v2 link id, as a string (the spec's type)
            record["link_url"] = self.link_url(view.campaign, self.dataset.link_index(view.campaign,
                                                                                     str(v2["link_id"])) or 0)
        elif report == "optouts" and v2.get("unsubscribe_reason"):
            record["opt_out_reason"] = v2["unsubscribe_reason"]
        elif report == "bounces":
            record["bounce_code"] = v2["bounce_code"]
            if h % 5 == 0:
                record["current_email_address"] = f"contact{number}.new@example.com"
        return record

    def link_url(self, campaign: Campaign, k: int) -> str:
        return f"https://example.com/campaign/{campaign.id}/link/{k}"

    def positions(self, activity: Activity, report: str) -> tuple[View | None, list[int] | None]:
        """The v2 view a report's records come from and, for the snapshots, which of its positions, newest
        first (``None``: every position in order)."""
        if report == "unique_opens":
            view = self._view(activity, "opens")
            return view, self._snapshot(activity, report, view)
        if report == "didnotopens":
            view = self._view(activity, "sends")
            return view, self._snapshot(activity, report, view)
        spec = V3_REPORTS[report]
        return self._view(activity, spec.name if spec.name in REPORTS and not spec.snapshot else report), None

    def _snapshot(self, activity: Activity, report: str, view: View | None) -> list[int]:
        if view is None:
            return []
        key = (activity.id, report)
        if key not in self._unique:
            opens = self._view(activity, "opens")
            seen: dict[int, int] = {}
            if opens is not None:
                for p in range(opens.size):
                    seen.setdefault(self.dataset.contact_of(opens.campaign, opens.report, p), p)
            if report == "unique_opens":
                self._unique[key] = sorted(seen.values())
            else:
                self._unique[key] = [p for p in range(view.size)
                                     if self.dataset.contact_of(view.campaign, view.report, p) not in seen]
        return self._unique[key]

    def count(self, activity: Activity, report: str) -> int:
        view, chosen = self.positions(activity, report)
        return 0 if view is None else (len(chosen) if chosen is not None else self.dataset.visible(view))

    def records(self, activity: Activity, report: str, start: int, stop: int, *,
                url_id: str | None = None, bounce_codes: frozenset[str] | None = None) -> tuple[int, list[dict]]:
        """``(total, records start..stop-1)`` of an activity's report, newest first, after its filters."""
        view, chosen = self.positions(activity, report)
        if view is None:
            return 0, []
        # Event reports by the account's clock: what happened after it is not there yet.
        indices: Any = chosen if chosen is not None else range(self.dataset.head(view), self.dataset.served_end(view))
        if url_id is not None or bounce_codes is not None:
            kept = []
            for p in indices:
                v2 = self.dataset.record(view, p)
                if url_id is not None and str(v2.get("link_id")) != url_id:
                    continue
                if bounce_codes is not None and v2.get("bounce_code") not in bounce_codes:
                    continue
                kept.append(p)
            indices = kept
        return len(indices), [self._v3_record(activity, report, view, p) for p in indices[start:stop]]

    def all_records(self, activity: Activity, report: str) -> list[dict[str, Any]]:
        """Every record of an activity's report, newest first, as served."""
        return self.records(activity, report, 0, 10**12)[1]

    # ---- objects -------------------------------------------------------------------------------------------
    def times(self, campaign: V3Campaign) -> tuple[str, str]:
        """``(created_at, updated_at)``: the v2 campaign's creation and, for a sent one, its last send."""
        obj = self.dataset.campaign_object(campaign.primary)
        updated = obj["modified_date"]
        resend = campaign.resend
        if resend is not None and self.sent(resend):
            updated = max(updated, ms_to_text(resend.run_ms))
        return obj["created_date"], updated

    def campaign_item(self, campaign: V3Campaign) -> dict[str, Any]:
        created, updated = self.times(campaign)
        status = V3_CAMPAIGN_STATUS[self.dataset.status_of(campaign.primary)][0]
        return {"campaign_id": campaign.id, "created_at": created, "current_status": status,
                "name": f"Campaign {campaign.primary.index + 1}", "type": "NEWSLETTER", "type_code": 10,
                "updated_at": updated}

    def campaign_object(self, campaign: V3Campaign) -> dict[str, Any]:
        return {**self.campaign_item(campaign), "campaign_activities": [
            {"campaign_activity_id": a.id, "role": a.role} for a in campaign.activities]}

    def activity_object(self, activity: Activity) -> dict[str, Any]:
        source = activity.source or activity.campaign.primary
        obj = self.dataset.campaign_object(source)
        return {"campaign_activity_id": activity.id, "campaign_id": activity.campaign.id, "role": activity.role,
                "contact_list_ids": [self.list_id], "segment_ids": [],
                "current_status": V3_CAMPAIGN_STATUS[self.dataset.status_of(
                    activity.campaign.primary if activity.source is None else source)][1],
                "format_type": 5, "from_email": obj["from_email"], "from_name": obj["from_name"],
                "reply_to_email": obj["reply_to_email"], "subject": obj["subject"], "preheader": "",
                "permalink_url": obj["permalink_url"]}

    def send_history(self, activity: Activity) -> list[dict[str, Any]]:
        source = activity.source
        if source is None or not self.sent(source):
            return []
        return [{"send_id": 1, "contact_list_ids": [self.list_id], "segment_ids": [],
                 "count": self.count(activity, "sends"), "run_date": ms_to_text(source.run_ms),
                 "send_status": "COMPLETED", "reason_code": 0}]

    def reported(self, campaign: V3Campaign) -> list[Activity]:
        """The activities with reports: the primary email and any resend."""
        return [a for a in campaign.activities if a.role != "permalink"]

    def activity_stats(self, activity: Activity) -> dict[str, int]:
        """``StatsEmailActivity`` counters (underscore keys)."""
        stats: dict[str, int] = {"em_sends": self.count(activity, "sends"),
                                 "em_opens": self.count(activity, "unique_opens"),
                                 "em_opens_all": self.count(activity, "opens"),
                                 "em_clicks_all": self.count(activity, "clicks"),
                                 "em_forwards": self.count(activity, "forwards"),
                                 "em_optouts": self.count(activity, "optouts"),
                                 "em_bounces": self.count(activity, "bounces"), "em_abuse": 0}
        for report, prefix in (("opens", "em_opens_all"), ("clicks", "em_clicks_all")):
            for device in (*DEVICES, "none"):
                stats[f"{prefix}_{device}"] = 0
            for record in self.all_records(activity, report):
                stats[f"{prefix}_{record.get('device_type', 'none')}"] += 1
        stats["em_clicks"] = len({r["contact_id"] for r in self.all_records(activity, "clicks")})
        for name in BOUNCE_STATS.values():
            stats[f"em_bounces_{name}"] = 0
        for record in self.all_records(activity, "bounces"):
            stats[f"em_bounces_{BOUNCE_STATS[record['bounce_code']]}"] += 1
        stats["em_not_opened"] = max(0, stats["em_sends"] - stats["em_opens"] - stats["em_bounces"])
        return stats

    def campaign_stats(self, campaign: V3Campaign) -> dict[str, int]:
        """``StatsEmail`` counters of a campaign: its reported activities' summed (no abuse, no bounce kinds)."""
        total: dict[str, int] = {}
        for activity in self.reported(campaign):
            for key, value in self.activity_stats(activity).items():
                if key != "em_abuse" and not key.startswith("em_bounces_"):
                    total[key] = total.get(key, 0) + value
        return total

    def links(self, activity: Activity, no_clicks: bool) -> list[dict[str, Any]]:
        if activity.source is None:
            return []
        clickers: dict[str, set[str]] = {}
        for record in self.all_records(activity, "clicks"):
            clickers.setdefault(record["url_id"], set()).add(record["contact_id"])
        found = []
        for k in range(LINKS_PER_CAMPAIGN):
            url_id = self.dataset.link_id(activity.source, k)
            count = len(clickers.get(url_id, ()))
            if count or no_clicks:
                found.append({"link_url": self.link_url(activity.source, k), "url_id": url_id, "unique_clicks": count})
        return found
