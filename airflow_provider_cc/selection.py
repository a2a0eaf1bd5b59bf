"""Which (campaign, report) units a window needs, decided in as few requests as the API allows.

A campaign can have activity in ``[start, end)`` only if it was sent before ``end``. The campaign list (50 a
page) has no send time, so each listed campaign costs one campaign request (with ``updateSummary=true``),
which gives its send time (``last_run_date``) and each report's total: a report whose total is 0 has nothing
to pull. Send times of SENT campaigns do not change and are cached (:class:`~airflow_provider_cc.units.SendTimes`),
so a campaign known to be sent after the window, or before the horizon, costs nothing. The API lists SENT
campaigns newest send first, so with a horizon the listing stops at the first campaign sent before it,
after two campaigns in a row sent before it, unless the list turns out not to be in that order.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactNotFoundError
from airflow_provider_cc.hooks.constant_contact import TRACKED_STATUSES
from airflow_provider_cc.reports import campaign_report
from airflow_provider_cc.units import Unit
from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable
    from concurrent.futures import Future
    from datetime import datetime, timedelta

    from airflow_provider_cc.units import SendTimes
    from airflow_provider_cc.window import Window

    # A campaign waiting for its decision: id, units still to pull, its campaign request, its known send time.
    _Item = tuple[str, list[Unit], Future | None, datetime | None]

# The listing stops after this many campaigns in a row sent before the horizon, in order: one campaign out of
# order at the top of the list cannot end it.
CONFIRM = 2

@dataclass
class Selection:
    """Units to pull (with each one's estimated requests), units an earlier try committed, and every skip.

    :param units: units to pull, in list order (newest campaigns first).
    :param estimate: per unit, ``max(1, ⌈report total / limit⌉)``: at most the pages it costs.
    :param resumed: units committed by an earlier try of the window.
    :param skipped: ``{campaign_id, reason, detail[, report]}`` per skipped campaign or unit.
    :param campaigns: campaigns looked at.
    """

    units: list[Unit] = field(default_factory=list)
    estimate: dict[Unit, int] = field(default_factory=dict)
    resumed: list[Unit] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    campaigns: int = 0

    def skip(self, campaign_id: str, reason: str, detail: str, report: str | None = None) -> None:
        """Record a skip; ``reason`` is one of a few fixed phrases, ``detail`` says why this one."""
        entry = {"campaign_id": campaign_id, "reason": reason, "detail": detail}
        self.skipped.append(entry | ({"report": report} if report else {}))

    def reasons(self) -> str:
        """``2 sent after the window, 5 no activity``."""
        return ", ".join(f"{n} {reason}" for reason, n in Counter(s["reason"] for s in self.skipped).items()) or "none"


class Selector:
    """Decides, campaign by campaign in list order, which units to pull.

    Campaign requests run up to ``lookahead`` ahead of the decisions (through ``fetch``, on the operator's
    threads); decisions stay in list order, so the horizon stops the listing at the right campaign, at the
    cost of at most ``lookahead - 1`` campaign requests beyond it on a cold cache.

    :param window: the run's window.
    :param horizon: leave out campaigns sent before this instant (``None``: no horizon).
    :param sent_within: the horizon as the user gave it, for messages.
    :param reports: report names to pull.
    :param limit: page size, for the estimate.
    :param lookahead: campaign requests in flight at most.
    :param done: keys of units committed by an earlier try.
    :param send_times: the send-time cache (read and extended).
    :param fetch: starts one campaign request: ``fetch(campaign_id) -> Future`` of the campaign object.
    :param explicit: the ids came from the user: an unknown one is an error, not a skip.
    """

    def __init__(self, *, window: Window, horizon: datetime | None, sent_within: timedelta | None,
                 reports: list[str], limit: int, lookahead: int, done: Collection[str], send_times: SendTimes,
                 fetch: Callable[[str], Future], explicit: bool) -> None:
        assert window.end is not None
        self.end = window.end
        self.horizon = horizon
        self.sent_within = sent_within
        self.reports = reports
        self.limit = limit
        self.lookahead = max(1, lookahead)
        self.done = done
        self.send_times = send_times
        self.fetch = fetch
        self.explicit = explicit
        self.selection = Selection()
        self._seen: set[str] = set()

    def outside(self, sent: datetime) -> bool:
        """Sent at or after the window's end, or before the horizon: none of its activity is to be pulled."""
        return sent >= self.end or (self.horizon is not None and sent < self.horizon)

    def take(self, campaign_ids: Iterable[str], *, ordered: bool) -> None:
        """Decide on the campaigns of one list (``ordered``: the SENT list, newest send first) or of the ids
        given. ``campaign_ids`` is read lazily: the listing's later pages are never fetched once it stops."""
        pending: deque[_Item] = deque()
        candidates = iter(campaign_ids)
        last: datetime | None = None  # the previous send time in list order
        broken = False
        streak = 0  # campaigns in a row, in list order, sent before the horizon
        can_stop = ordered and self.horizon is not None
        while True:
            while len(pending) < self.lookahead and not (can_stop and not broken and
                                                         self._projected(streak, pending) >= CONFIRM):
                cid = next(candidates, None)
                if cid is None:
                    break
                item = self._candidate(cid)
                if item is not None:
                    pending.append(item)
            if not pending:
                return
            cid, todo, future, sent = pending.popleft()
            campaign: dict[str, Any] = {}
            if future is not None:
                answer = self._campaign(cid, future)
                if answer is None:
                    continue
                campaign, sent = answer, record_instant(answer.get("last_run_date"))
                if answer.get("status") == "SENT" and sent is not None:
                    self.send_times.put(cid, sent)
            if sent is not None and ordered:
                broken = broken or (last is not None and sent > last)
                last = sent
            ends = can_stop and not broken and streak + 1 == CONFIRM
            streak = streak + 1 if self._decide(cid, todo, sent, campaign, ends_listing=ends) else 0

    def _beyond(self, item: _Item) -> bool:
        """Known, without a request, to be sent before the horizon."""
        sent = item[3]
        return item[2] is None and sent is not None and self.horizon is not None and sent < self.horizon

    def _projected(self, streak: int, pending: deque[_Item]) -> int:
        """The streak once every pending campaign is decided, counting only what is known now."""
        trailing = 0
        for item in reversed(pending):
            if not self._beyond(item):
                return trailing
            trailing += 1
        return streak + trailing

    def _candidate(self, cid: str) -> _Item | None:
        if cid in self._seen:
            return None
        self._seen.add(cid)
        self.selection.campaigns += 1
        units = [Unit(cid, r) for r in self.reports]
        self.selection.resumed += [u for u in units if u.key in self.done]
        todo = [u for u in units if u.key not in self.done]
        if not todo:
            return None  # every unit committed by an earlier try: nothing to ask
        sent = self.send_times.get(cid)
        if sent is not None and self.outside(sent):
            return cid, todo, None, sent  # decided by the cache, without a request
        return cid, todo, self.fetch(cid), None

    def _campaign(self, cid: str, future: Future) -> dict[str, Any] | None:
        """The campaign object, or ``None`` (skipped) for a campaign that has no tracking to pull."""
        try:
            campaign: dict[str, Any] = future.result()
        except ConstantContactNotFoundError:
            if self.explicit:
                raise ConstantContactNotFoundError(
                    f"campaign {cid} of campaign_ids was not found: it was deleted or the id is wrong. Remove it "
                    "from campaign_ids.") from None
            self.selection.skip(cid, "deleted", "listed, then answered 404 (deleted)")
            return None
        status = campaign.get("status")
        if status not in TRACKED_STATUSES:
            self.selection.skip(cid, "not sent", f"status {status}: tracking data exists only once it is sent")
            return None
        return campaign

    def _decide(self, cid: str, todo: list[Unit], sent: datetime | None, campaign: dict[str, Any], *,
                ends_listing: bool) -> bool:
        """Skip or take one campaign's units; ``True`` when it was sent before the horizon."""
        if sent is not None and sent >= self.end:
            self.selection.skip(cid, "sent after the window", f"last_run_date {format_api(sent)}")
            return False
        if sent is not None and self.horizon is not None and sent < self.horizon:
            note = (f"; the {CONFIRM} last campaigns looked at were sent before the horizon, and the SENT list is "
                    "newest first: the campaigns after them were not looked at") * ends_listing
            self.selection.skip(cid, "sent before the horizon", f"last_run_date {format_api(sent)} is more than "
                                f"sent_within={self.sent_within} before the window{note}")
            return True
        totals = campaign.get("tracking_summary") or {}
        for unit in todo:
            total = totals.get(campaign_report(unit.report).summary_key)
            if total == 0:
                self.selection.skip(cid, "no activity", "its tracking_summary counts 0", unit.report)
                continue
            self.selection.units.append(unit)
            self.selection.estimate[unit] = max(1, math.ceil(total / self.limit)) if isinstance(total, int) else 1
        return False
