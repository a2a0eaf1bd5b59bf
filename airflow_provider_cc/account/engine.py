"""The account run, step by step: select → expand → count → pull (commit, cover) → describe → stale files →
check → manifest."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.account import check, describe, files, outcome, pull, select
from airflow_provider_cc.account.state import Run
from airflow_provider_cc.budget import Budget, BudgetSpent, ThreadHooks
from airflow_provider_cc.campaign_state import Activities, Coverage, Grid, SendTimes
from airflow_provider_cc.destinations import check_writable, plain_uri
from airflow_provider_cc.exceptions import ConstantContactBudgetError
from airflow_provider_cc.units import Checkpoint, digest, state_path, window_state

if TYPE_CHECKING:
    from airflow_provider_cc.account.state import Plan, Wiring
    from airflow_provider_cc.selection import Selection
    from airflow_provider_cc.units import Unit


class AccountEngine:
    """One account run: a whole account's campaign tracking for one window, inside the key's quota.

    :param plan: what to pull, checked.
    :param wiring: the logger, file output, stop signal and lineage list the operator gives it.
    """

    def __init__(self, plan: Plan, wiring: Wiring) -> None:
        self.plan = plan
        self.wiring = wiring

    def run(self) -> dict[str, Any]:
        """Pull the window; return the manifest (lists capped). Raises when the run did not finish, saying
        what is done and left; a retry resumes from the checkpoint."""
        run = self._start()
        pool = ThreadPoolExecutor(self.plan.concurrency, thread_name_prefix="cc-account")
        try:
            selection = select.carried(run) or select.select(run, pool)  # selection, expansion (v3)
            estimate = pull.prepare(run, selection)
            self._count(run, selection)  # the API's counts, before pulling
            ending = pull.pull(run, pool, selection, lambda unit: self._pull_unit(run, unit))  # commit, cover
            completeness = None
            if ending.complete:
                if self.plan.dimensions:
                    run.dimensions = self._describe(run, selection)
                files.remove_stale(run, selection)
                completeness = check.verify(run, selection)  # written vs counted
                self.wiring.quality.extend(run.quality)
            run.checkpoint.save(complete=ending.complete, final=True, requests=run.hooks.requests_sent())
            manifest = outcome.manifest(run, selection, estimate, completeness)
            if ending.reason:
                outcome.fail(run, selection, ending.remaining, ending.reason, ending.failure, manifest)
            if completeness and completeness["mismatch_count"] and self.plan.on_incomplete == "fail":
                outcome.incomplete(completeness, manifest)
            run.log.info("Done: %d units, %d records in %d files, %d requests (estimate was at most %d). "
                         "Manifest: %s", run.done, run.records, len(run.files), manifest["requests"], estimate,
                         manifest["manifest_uri"])
            return manifest
        except BaseException:
            run.budget.stop.set()  # in-flight units stop at their next request and commit nothing more
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            run.hooks.close()
            run.coverage.save()  # what this try made complete, or confirmed, whatever else happened
            run.activities.save()

    @staticmethod
    def _count(run: Run, selection: Selection) -> None:
        """The completeness check's counts (v3: the activity stats), before the first unit."""
        try:
            check.count(run, selection)
        except BudgetSpent:
            raise ConstantContactBudgetError(
                f"Stopped at the request budget, max_requests={run.budget.limit}, while asking Constant Contact's "
                "counts for the completeness check, before pulling: raise max_requests (the check costs one "
                "request per 10 campaign activities on v3, none on v2).") from None

    @staticmethod
    def _describe(run: Run, selection: Selection) -> dict[str, int]:
        """The dimension files, once every unit is committed (a budget stop here leaves the window open)."""
        try:
            return describe.describe(run, selection)
        except BudgetSpent:
            raise ConstantContactBudgetError(
                f"Stopped at the request budget, max_requests={run.budget.limit}, while writing the dimensions: "
                "every unit is committed, the window is not complete yet. Run the task again once the key has "
                "quota left (or raise max_requests): it resumes, fetches no unit again and writes the dimensions "
                f"(at most {describe.cost(run, selection)} requests).") from None

    def _pull_unit(self, run: Run, unit: Unit) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """One unit (a seam: tests replace it to make a unit fail)."""
        return pull.pull_unit(run, unit)

    def _start(self) -> Run:
        """The run's shared state, its checkpoint loaded (resuming an unfinished try) and its caches read."""
        plan, window = self.plan, self.plan.window
        assert window.start is not None and window.end is not None
        budget = Budget(plan.max_requests, self.wiring.stopper)
        grid = Grid(plan.partition or window.end - window.start, plan.partitioning.starts[0])
        coverage_name = f"coverage.{digest({**plan.output_options, **grid.key()})}.json"
        root = plan.root
        run = Run(plan=plan, wiring=self.wiring, horizon=plan.horizon, budget=budget,
                  hooks=ThreadHooks(plan.conn_id, plan.settings, budget),
                  checkpoint=Checkpoint(window_state(root, "checkpoints", window, plan.options), window,
                                        plan.options),
                  send_times=SendTimes(state_path(root, "campaigns", "sent.json")),
                  coverage=Coverage(state_path(root, "campaigns", coverage_name), grid, window.start),
                  activities=Activities(state_path(root, "campaigns", "activities.json")))
        check_writable(run.checkpoint.path)  # before the first request: no quota spent on an unwritable root
        run.log.info("Account tracking for [%s, %s): %s, %d partition(s), reports %s, up to %d requests in flight",
                     window.as_dict()["created_since"], window.as_dict()["created_before"],
                     "campaigns " + ", ".join(plan.ids) if plan.ids is not None else "every SENT or RUNNING campaign",
                     len(plan.partitioning), ", ".join(plan.reports), plan.concurrency)
        resumed = run.checkpoint.load(plan.resume)
        if resumed:
            run.log.info("Resuming: %d units were committed by earlier tries of this window (%s)",
                         len(run.checkpoint.done), plain_uri(run.checkpoint.path))
            files.check_resumed(run)
        run.send_times.load()
        run.coverage.load()
        run.activities.load()
        run.recheck = plan.recheck_every
        if plan.recheck_every is not None and run.checkpoint.previous and not resumed:
            # This window ran before (a cleared task, resume=False): it is pulled completely, every campaign.
            run.horizon, run.recheck = None, None
            run.log.info("This window was pulled before: every campaign that can have activity in it is pulled "
                         "again (the horizon and the re-check schedule apply to a window's first run)")
        return run
