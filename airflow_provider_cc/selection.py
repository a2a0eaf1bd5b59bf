"""Which (campaign, report) units a window needs, decided in as few requests as the API allows, and never on
the strength of an answer or a cached fact that cannot bear it.

A campaign can have activity in ``[start, end)`` only if it was sent before ``end``. The campaign list (50 a
page) has no send time, so each listed campaign costs one campaign request (with ``updateSummary=true``),
which gives its send time (``last_run_date``) and each report's total. What spares a request:

* the send-time cache (:class:`~airflow_provider_cc.campaign_state.SendTimes`), for a campaign sent after the
  window or before the horizon, while its entry is recent and the list's ``modified_date`` unchanged;
* with a horizon, the SENT list's order (newest send first): the listing stops after :data:`CONFIRM`
  campaigns in a row whose own answers, in this run, show them sent before the horizon, unless the answers
  seen so far break that order. Cached facts never end the listing.

A report's total of 0 spares its pages only when it is an integer 0 and the campaign was sent at least
:data:`SUMMARY_LAG` before the window's end (a summary can lag a fresh send). A campaign that answers 404 is
asked once more before it is taken for deleted. Every skip says what it rests on (``basis``).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactNotFoundError
from airflow_provider_cc.hooks.constant_contact import TRACKED_STATUSES
from airflow_provider_cc.reports import campaign_report
from airflow_provider_cc.units import Unit
from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable

    from airflow_provider_cc.campaign_state import Coverage, SendTimes, SentTime
    from airflow_provider_cc.window import Window

# The listing stops after this many campaigns in a row, in list order, that answered with a send before the
# horizon: a campaign or two out of order at the top of the list cannot end it.
CONFIRM = 3
# A report total of 0 is believed only for campaigns sent at least this long before the window's end.
SUMMARY_LAG = timedelta(days=1)
# What a skip rests on.
ANSWER, SUMMARY, CACHE = "answer", "summary", "cache"


@dataclass(frozen=True)
class Listed:
    """A campaign as a list (or the user) names it.

    :param id: canonical campaign id.
    :param modified: the list's ``modified_date`` (v3: the summary's ``last_sent_date``), if listed.
    :param answer: the campaign as :meth:`Selector.take` reads it (``status``, ``last_run_date``,
        ``tracking_summary``), when the listing carries it.
    """

    id: str
    modified: str | None = None
    # The campaign as the selection reads it, when the listing itself says (v3's bulk summaries): no request.
    answer: dict[str, Any] | None = field(default=None, compare=False)


@dataclass
class Selection:
    """Units to pull (with each one's estimated requests), units an earlier try committed, and every skip.

    :param units: units to pull, in list order (newest campaigns first).
    :param estimate: per unit, ``max(1, ⌈report total / limit⌉)``: at most the pages it costs.
    :param resumed: units committed by an earlier try of the window.
    :param skipped: ``{campaign_id, reason, detail, basis[, report]}`` per skipped campaign or unit.
    :param campaigns: campaigns looked at.
    :param starts: units pulled from earlier than the window's start (an old campaign's late activity, from
        where its files end), by unit.
    :param answers: per campaign pulled, when it answered and its report totals (what coverage records).
    :param sent: per campaign pulled, its first send as known (what the completeness check needs).
    """

    units: list[Unit] = field(default_factory=list)
    estimate: dict[Unit, int] = field(default_factory=dict)
    resumed: list[Unit] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    campaigns: int = 0
    starts: dict[Unit, datetime] = field(default_factory=dict)
    answers: dict[str, tuple[datetime, dict[str, Any]]] = field(default_factory=dict)
    sent: dict[str, datetime] = field(default_factory=dict)

    def skip(self, campaign_id: str, reason: str, detail: str, report: str | None = None, *,
             basis: str = ANSWER) -> None:
        """Record a skip: ``reason`` is one of a few fixed phrases, ``detail`` says why this one, ``basis`` what
        it rests on (``answer``: the campaign's own answer in this run; ``summary``: its report totals;
        ``cache``: the send-time cache)."""
        entry = {"campaign_id": campaign_id, "reason": reason, "detail": detail, "basis": basis}
        self.skipped.append(entry | ({"report": report} if report else {}))

    def reasons(self) -> str:
        """``2 sent after the window, 5 no activity``."""
        return ", ".join(f"{n} {reason}" for reason, n in Counter(s["reason"] for s in self.skipped).items()) or "none"

    def as_dict(self) -> dict[str, Any]:
        """JSON form, kept in the checkpoint so that a retry does not choose again."""
        return {"units": [[u.campaign_id, u.report, self.estimate.get(u, 1),
                           format_api(self.starts[u]) if u in self.starts else None]
                          + ([u.activity_id] if u.activity_id else [])
                          for u in (*self.resumed, *self.units)],
                "answers": {c: [format_api(t), totals] for c, (t, totals) in self.answers.items()},
                "sent": {c: format_api(t) for c, t in self.sent.items()},
                "skipped": self.skipped, "campaigns": self.campaigns}

    @classmethod
    def from_dict(cls, document: Any, done: Collection[str]) -> Selection | None:
        """The selection :meth:`as_dict` wrote, split again by what is ``done`` now; ``None`` if malformed."""
        try:
            rows = [(str(c), str(r), int(n), None if s is None else record_instant(s), str(a[0]) if a else None)
                    for c, r, n, s, *a in document["units"]]
            answers = {str(c): (record_instant(t), dict(totals)) for c, (t, totals) in document["answers"].items()}
            skipped = [dict(s) for s in document["skipped"]]
            campaigns = int(document["campaigns"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        selection = cls(skipped=skipped, campaigns=campaigns)
        for cid, report, estimate, start, activity in rows:
            unit = Unit(cid, report, activity)
            (selection.resumed if unit.key in done else selection.units).append(unit)
            selection.estimate[unit] = estimate
            if start is not None:
                selection.starts[unit] = start
        selection.answers = {c: (t, totals) for c, (t, totals) in answers.items() if t is not None}
        sent = document.get("sent")
        for cid, text in sent.items() if isinstance(sent, dict) else ():
            moment = record_instant(text)
            if moment is not None:
                selection.sent[str(cid)] = moment
        return selection


# A campaign waiting for its decision: how it was listed, units still to pull, its campaign request (None:
# decided by the cache entry).
_Item = tuple[Listed, list[Unit], "Future | None", "SentTime | None"]


class Selector:
    """Decides, campaign by campaign in list order, which units to pull.

    Campaign requests run up to ``lookahead`` ahead of the decisions (through ``fetch``, on the operator's
    threads); decisions stay in list order, so the horizon stops the listing at the right campaign, at the
    cost of at most ``lookahead - 1`` campaign requests beyond it.

    :param window: the run's window.
    :param horizon: leave out campaigns sent before this instant (``None``: no horizon).
    :param sent_within: the horizon as the user gave it, for messages.
    :param reports: report names to pull.
    :param limit: page size, for the estimate.
    :param lookahead: campaign requests in flight at most.
    :param done: keys of units committed by an earlier try.
    :param send_times: the send-time cache (read and extended).
    :param fetch: starts one campaign request: ``fetch(campaign_id) -> Future`` of the checked campaign object.
    :param explicit: the ids came from the user: an unknown one is an error, not a skip.
    :param coverage: what the files hold, per unit (see :class:`~airflow_provider_cc.campaign_state.Coverage`).
    :param recheck_every: with a horizon, check campaigns sent before it at least this often (and pull what
        changed), instead of leaving them out.
    :param now: the current time (tests may fix it).
    :param summary_keys: per report name, the key of its total in ``tracking_summary`` (default: v2's).
    """

    def __init__(self, *, window: Window, horizon: datetime | None, sent_within: timedelta | None,
                 reports: list[str], limit: int, lookahead: int, done: Collection[str], send_times: SendTimes,
                 fetch: Callable[[str], Future], explicit: bool, coverage: Coverage | None = None,
                 recheck_every: timedelta | None = None, now: Callable[[], datetime] | None = None,
                 summary_keys: dict[str, str] | None = None) -> None:
        self.summary_keys = summary_keys or {r: campaign_report(r).summary_key for r in reports}
        assert window.end is not None
        self.end = window.end
        self.coverage = coverage
        self.recheck_every = recheck_every if horizon is not None and coverage is not None else None
        self.now = now or (lambda: datetime.now(timezone.utc))
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

    def take(self, listed: Iterable[Listed], *, ordered: bool) -> None:
        """Decide on the campaigns of one list (``ordered``: the SENT list, newest send first) or of the ids
        given. ``listed`` is read lazily: the listing's later pages are never fetched once it stops."""
        pending: deque[_Item] = deque()
        candidates = iter(listed)
        can_stop = ordered and self.horizon is not None and self.recheck_every is None
        stopped = broken = False
        last: datetime | None = None  # the previous answered send time, in list order
        streak = 0  # answers in a row, in list order, with a send before the horizon
        while True:
            while not stopped and len(pending) < self.lookahead:
                entry = next(candidates, None)
                if entry is None:
                    break
                item = self._candidate(entry)
                if item is not None:
                    pending.append(item)
            if not pending:
                return
            entry, todo, future, cached = pending.popleft()
            if future is None:
                assert cached is not None
                self._decide_cached(entry.id, cached)  # neither evidence for the order nor against it
                continue
            campaign = self._campaign(entry.id, future)
            if campaign is None:
                streak = 0
                continue
            answered = self.now()
            sent = record_instant(campaign.get("last_run_date"))
            if sent is not None and campaign["status"].upper() == "SENT":
                self.send_times.put(entry.id, sent, entry.modified)
            if sent is not None and ordered:
                broken = broken or (last is not None and sent > last)
                last = sent
            ends = can_stop and not broken and streak + 1 >= CONFIRM and not stopped
            streak = streak + 1 if self._decide(entry.id, todo, sent, campaign, answered, ends_listing=ends) else 0
            stopped = stopped or (ends and streak >= CONFIRM)

    def _candidate(self, entry: Listed) -> _Item | None:
        if entry.id in self._seen:
            return None
        self._seen.add(entry.id)
        self.selection.campaigns += 1
        units = [Unit(entry.id, r) for r in self.reports]
        self.selection.resumed += [u for u in units if u.key in self.done]
        todo = [u for u in units if u.key not in self.done]
        if not todo:
            return None  # every unit committed by an earlier try: nothing to ask
        if entry.answer is not None:  # the listing answered already: no request, and fresher than any cache
            answered: Future = Future()
            answered.set_result(entry.answer)
            return entry, todo, answered, None
        cached = self.send_times.trusted(entry.id, entry.modified)
        old = cached is not None and self.horizon is not None and cached.last < self.horizon
        if cached is not None and (cached.first >= self.end or (old and not self._due(entry.id))):
            return entry, todo, None, cached  # decided by the cache, without a request
        asked = self.fetch(entry.id)
        return entry, todo, asked, None

    def _due(self, cid: str) -> bool:
        """Whether an old campaign is to be checked by this run (always ``False`` without re-checks)."""
        return self.recheck_every is not None and self.coverage is not None and self.coverage.due(
            cid, self.end, self.recheck_every)

    def _next_check(self, cid: str) -> str:
        if self.recheck_every is None or self.coverage is None:
            return ""
        due = self.coverage.next_check(cid, self.recheck_every)
        return f"; re-checked {'by ' + format_api(due) if due is not None else 'in its turn'} (recheck_every)"

    def _decide_cached(self, cid: str, cached: SentTime) -> None:
        verified = "" if cached.verified is None else f", as it answered on {format_api(cached.verified)}"
        if cached.first >= self.end:
            self.selection.skip(cid, "sent after the window", f"first sent {format_api(cached.first)} (send-time "
                                f"cache{verified})", basis=CACHE)
        else:
            self.selection.skip(cid, "sent before the horizon", f"last sent {format_api(cached.last)}, more than "
                                f"sent_within={self.sent_within} before the window (send-time cache{verified})"
                                f"{self._next_check(cid)}", basis=CACHE)

    def _campaign(self, cid: str, future: Future) -> dict[str, Any] | None:
        """The campaign object, or ``None`` (skipped) for a campaign that has no tracking to pull. A 404 is
        believed only when the campaign answers 404 a second time."""
        try:
            campaign: dict[str, Any] = future.result()
        except ConstantContactNotFoundError:
            if self.explicit:
                raise ConstantContactNotFoundError(
                    f"campaign {cid} of campaign_ids was not found: it was deleted or the id is wrong. Remove it "
                    "from campaign_ids.") from None
            try:
                campaign = self.fetch(cid).result()
            except ConstantContactNotFoundError:
                self.selection.skip(cid, "deleted", "listed, then answered 404 twice (deleted since it was listed)")
                return None
        status = campaign["status"].upper()
        if status == "DELETED":
            self.selection.skip(cid, "deleted", "its status is DELETED")
            return None
        if status not in TRACKED_STATUSES:
            self.selection.skip(cid, "not sent", f"status {status}: tracking data exists only once it is sent")
            return None
        return campaign

    def _decide(self, cid: str, todo: list[Unit], sent: datetime | None, campaign: dict[str, Any],
                answered: datetime, *, ends_listing: bool) -> bool:
        """Skip or take one campaign's units; ``True`` when it was sent before the horizon."""
        # v3: the latest send may be a resend; the campaign's first send (its primary email's) decides
        first = record_instant(campaign.get("first_run_date")) or sent
        if first is not None and first >= self.end:
            self.selection.skip(cid, "sent after the window", f"last_run_date {format_api(sent)}" if first == sent
                                else f"first sent {format_api(first)}")
            return False
        totals = campaign.get("tracking_summary") or {}
        old = sent is not None and self.horizon is not None and sent < self.horizon
        if sent is not None and old and not self._due(cid):
            note = (f"; the {CONFIRM} last campaigns that answered were sent before the horizon, and the SENT list "
                    "is newest first: the campaigns after them were not looked at") * ends_listing
            self.selection.skip(cid, "sent before the horizon", f"last_run_date {format_api(sent)} is more than "
                                f"sent_within={self.sent_within} before the window{note}{self._next_check(cid)}")
            return True
        self.selection.answers[cid] = (answered, totals)
        if first is not None:
            self.selection.sent[cid] = first
        settled = sent is not None and sent <= self.end - SUMMARY_LAG  # a summary this old has caught up
        for unit in todo:
            total = totals.get(self.summary_keys[unit.report])
            if settled and total.__class__ is int and total == 0:
                self.selection.skip(cid, "no activity", "its tracking_summary counts 0", unit.report, basis=SUMMARY)
                continue
            if old and self._unchanged(unit, total, answered):
                continue
            self.selection.units.append(unit)
            pages = math.ceil(total / self.limit) if total.__class__ is int and total > 0 else 1
            self.selection.estimate[unit] = max(1, pages)
        if old:
            assert self.coverage is not None
            self.coverage.looked_at(cid, self.end)
        return old

    def _unchanged(self, unit: Unit, total: Any, answered: datetime) -> bool:
        """An old campaign's unit at its check: skipped (its files confirmed complete through the window's end)
        when its total says nothing was added; otherwise pulled from where its files end (:attr:`starts`)."""
        assert self.coverage is not None
        key = unit.key
        if self.coverage.unchanged(key, total) and answered >= self.end:
            covered = self.coverage.covered(key)
            self.coverage.confirmed(key, self.end, answered)
            self.selection.skip(unit.campaign_id, "no new activity", f"its total {total} is the one of "
                                f"{format_api(covered.asof)}, when its files held every record", unit.report,
                                basis=SUMMARY)
            return True
        start = self.coverage.restart(key)
        if start >= self.end:
            self.selection.skip(unit.campaign_id, "no new activity", f"its files are complete through "
                                f"{format_api(self.coverage.covered(key).end)}", unit.report, basis=SUMMARY)
            return True
        self.selection.starts[unit] = start
        return False
