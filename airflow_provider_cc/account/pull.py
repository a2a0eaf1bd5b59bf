"""Pulling: the units, ``concurrency`` at a time on the one budget and limiter, each fetched once from its
start and committed (atomic files, then the checkpoint) as it completes.

A unit that fails stops the run (units in flight stop at their next request and commit nothing more); the
budget and a stop on request end it cleanly. A unit whose page answers 404 is taken for its campaign's
deletion only when the campaign confirms it (:func:`~.files.deleted`).
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import AirflowTaskTerminated
from airflow_provider_cc.account import check, cover, describe, files, outcome
from airflow_provider_cc.budget import BudgetSpent, Stopped
from airflow_provider_cc.destinations import file_name
from airflow_provider_cc.dialects import Target
from airflow_provider_cc.exceptions import ConstantContactNotFoundError, ConstantContactServerError
from airflow_provider_cc.lineage import api_input
from airflow_provider_cc.units import Unit

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import ThreadPoolExecutor

    from airflow_provider_cc.account.state import Run
    from airflow_provider_cc.selection import Selection



@dataclass
class Ending:
    """How the pulling ended.

    :param reason: ``""`` (every unit ran), ``error``, ``budget`` or ``stopped``.
    :param failure: the first real failure, when ``reason`` is ``error``.
    :param remaining: units not committed, with their estimated requests.
    """

    reason: str
    failure: BaseException | None
    remaining: dict[Unit, int]

    @property
    def complete(self) -> bool:
        """Every unit of the window is committed."""
        return not self.reason and not self.remaining


def prepare(run: Run, selection: Selection) -> int:
    """Before the first unit: group v3 activity units by campaign, log the estimate, and take the files of
    units an earlier try committed into this run. Returns the run's request estimate (at most)."""
    run.starts = selection.starts
    for unit in selection.units:
        if unit.activity_id is not None:
            run.siblings.setdefault(Unit(unit.campaign_id, unit.report).key, set()).add(unit)
    spent = run.spent_before_pull = run.hooks.requests_sent()
    tracking = sum(selection.estimate[u] for u in selection.units)
    dimensions = describe.cost(run, selection)
    counts = check.cost(run, selection)
    estimate = spent + tracking + dimensions + counts
    budget = run.budget.limit
    run.log.info(
        "Selection: %d campaigns looked at, %d units to pull, %d committed by an earlier try, %d skipped "
        "(%s). Requests: %d spent on selection + at most %d for tracking + %d for the completeness counts + at "
        "most %d for dimensions = %d%s",
        selection.campaigns, len(selection.units), len(selection.resumed), len(selection.skipped),
        selection.reasons(),
        spent, tracking, counts, dimensions, estimate,
        "" if budget is None else f" against max_requests={budget}" + (
            "" if estimate <= budget else ": the run may stop at the budget; a retry resumes"))
    for unit in selection.resumed:  # the earlier tries' files belong to this window's run as well
        for entry in run.checkpoint.files_of(unit):
            run.files.append(entry)
            run.records += entry["records"]
            run.wiring.output.files_written.append(entry)
    return estimate


def pull(run: Run, pool: ThreadPoolExecutor, selection: Selection,
         pull_unit: Callable[[Unit], tuple[dict[str, int], list[dict[str, Any]]]]) -> Ending:
    """Pull every unit of the selection with ``pull_unit``; commit each as it completes."""
    started = time.monotonic()
    next_summary = started + outcome.SUMMARY_EVERY
    remaining = {unit: selection.estimate[unit] for unit in selection.units}
    failures: list[BaseException] = []
    ends: set[str] = set()  # "budget", "stopped": how units other than failed ones ended
    futures: dict[Future, Unit] = {}
    pending: set[Future] = set()
    budget = run.budget.limit
    concurrency = run.plan.concurrency
    # Under a budget, the smallest units first, and only as many at once as the budget left covers: a budget
    # too small for everything completes what it can (and a retry goes on) instead of finishing nothing.
    queue = deque(sorted(selection.units, key=remaining.__getitem__) if budget is not None else selection.units)

    def start() -> None:
        while queue and not failures and not ends:
            if budget is not None and pending:
                reserved = sum(remaining[futures[f]] for f in pending) + remaining[queue[0]]
                if len(pending) >= concurrency or budget - run.budget.used < reserved:
                    return
            unit = queue.popleft()
            future = pool.submit(pull_unit, unit)
            futures[future] = unit
            pending.add(future)

    start()
    while pending:
        done, pending = wait(pending, timeout=max(0.0, next_summary - time.monotonic()),
                             return_when=FIRST_COMPLETED)
        committed = False
        for future in done:
            unit = futures[future]
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                counts, entries = future.result()
                remaining.pop(unit)
                run.checkpoint.commit(unit, entries, **counts)
                cover.covered(run, selection, unit, counts)
                committed = True
                run.done += 1
                run.log.info("%s: %d records, %d pages, %d files (%d/%d units, %d requests)", unit.label,
                             counts["records"], counts["pages"], counts["files"], run.done,
                             len(selection.units), run.hooks.requests_sent())
            elif isinstance(error, BudgetSpent):
                ends.add("budget")
            elif isinstance(error, (Stopped, AirflowTaskTerminated)):
                ends.add("stopped")
            elif isinstance(error, ConstantContactNotFoundError) and not run.explicit and not failures:
                try:
                    if files.deleted(run, selection, unit):
                        remaining.pop(unit)
                    else:
                        failures.append(ConstantContactServerError(
                            f"{unit.label}: a page answered 404 while the campaign itself is still there, so it "
                            "was not deleted: the unit failed and the window stays open (a retry pulls it "
                            "again)", status=404))
                except BudgetSpent:
                    ends.add("budget")
                if failures:
                    run.budget.stop.set()
            else:
                failures.append(error)
                run.budget.stop.set()  # units in flight stop at their next request and commit nothing more
            if failures or ends:
                for other in pending:
                    other.cancel()  # not started yet: never starts; running ones end on their own
        if committed:
            run.checkpoint.save(requests=run.hooks.requests_sent())
        start()
        if time.monotonic() >= next_summary and pending:
            next_summary = time.monotonic() + outcome.SUMMARY_EVERY
            outcome.progress(run, selection, remaining, started)
    if run.budget.stop.is_set() or run.wiring.stopper.stopped:
        ends.add("stopped")
    # A real failure wins over the stops it caused or met; then the budget; then a stop on request.
    reason = "error" if failures else "budget" if "budget" in ends else "stopped" if ends else ""
    return Ending(reason, failures[0] if failures else None, remaining)


def pull_unit(run: Run, unit: Unit) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """One (campaign, report), fetched once from the window's start (an old campaign's late activity: from
    where its files end), one file per partition with records."""
    plan = run.plan
    dialect = run.hooks.dialect()
    report, target = dialect.report(unit.report), Target(unit.campaign_id, unit.activity_id)
    window, partitioning = run.unit_window(unit)
    stream = dialect.stream(target, report, window, limit=plan.limit)
    folder = dialect.layout(report, target)
    entries: list[dict[str, Any]] = []
    with run.lock:
        run.partial[unit] = entries
    file_format, compression = plan.output_options["file_format"], plan.output_options["compression"]
    for partition, batches in partitioning.split(stream.batches(), report):
        path = run.root / folder / file_name(partition, file_format, compression)
        entry = run.wiring.output.write_output(batches, path, columns=report.columns,
                                               identity=dialect.identity(report, target), window=partition,
                                               before_commit=run.budget.check_stop)
        with run.lock:
            run.files.append(entry)
            run.records += entry["records"]
            entries.append(entry)
    with run.lock:
        run.wiring.inputs.append(api_input(stream.url))
        del run.partial[unit]
    return ({"records": stream.records, "pages": stream.pages, "files": len(entries), "later": stream.later},
            entries)
