"""Selection: which campaigns (v3: and their activities) can have activity in the run's window, as units.

A retry of a window uses the selection its first try saved (:func:`carried`); otherwise :func:`select` lists
the account (or reads the explicit ids), decides each campaign with the :class:`~airflow_provider_cc.selection
.Selector`, and on v3 expands the chosen (campaign, report)s into activity units (:mod:`.expand`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_cc.account import describe, expand
from airflow_provider_cc.budget import BudgetSpent
from airflow_provider_cc.campaign_state import Known, SendTimes
from airflow_provider_cc.exceptions import ConstantContactBudgetError
from airflow_provider_cc.selection import Listed, Selection, Selector
from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import ThreadPoolExecutor
    from datetime import datetime

    from airflow_provider_cc.account.state import Run
    from airflow_provider_cc.dialects import Dialect

MAX_STATS_BATCH = 10  # activities per v3 activity-stats request


def carried(run: Run) -> Selection | None:
    """The selection an earlier try of this window made, if there is one: a retry does not choose again."""
    if run.checkpoint.selection is None:
        return None
    selection = Selection.from_dict(run.checkpoint.selection, run.checkpoint.done)
    if selection is None:
        run.log.warning("The checkpoint's saved selection is unreadable; choosing the campaigns again")
        return None
    run.selected_now = False
    describe.carried(run, run.checkpoint.selection)
    run.log.info("Using the selection of an earlier try of this window (%d campaigns looked at): no request "
                 "spent on choosing them again", selection.campaigns)
    return selection


def select(run: Run, pool: ThreadPoolExecutor) -> Selection:
    """Choose the units of the window (and save the choice in the checkpoint, for a retry)."""
    plan = run.plan
    dialect = run.hooks.dialect()
    # Where the listing answers for every campaign (v3), the send-time cache is not consulted: it holds the
    # latest sends seen, and such a campaign's latest send may be its resend's.
    answered = dialect.listing_answers
    waiting: dict[str, dict[str, Any]] = {}  # listed answers waiting for the campaign's first send
    summary_keys = {r: dialect.report(r).summary_key for r in plan.reports}
    selector = Selector(window=run.window, horizon=run.horizon, sent_within=plan.sent_within, reports=plan.reports,
                        limit=plan.limit, lookahead=plan.concurrency, done=run.checkpoint.done,
                        send_times=SendTimes(run.send_times.path) if answered else run.send_times,
                        fetch=lambda cid: pool.submit(answer, run, cid, waiting.pop(cid, None)),
                        explicit=run.explicit, coverage=run.coverage, recheck_every=run.recheck,
                        summary_keys=summary_keys)
    marks: dict[str, str | None] = {}  # how each campaign was listed (v3: its last_sent_date)
    assert run.window.end is not None
    end = run.window.end

    def noted(entries: Iterator[Listed]) -> Iterator[Listed]:
        for entry in entries:
            marks[entry.id] = entry.modified
            answer = entry.answer
            sent = None if answer is None else record_instant(answer.get("last_run_date"))
            if answer is not None and sent is not None and sent >= end:
                # Sent last after the window: whether it was sent before the window's end too (a primary
                # email before, its resend after) takes its first send, known or asked.
                known = run.activities.get(entry.id, entry.modified)
                if known is None or (known.first_sent is None and len(known.activities) > 1):
                    # unknown, or a resend's campaign whose first send was not asked yet
                    waiting[entry.id] = answer
                    entry = Listed(entry.id, entry.modified)
                elif known.first_sent is not None:
                    entry = Listed(entry.id, entry.modified,
                                   {**answer, "first_run_date": format_api(known.first_sent)})
            yield entry

    try:
        if plan.ids is not None:
            answers = dialect.answers_for(plan.ids)
            selector.take(noted(answers.get(cid) or Listed(cid) for cid in plan.ids), ordered=False)
        else:
            for entries, ordered in dialect.listings():
                if dialect.counts_events and run.recheck is not None:
                    entries = event_totals(run, dialect, entries, end, tuple(summary_keys.values()))
                selector.take(noted(entries), ordered=ordered)
        if dialect.targets_cost_a_request:
            expand.expand(run, pool, selector.selection, marks)
    except BudgetSpent:
        raise ConstantContactBudgetError(
            f"Stopped at the request budget, max_requests={run.budget.limit}, while choosing the campaigns "
            f"({selector.selection.campaigns} looked at): nothing was pulled, and a retry would stop at the same "
            "place. Choosing them costs about one list page per 50 campaigns and one request per campaign that "
            "can have activity; raise max_requests, or give a horizon (sent_within) or campaign_ids.") from None
    finally:
        run.send_times.save()  # what was learnt is kept, even from a run that stops here
    run.checkpoint.save_selection({**selector.selection.as_dict(), "described": run.described})
    return selector.selection


def event_totals(run: Run, dialect: Dialect, entries: Iterator[Listed], end: datetime, keys: tuple[str, ...]
                 ) -> Iterator[Listed]:
    """With re-checks, where the API counts records (v3): the campaigns due for one get record counts for
    their totals (``keys``; the activity stats, 10 activities a request), since the summaries count
    contacts, and a contact's second open changes none of them. The other campaigns pass through
    unchanged, without waiting for a batch."""
    assert run.horizon is not None and run.recheck is not None
    batch: list[tuple[Listed, tuple[str, ...]]] = []

    def flush() -> Iterator[Listed]:
        counts = dialect.event_totals([a for _, ids in batch for a in ids])
        for entry, ids in batch:
            assert entry.answer is not None
            summary = {key: sum(counts[a][key] for a in ids) if all(key in counts.get(a, {}) for a in ids)
                       else None for key in keys}
            yield Listed(entry.id, entry.modified, {**entry.answer, "tracking_summary": summary})
        batch.clear()

    for entry in entries:
        sent = None if entry.answer is None else record_instant(entry.answer.get("last_run_date"))
        if sent is None or sent >= run.horizon or not run.coverage.due(entry.id, end, run.recheck):
            yield entry
            continue
        known = run.activities.get(entry.id, entry.modified)
        if known is None:
            ids, first = dialect.activities(entry.id, first_send=False)
            known = Known(entry.modified, ids, first)
            run.activities.put(entry.id, known)
        batch.append((entry, known.activities))
        if sum(len(ids) for _, ids in batch) >= MAX_STATS_BATCH:
            yield from flush()
    if batch:
        yield from flush()


def answer(run: Run, campaign_id: str, listed: dict[str, Any] | None) -> dict[str, Any]:
    """A campaign's answer for the selection: its own request (v2; v3 when not listed), or on v3 the
    listing's answer with the campaign's first send, read with its activities (cached)."""
    if listed is None:
        campaign = run.hooks.campaign(campaign_id)
        describe.described_now(run, campaign_id, campaign)
        return campaign
    ids, first = run.hooks.dialect().activities(campaign_id)
    with run.lock:
        run.activities.put(campaign_id, Known(listed.get("last_run_date"), ids, first))
    return {**listed, "first_run_date": None if first is None else format_api(first)}
