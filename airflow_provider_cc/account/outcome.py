"""What a run reports: its progress while pulling, its manifest (the full one under the root, a capped one
for XCom), and, when it did not finish, the error that says what is done and left and how to go on."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import AirflowTaskTerminated
from airflow_provider_cc.destinations import conn_id_of, plain_uri
from airflow_provider_cc.exceptions import (
    ConstantContactBudgetError,
    ConstantContactError,
    ConstantContactIncompleteError,
    ConstantContactQuotaExceededError,
)
from airflow_provider_cc.units import window_state, write_json

if TYPE_CHECKING:
    from airflow_provider_cc.account.state import Run
    from airflow_provider_cc.selection import Selection
    from airflow_provider_cc.units import Unit

# XCom stays small: at most this many files and skips are listed; the full manifest is an object under the root.
MAX_LISTED = 100
SUMMARY_EVERY = 30.0  # seconds between progress lines


def progress(run: Run, selection: Selection, remaining: dict[Unit, int], started: float) -> None:
    """Log one progress line: units, requests, records, rate and time left at most."""
    elapsed = max(time.monotonic() - started, 1e-9)
    used = run.hooks.requests_sent()
    rate = (used - run.spent_before_pull) / elapsed
    left = sum(remaining.values())
    eta = f"about {left / rate:,.0f} s left at most" if rate > 0 else "time left unknown"
    run.log.info("Progress: %d/%d units, %d requests, %d records, %.0f records/s, %s", run.done,
                 len(selection.units), used, run.records, run.records / elapsed, eta)


def manifest(run: Run, selection: Selection, estimate: int, completeness: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """The full manifest, written under the root; the returned one (for XCom) has its lists capped.

    :param completeness: the completeness check's result (``None``: not run, the window is not complete).
    """
    options = run.plan.options
    path = window_state(run.root, "manifests", run.window, options)
    requests = run.hooks.requests_sent()
    full = {"window": run.window.as_dict(), "destination": plain_uri(run.root),
            "storage_conn_id": conn_id_of(run.root), **options,
            "requests": requests, "requests_selection": run.spent_before_pull,
            "requests_all_tries": run.checkpoint.requests_before + requests,
            "requests_estimate": estimate,
            "units": {"pulled": run.done, "resumed": len(selection.resumed),
                      "left": len(selection.units) - run.done,
                      "skipped": sum(1 for s in selection.skipped if "report" in s)},
            "records": run.records, "dimensions": run.dimensions, "files_count": len(run.files),
            "files": sorted(run.files, key=lambda f: f["uri"]),
            "skipped_count": len(selection.skipped), "skipped": selection.skipped,
            "removed_count": len(run.removed), "removed": sorted(run.removed),
            "completeness": completeness, "checkpoint_uri": plain_uri(run.checkpoint.path)}
    write_json(path, full)
    capped = None if completeness is None else {**completeness, "mismatches": completeness["mismatches"][:MAX_LISTED]}
    return {**full, "files": full["files"][:MAX_LISTED], "skipped": selection.skipped[:MAX_LISTED],
            "removed": full["removed"][:MAX_LISTED], "completeness": capped, "manifest_uri": plain_uri(path)}


def incomplete(completeness: dict[str, Any], manifest: dict[str, Any]) -> None:
    """With ``on_incomplete="fail"``: fail naming the (campaign, report)s whose files miss or double records."""
    shown = "; ".join(f"campaign {m['campaign_id']} {m['report']}: {m['written']} written, {m['counted']} counted "
                      f"({m['later']} after the window)" for m in completeness["mismatches"][:10])
    more = completeness["mismatch_count"] - min(10, completeness["mismatch_count"])
    raise ConstantContactIncompleteError(
        f"Completeness check: {completeness['mismatch_count']} of {completeness['checked']} (campaign, report)s "
        f"hold another number of records than Constant Contact counts: {shown}" + (f"; {more} more" if more else "")
        + f". The files are committed (manifest {manifest['manifest_uri']}); a retry pulls the window again. "
        "on_incomplete='warn' logs this instead of failing.")


def fail(run: Run, selection: Selection, remaining: dict[Unit, int], reason: str, failure: BaseException | None,
         manifest: dict[str, Any]) -> None:
    """Raise the error of a run that did not finish (``reason``: ``budget``, ``stopped`` or ``error``)."""
    done = (f"{run.done} of {len(selection.units)} units are done ({run.records} records in {len(run.files)} "
            f"files, committed and kept" + (f"; {len(selection.resumed)} more were done by earlier tries"
                                             if selection.resumed else "") + ")")
    left = f"{len(remaining)} units are left (at most about {sum(remaining.values())} requests)"
    go_on = (f"Run the task again to go on: a retry, or clearing it, resumes from the checkpoint "
             f"{manifest['checkpoint_uri']} and fetches no committed unit again")
    if reason == "budget" and run.done == 0 and not run.selected_now:
        raise ConstantContactBudgetError(
            f"Stopped at the request budget, max_requests={run.budget.limit}, without committing a unit, with "
            f"the campaigns already chosen by an earlier try: every retry would do the same. {left}, the "
            f"smallest estimated at {min(remaining.values(), default=1)} (its report total / limit; opens, "
            "clicks and forwards count unique contacts, so it may need more). Raise max_requests and run the "
            "task again: it resumes from the checkpoint.")
    if reason == "budget":
        raise ConstantContactError(
            f"Stopped at the request budget, max_requests={run.budget.limit} ({manifest['requests']} requests "
            f"sent): {done}; {left}. {go_on}, once the key has quota left (10,000 requests a day), or raise "
            "max_requests.")
    if reason == "stopped":
        raise AirflowTaskTerminated(f"Stopped on request (SIGTERM or execution_timeout): {done}; {left}. {go_on}.")
    assert failure is not None
    if isinstance(failure, ConstantContactQuotaExceededError):  # the operator waits for the reset, or says so
        run.log.warning("The daily request quota is spent, so the run stopped: %s; %s.", done, left)
    else:
        run.log.error("A unit failed (%s: %s), so the run stopped: %s; %s. %s once the cause is fixed.",
                      type(failure).__name__, failure, done, left, go_on)
    raise failure
