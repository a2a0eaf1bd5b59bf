"""The account operator: a whole account's campaign tracking for a window, in one task, inside the key's quota."""

from __future__ import annotations

import ast
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import AIRFLOW_V_3, AirflowTaskTerminated
from airflow_provider_cc.assets import AssetEventsMixin
from airflow_provider_cc.budget import Budget, BudgetSpent, Stopped, ThreadHooks
from airflow_provider_cc.campaign_state import Activities, Coverage, Grid, Known, SendTimes
from airflow_provider_cc.destinations import (
    as_path,
    check_writable,
    conn_id_of,
    file_name,
    is_root,
    plain_uri,
)
from airflow_provider_cc.dialects import Dialect, Target
from airflow_provider_cc.exceptions import (
    ConstantContactBudgetError,
    ConstantContactError,
    ConstantContactInputError,
    ConstantContactNotFoundError,
    ConstantContactQuotaExceededError,
    ConstantContactResponseError,
    ConstantContactServerError,
)
from airflow_provider_cc.hooks.constant_contact import MAX_TRACKING_LIMIT, check_limit
from airflow_provider_cc.hooks.transport_v3 import quota_reset
from airflow_provider_cc.lineage import OpenLineageMixin, api_input
from airflow_provider_cc.operators.output import _FileOutput
from airflow_provider_cc.operators.tracking import _ConstantContactOperator
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES
from airflow_provider_cc.selection import Listed, Selection, Selector
from airflow_provider_cc.triggers.quota import ConstantContactQuotaResetTrigger
from airflow_provider_cc.units import (
    Checkpoint,
    Partitioning,
    Unit,
    digest,
    missing_files,
    state_path,
    window_state,
    write_json,
)
from airflow_provider_cc.window import Window, format_api, record_instant, resolve

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow_provider_cc._compat import Context, ObjectStoragePath

# 4 requests in flight keep a 4 requests/s key busy while one answer takes up to about a second.
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 32
# XCom stays small: at most this many files and skips are listed; the full manifest is an object under the root.
MAX_LISTED = 100
SUMMARY_EVERY = 30.0
MAX_STATS_BATCH = 10  # activities per v3 activity-stats request
DEFAULT_MAX_QUOTA_WAITS = 3  # waits for the daily quota's reset in one try


@dataclass
class _Run:
    """Everything one execution shares between its threads."""

    window: Window
    partitioning: Partitioning
    root: ObjectStoragePath
    horizon: datetime | None
    budget: Budget
    hooks: ThreadHooks
    checkpoint: Checkpoint
    send_times: SendTimes
    coverage: Coverage
    activities: Activities
    explicit: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    files: list[dict[str, Any]] = field(default_factory=list)
    # The files each unit in flight committed so far: what a unit that turns out deleted leaves behind.
    partial: dict[Unit, list[dict[str, Any]]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)  # campaigns confirmed deleted during the run
    records: int = 0
    done: int = 0
    spent_before_pull: int = 0
    selected_now: bool = True  # this try chose the campaigns (False: carried from an earlier try)
    recheck: timedelta | None = None  # the re-check schedule in force (None: a window pulled before)
    starts: dict[Unit, datetime] = field(default_factory=dict)  # units pulled from before the window's start
    # v3: a (campaign, report)'s activity units still to commit in this run, by campaign-level key: coverage
    # is a campaign's (its totals are), so it is recorded once every one of them committed.
    siblings: dict[str, set[Unit]] = field(default_factory=dict)
    unclean: set[str] = field(default_factory=set)  # campaign-level keys with a record at or after the end


def _as_list(value: Any, name: str) -> list[Any]:
    """A list from a list, tuple or set, or from text: comma/space separated, or a rendered list literal."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ConstantContactInputError(f"{name}={value!r} is not a list") from None
        else:
            return [part for part in text.replace(",", " ").split() if part]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    raise ConstantContactInputError(f"{name}={value!r} must be a list (or comma-separated text)")


class ConstantContactAccountTrackingOperator(_FileOutput, OpenLineageMixin, AssetEventsMixin, _ConstantContactOperator):
    """Pull the tracking reports of every campaign that can have activity in the run's window, into a root.

    The run's window follows the operators' window rule (explicit ``created_since`` / ``created_before``, else
    the data interval). Files use the tracking operators' layout and writers,
    ``{root}campaign/{report}/campaign_id={id}/{start}_{end}.{ext}``, one per (campaign, report, partition)
    with records; a partition without records gets no file. With ``partition`` a long window is fetched once
    per (campaign, report) and cut into partitions whose files are byte-identical to the runs of those
    partitions alone.

    **What it costs in requests**, per run: ⌈SENT campaigns / 50⌉ + 1 list pages; one campaign request per
    campaign that can have activity (its send time and report totals); then, per (campaign, report) whose
    total is not 0, ⌈records since the window's start / ``limit``⌉ pages, at least 1. Campaigns sent at or
    after the window's end, and reports with no activity at all, cost no tracking request. A SENT campaign's
    send time is cached under ``{root}_state/``, so a campaign sent after the window, or before the horizon,
    costs no request at all once known. The estimate is logged before pulling.

    :param destination: root to write under, ending in ``/`` (e.g. ``s3://bucket/cc/``) or an
        ``ObjectStoragePath`` (templated). State (checkpoints, manifests, send times) goes under ``{root}_state/``.
    :param reports: campaign reports to pull (default: all six; templated).
    :param campaign_ids: explicit campaign ids (templated, e.g. from XCom); default: every SENT or RUNNING
        campaign sent before the window's end.
    :param sent_within: campaigns sent longer than this before the window's start (a ``timedelta``) are left
        out of the run: cheaper daily runs; without ``recheck_every`` their late activity is never pulled.
    :param recheck_every: with ``sent_within``, check each campaign sent before the horizon at least this often
        (a ``timedelta``, e.g. 7 days; one campaign request) and pull a report only when its total changed, from
        where its files end through the window's end, into the same files a full pull writes: late activity of
        any campaign reaches its partition's file within this delay.
    :param partition: cut the window into partitions of this length (a ``timedelta``); default: one.
    :param partition_anchor: a partition boundary (default: the window's start); the window must start and
        end on boundaries (templated).
    :param concurrency: (campaign, report) units in flight at once, sharing the key's one rate limiter.
    :param max_requests: request budget of one try (templated): the run stops cleanly at it and fails saying
        what is done and left; a retry resumes.
    :param resume: skip units that an earlier, unfinished try of this window committed (default). A try that
        completes marks the window complete, so clearing the task later pulls it all again. ``False``: pull all.
    :param file_format: ``jsonl`` (default), ``csv`` or ``parquet`` (needs pyarrow).
    :param compression: ``None`` or ``gzip`` (jsonl and csv).
    :param parquet_compression: ``snappy`` (default), ``zstd`` or ``none``.
    :param csv_formula_guard: prefix CSV cells a spreadsheet would run as formulas with ``'`` (default).
    :param storage_conn_id: Airflow connection for the object store.
    :param created_since: inclusive start; default: the data interval's start (templated).
    :param created_before: exclusive end; default: the data interval's end (templated).
    :param limit: page size, 1-500.
    :param on_unreadable_date: ``fail`` (default): a record whose date cannot be read fails its unit;
        ``skip``: such records are left out and counted in the log.
    :param wait_for_quota_reset: when the application's daily quota is spent (v3: 429 ``quota_exceeded``; v2:
        403 ``over.ratelimit``), e.g. by another DAG on the same app, wait for its reset at 00:00 UTC and go on
        from the checkpoint (default). The task defers meanwhile, holding no worker slot (a triggerer must
        run); each go after a reset has ``max_requests`` again. ``False``: fail at once (v3: without retries).
    :param max_quota_waits: resets to wait for in one try at most (default 3); then the quota error fails it.
    :param constant_contact_conn_id: the ``constant_contact`` connection.
    """

    template_fields: Sequence[str] = ("destination", "reports", "campaign_ids", "created_since", "created_before",
                                      "partition_anchor", "max_requests", "storage_conn_id",
                                      "constant_contact_conn_id")
    ui_color = "#1856ed"

    def __init__(self, *, destination: Any, reports: Any = CAMPAIGN_REPORT_NAMES, campaign_ids: Any = None,
                 sent_within: timedelta | None = None, recheck_every: timedelta | None = None,
                 partition: timedelta | None = None,
                 partition_anchor: Any = None, concurrency: int = DEFAULT_CONCURRENCY,
                 max_requests: Any = None, resume: bool = True, file_format: str = "jsonl",
                 compression: str | None = None, storage_conn_id: str | None = None, created_since: Any = None,
                 created_before: Any = None, limit: int = MAX_TRACKING_LIMIT, parquet_compression: str = "snappy",
                 csv_formula_guard: bool = True, on_unreadable_date: str = "fail", wait_for_quota_reset: bool = True,
                 max_quota_waits: int = DEFAULT_MAX_QUOTA_WAITS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.destination = destination
        self.reports = reports
        self.campaign_ids = campaign_ids
        self.sent_within = sent_within
        self.recheck_every = recheck_every
        self.partition = partition
        self.partition_anchor = partition_anchor
        self.concurrency = concurrency
        self.max_requests = max_requests
        self.resume = resume
        self._init_output(file_format=file_format, compression=compression, storage_conn_id=storage_conn_id,
                          parquet_compression=parquet_compression, csv_formula_guard=csv_formula_guard)
        self.created_since = created_since
        self.created_before = created_before
        self.limit = limit
        self.on_unreadable_date = on_unreadable_date
        self.wait_for_quota_reset = wait_for_quota_reset
        self.max_quota_waits = max_quota_waits
        self._quota_waits = 0  # waits for the quota's reset so far in this try
        self.lineage_inputs: list[dict[str, str]] = []

    # ---- arguments, checked before any request ------------------------------------------------------------
    def _report_names(self) -> list[str]:
        names = []
        for name in _as_list(self.reports, "reports"):
            report = self.api.report(name)
            if report.snapshot:
                raise ConstantContactInputError(
                    f"{report.name} is a snapshot (the whole report as it stands, not activity in a window), which "
                    "the account operator does not pull: pull it per campaign with "
                    "ConstantContactCampaignTrackingOperator, and give reports from "
                    f"{', '.join(self.api.default_reports)}")
            names.append(report.name)
        if not names:
            raise ConstantContactInputError(f"reports is empty; name some of {', '.join(self.api.default_reports)}")
        return list(dict.fromkeys(names))

    def _ids(self) -> list[str] | None:
        if self.campaign_ids is None or self.campaign_ids == "":
            return None
        return list(dict.fromkeys(self.api.campaign_id(v, "campaign_ids")
                                  for v in _as_list(self.campaign_ids, "campaign_ids")))

    def _budget_limit(self) -> int | None:
        value = self.max_requests
        if value is None or value == "":
            return None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConstantContactInputError(f"max_requests={self.max_requests!r} must be a whole number >= 1")
        return value

    def _root(self) -> ObjectStoragePath:
        root = as_path(self.destination, self.storage_conn_id)
        if not is_root(self.destination):
            raise ConstantContactInputError(
                f"destination={self.destination!r} must be a root ending in '/', e.g. 's3://bucket/cc/' or "
                "'file:///data/cc/': the operator writes one file per campaign, report and partition under it")
        return root

    def _check(self) -> None:
        self.check_output()
        check_limit(self.limit, MAX_TRACKING_LIMIT)
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or not (
                1 <= self.concurrency <= MAX_CONCURRENCY):
            raise ConstantContactInputError(f"concurrency={self.concurrency!r} must be a whole number from 1 to "
                                            f"{MAX_CONCURRENCY}")
        if self.sent_within is not None and (not isinstance(self.sent_within, timedelta)
                                             or self.sent_within <= timedelta(0)):
            raise ConstantContactInputError(f"sent_within={self.sent_within!r} must be a positive datetime.timedelta "
                                            "(or None for no horizon)")
        if self.recheck_every is not None:
            if not isinstance(self.recheck_every, timedelta) or self.recheck_every <= timedelta(0):
                raise ConstantContactInputError(f"recheck_every={self.recheck_every!r} must be a positive "
                                                "datetime.timedelta, e.g. timedelta(days=7)")
            if self.sent_within is None:
                raise ConstantContactInputError("recheck_every re-checks the campaigns sent before the horizon: give "
                                                "sent_within=timedelta(...) as well (without a horizon every run "
                                                "pulls every campaign)")
        if not isinstance(self.wait_for_quota_reset, bool):
            raise ConstantContactInputError(f"wait_for_quota_reset={self.wait_for_quota_reset!r} must be True or False")
        if isinstance(self.max_quota_waits, bool) or not isinstance(self.max_quota_waits, int) or not (
                1 <= self.max_quota_waits <= 30):
            raise ConstantContactInputError(f"max_quota_waits={self.max_quota_waits!r} must be a whole number from 1 "
                                            "to 30 (days)")

    def _horizon(self, window: Window) -> datetime | None:
        assert window.start is not None
        if self.sent_within is None:
            return None
        try:
            return window.start - self.sent_within
        except OverflowError:
            raise ConstantContactInputError(
                f"sent_within={self.sent_within!r} reaches before the year 1 from the window's start: give a horizon "
                "within the account's history (e.g. timedelta(days=90)), or None for no horizon") from None

    # ---- execute -------------------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        return self._pull_or_wait(context, 0)

    def execute_after_quota_reset(self, context: Context, event: Any = None, **_: Any) -> dict[str, Any]:
        """Go on after a wait for the daily quota's reset: the checkpoint resumes the units committed before.

        :param context: the task's context.
        :param event: the trigger's event, ``{"reset": ISO time, "waits": waits so far}``.
        """
        waits = event.get("waits") if isinstance(event, dict) else None
        if isinstance(waits, bool) or not isinstance(waits, int) or waits < 1:
            waits = self.max_quota_waits  # an event that does not say how many: no further wait
        self.log.info("The daily request quota reset at %s (wait %d of at most %d): going on from the checkpoint",
                      event.get("reset") if isinstance(event, dict) else "?", waits, self.max_quota_waits)
        return self._pull_or_wait(context, waits)

    def _pull_or_wait(self, context: Context, waits: int) -> dict[str, Any]:
        """Pull the window; when the daily quota is spent, defer until it resets (up to ``max_quota_waits``)."""
        self._quota_waits = waits  # after a wait the try goes on: it resumes its own units even with resume=False
        try:
            return self._pull_window(context)
        except ConstantContactQuotaExceededError as error:
            if not self.wait_for_quota_reset or waits >= self.max_quota_waits:
                if self.wait_for_quota_reset:
                    self.log.error("The daily request quota is still spent after %d waits for its reset "
                                   "(max_quota_waits=%d): the task fails", waits, self.max_quota_waits)
                raise
            spent = str(error)
        reset = quota_reset()
        left = max(reset - datetime.now(timezone.utc), timedelta(0))
        self.log.warning(
            "The application's daily request quota is spent. Instead of failing, the task waits for its reset at %s "
            "UTC (in %d h %02d min; wait %d of at most %d, max_quota_waits): it defers, holding no worker slot, then "
            "goes on from its checkpoint without fetching a committed unit again (wait_for_quota_reset=False fails "
            "instead).%s The API said: %s",
            f"{reset:%Y-%m-%d %H:%M}", left.days * 24 + left.seconds // 3600, left.seconds % 3600 // 60, waits + 1,
            self.max_quota_waits,
            "" if AIRFLOW_V_3 or self.execution_timeout is None else
            f" On Airflow 2 the wait counts towards execution_timeout ({self.execution_timeout}): shorter than the "
            "wait, it ends the task (its retries resume from the checkpoint).", spent)
        self.defer(trigger=ConstantContactQuotaResetTrigger(reset, waits + 1), method_name="execute_after_quota_reset")

    def _pull_window(self, context: Context) -> dict[str, Any]:
        self._check()
        reports, ids, budget = self._report_names(), self._ids(), Budget(self._budget_limit(), self.stopper)
        window = resolve(context, self.created_since, self.created_before, on_unreadable_date=self.on_unreadable_date)
        partitioning = Partitioning.of(window, self.partition, self.partition_anchor)
        horizon = self._horizon(window)
        root = self._root()
        settings = self.hook.settings  # the connection, read and checked once, before any thread or request
        options = {"reports": sorted(reports), **self.output_options,
                   "partition": None if self.partition is None else self.partition.total_seconds()}
        assert window.start is not None and window.end is not None
        grid = Grid(self.partition or window.end - window.start, partitioning.starts[0])
        coverage_name = f"coverage.{digest({**self.output_options, **grid.key()})}.json"
        run = _Run(window=window, partitioning=partitioning, root=root, horizon=horizon,
                   budget=budget, hooks=ThreadHooks(self.constant_contact_conn_id, settings, budget),
                   checkpoint=Checkpoint(window_state(root, "checkpoints", window, options), window, options),
                   send_times=SendTimes(state_path(root, "campaigns", "sent.json")),
                   coverage=Coverage(state_path(root, "campaigns", coverage_name), grid, window.start),
                   activities=Activities(state_path(root, "campaigns", "activities.json")),
                   explicit=ids is not None)
        check_writable(run.checkpoint.path)  # before the first request: no quota spent on an unwritable root
        self.files_written, self.lineage_inputs = [], []
        self.log.info("Account tracking for [%s, %s): %s, %d partition(s), reports %s, up to %d requests in flight",
                      window.as_dict()["created_since"], window.as_dict()["created_before"],
                      "campaigns " + ", ".join(ids) if ids is not None else "every SENT or RUNNING campaign",
                      len(partitioning), ", ".join(reports), self.concurrency)
        resumed = run.checkpoint.load(self.resume or self._quota_waits > 0)
        if resumed:
            self.log.info("Resuming: %d units were committed by earlier tries of this window (%s)",
                          len(run.checkpoint.done), plain_uri(run.checkpoint.path))
            self._check_resumed(run)
        run.send_times.load()
        run.coverage.load()
        run.activities.load()
        run.recheck = self.recheck_every
        if self.recheck_every is not None and run.checkpoint.previous and not resumed:
            # This window ran before (a cleared task, resume=False): it is pulled completely, every campaign.
            run.horizon, run.recheck = None, None
            self.log.info("This window was pulled before: every campaign that can have activity in it is pulled "
                          "again (the horizon and the re-check schedule apply to a window's first run)")
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="cc-account")
        try:
            selection = self._carried(run) or self._select(run, pool, reports, ids)
            return self._pull(run, pool, selection, options)
        except BaseException:
            budget.stop.set()  # in-flight units stop at their next request and commit nothing more
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            run.hooks.close()
            run.coverage.save()  # what this try made complete, or confirmed, whatever else happened
            run.activities.save()

    def _check_resumed(self, run: _Run) -> None:
        """Resume only units whose files are all still there (a lifecycle rule, a cleaned folder or a checkpoint
        copied from elsewhere may have removed some): the others are pulled again."""
        done = run.checkpoint.done
        gone = set(missing_files(run.root, (f for entry in done.values() for f in entry.get("files") or [])))
        stale = [key for key, entry in done.items() if any(f["uri"] in gone for f in entry.get("files") or [])]
        if stale:
            run.checkpoint.forget(stale)
            self.log.warning("%d units committed by an earlier try have files missing or changed (e.g. %s): they "
                             "are pulled again", len(stale), sorted(gone)[0])

    def _carried(self, run: _Run) -> Selection | None:
        """The selection an earlier try of this window made, if there is one: a retry does not choose again."""
        if run.checkpoint.selection is None:
            return None
        selection = Selection.from_dict(run.checkpoint.selection, run.checkpoint.done)
        if selection is None:
            self.log.warning("The checkpoint's saved selection is unreadable; choosing the campaigns again")
            return None
        run.selected_now = False
        self.log.info("Using the selection of an earlier try of this window (%d campaigns looked at): no request "
                      "spent on choosing them again", selection.campaigns)
        return selection

    # ---- campaign selection --------------------------------------------------------------------------------
    def _select(self, run: _Run, pool: ThreadPoolExecutor, reports: list[str], ids: list[str] | None) -> Selection:
        dialect = run.hooks.dialect()
        # Where the listing answers for every campaign (v3), the send-time cache is not consulted: it holds the
        # latest sends seen, and such a campaign's latest send may be its resend's.
        answered = dialect.listing_answers
        waiting: dict[str, dict[str, Any]] = {}  # listed answers waiting for the campaign's first send
        summary_keys = {r: dialect.report(r).summary_key for r in reports}
        selector = Selector(window=run.window, horizon=run.horizon, sent_within=self.sent_within, reports=reports,
                            limit=self.limit, lookahead=self.concurrency, done=run.checkpoint.done,
                            send_times=SendTimes(run.send_times.path) if answered else run.send_times,
                            fetch=lambda cid: pool.submit(self._answer, run, cid, waiting.pop(cid, None)),
                            explicit=ids is not None, coverage=run.coverage, recheck_every=run.recheck,
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
            if ids is not None:
                answers = dialect.answers_for(ids)
                selector.take(noted(answers.get(cid) or Listed(cid) for cid in ids), ordered=False)
            else:
                for entries, ordered in dialect.listings():
                    if dialect.counts_events and run.recheck is not None:
                        entries = self._event_totals(run, dialect, entries, end, tuple(summary_keys.values()))
                    selector.take(noted(entries), ordered=ordered)
            if dialect.targets_cost_a_request:
                self._expand(run, pool, selector.selection, marks)
        except BudgetSpent:
            raise ConstantContactBudgetError(
                f"Stopped at the request budget, max_requests={run.budget.limit}, while choosing the campaigns "
                f"({selector.selection.campaigns} looked at): nothing was pulled, and a retry would stop at the same "
                "place. Choosing them costs about one list page per 50 campaigns and one request per campaign that "
                "can have activity; raise max_requests, or give a horizon (sent_within) or campaign_ids.") from None
        finally:
            run.send_times.save()  # what was learnt is kept, even from a run that stops here
        run.checkpoint.save_selection(selector.selection.as_dict())
        return selector.selection

    def _event_totals(self, run: _Run, dialect: Dialect, entries: Iterator[Listed], end: datetime,
                      keys: tuple[str, ...]) -> Iterator[Listed]:
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

    def _answer(self, run: _Run, campaign_id: str, answer: dict[str, Any] | None) -> dict[str, Any]:
        """A campaign's answer for the selection: its own request (v2; v3 when not listed), or on v3 the
        listing's answer with the campaign's first send, read with its activities (cached)."""
        if answer is None:
            return run.hooks.campaign(campaign_id)
        ids, first = run.hooks.dialect().activities(campaign_id)
        with run.lock:
            run.activities.put(campaign_id, Known(answer.get("last_run_date"), ids, first))
        return {**answer, "first_run_date": None if first is None else format_api(first)}

    def _expand(self, run: _Run, pool: ThreadPoolExecutor, selection: Selection, marks: dict[str, str | None]
                ) -> None:
        """v3: each chosen (campaign, report) becomes a unit per reported activity (primary email, resend). A
        campaign's activities cost one request, once: they are cached until its ``last_sent_date`` moves."""
        campaigns = list(dict.fromkeys(u.campaign_id for u in selection.units))
        found: dict[str, tuple[str, ...]] = {}
        asked: dict[str, Future] = {}
        for cid in campaigns:
            cached = run.activities.get(cid, marks.get(cid))
            if cached is not None:
                found[cid] = cached.activities
            else:
                asked[cid] = pool.submit(self._activities, run, cid)
        fresh: dict[str, datetime | None] = {}
        for cid, future in asked.items():
            known = future.result()
            if known is None:
                selection.skip(cid, "deleted", "chosen, then its campaign and activity look-ups answered 404 twice")
                continue
            found[cid], fresh[cid] = known
        contradicted = self._shared(run, selection, found)
        for cid, first in fresh.items():
            if cid not in contradicted:
                run.activities.put(cid, Known(marks.get(cid), found[cid], first))
        if asked:
            self.log.info("Campaign activities: %d campaigns from the cache, %d asked (one request each)",
                          len(found) - len(asked), len(asked))
        units, estimate, starts, done = [], {}, {}, run.checkpoint.done
        for unit in selection.units:
            ids = found.get(unit.campaign_id)
            if ids is not None and not ids:  # unreachable: every checked answer has a primary email
                raise ConstantContactResponseError(f"campaign {unit.campaign_id}: no primary_email or resend activity "
                                                   "to read its reports in")
            for aid in ids or ():
                each = Unit(unit.campaign_id, unit.report, aid)
                if each.key in done:
                    selection.resumed.append(each)
                    continue
                units.append(each)
                estimate[each] = selection.estimate[unit]
                if unit in selection.starts:
                    starts[each] = selection.starts[unit]
        selection.units, selection.estimate, selection.starts = units, estimate, starts

    def _shared(self, run: _Run, selection: Selection, found: dict[str, tuple[str, ...]]) -> set[str]:
        """An activity that two campaigns list is read once, under the campaign the activity itself names (one
        request each such activity); the other campaigns' lists lose it, and none of the contradicted answers
        is cached. A conflict the activity cannot settle (it names neither campaign, or a campaign's only
        primary email is another's) fails the run naming it. Returns the campaigns whose answers were wrong."""
        claims: dict[str, list[str]] = {}
        for cid, ids in found.items():
            for aid in ids:
                claims.setdefault(aid, []).append(cid)
        wrong: set[str] = set()
        for aid, cids in claims.items():
            if len(cids) < 2:
                continue
            for cid in cids:
                run.activities.forget(cid)
            listed = f"campaign activity {aid} is listed by campaigns {' and '.join(cids)}"
            try:
                owner: str | None = run.hooks.dialect().activity_campaign(aid)
            except (ConstantContactNotFoundError, ConstantContactResponseError) as exc:
                owner, why = None, f"its own look-up failed ({exc})"
            else:
                why = f"it names campaign {owner} as its own"
            if owner not in cids or any(found[c][0] == aid for c in cids if c != owner):
                raise ConstantContactResponseError(
                    f"{listed} (an activity belongs to one campaign), and {why}: the API's answers contradict each "
                    "other, so no unit was pulled and none of these answers was cached. Run the task again later; if "
                    "it persists, report it to Constant Contact with these ids")
            for cid in cids:
                if cid != owner:
                    found[cid] = tuple(a for a in found[cid] if a != aid)
                    wrong.add(cid)
                    selection.skip(cid, "activity of another campaign", f"its answer lists activity {aid}, which "
                                   f"campaign {owner} lists too and names as its own: read once, under {owner}")
            self.log.warning("%s; %s: its records are read once, under that campaign", listed, why)
        return wrong

    @staticmethod
    def _activities(run: _Run, campaign_id: str) -> tuple[tuple[str, ...], datetime | None] | None:
        """A campaign's reported activities and first send; ``None`` when it answers 404 twice (deleted since
        it was listed)."""
        for _ in range(2):
            try:
                return run.hooks.dialect().activities(campaign_id, first_send=False)  # sent before the end
            except ConstantContactNotFoundError:
                continue
        return None

    # ---- pulling ---------------------------------------------------------------------------------------------
    def _pull(self, run: _Run, pool: ThreadPoolExecutor, selection: Selection, options: dict[str, Any]
              ) -> dict[str, Any]:
        run.starts = selection.starts
        for unit in selection.units:
            if unit.activity_id is not None:
                run.siblings.setdefault(Unit(unit.campaign_id, unit.report).key, set()).add(unit)
        spent = run.spent_before_pull = run.hooks.requests_sent()
        estimate = spent + sum(selection.estimate[u] for u in selection.units)
        budget = run.budget.limit
        self.log.info(
            "Selection: %d campaigns looked at, %d units to pull, %d committed by an earlier try, %d skipped "
            "(%s). Requests: %d spent on selection + at most %d for tracking = %d%s",
            selection.campaigns, len(selection.units), len(selection.resumed), len(selection.skipped),
            selection.reasons(),
            spent, estimate - spent, estimate,
            "" if budget is None else f" against max_requests={budget}" + (
                "" if estimate <= budget else ": the run may stop at the budget; a retry resumes"))
        started = time.monotonic()
        next_summary = started + SUMMARY_EVERY
        for unit in selection.resumed:  # the earlier tries' files belong to this window's run as well
            for entry in run.checkpoint.files_of(unit):
                run.files.append(entry)
                run.records += entry["records"]
                self.files_written.append(entry)
        remaining = {unit: selection.estimate[unit] for unit in selection.units}
        failures: list[BaseException] = []
        ends: set[str] = set()  # "budget", "stopped": how units other than failed ones ended
        futures: dict[Future, Unit] = {}
        pending: set[Future] = set()
        # Under a budget, the smallest units first, and only as many at once as the budget left covers: a budget
        # too small for everything completes what it can (and a retry goes on) instead of finishing nothing.
        queue = deque(sorted(selection.units, key=remaining.__getitem__) if budget is not None else selection.units)

        def start() -> None:
            while queue and not failures and not ends:
                if budget is not None and pending:
                    reserved = sum(remaining[futures[f]] for f in pending) + remaining[queue[0]]
                    if len(pending) >= self.concurrency or budget - run.budget.used < reserved:
                        return
                unit = queue.popleft()
                future = pool.submit(self._pull_unit, run, unit)
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
                    self._covered(run, selection, unit, counts)
                    committed = True
                    run.done += 1
                    self.log.info("%s: %d records, %d pages, %d files (%d/%d units, %d requests)", unit.label,
                                  counts["records"], counts["pages"], counts["files"], run.done,
                                  len(selection.units), run.hooks.requests_sent())
                elif isinstance(error, BudgetSpent):
                    ends.add("budget")
                elif isinstance(error, (Stopped, AirflowTaskTerminated)):
                    ends.add("stopped")
                elif isinstance(error, ConstantContactNotFoundError) and not run.explicit and not failures:
                    try:
                        if self._deleted(run, selection, unit):
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
                next_summary = time.monotonic() + SUMMARY_EVERY
                self._summary(run, selection, remaining, started)
        if run.budget.stop.is_set() or self.stopper.stopped:
            ends.add("stopped")
        # A real failure wins over the stops it caused or met; then the budget; then a stop on request.
        stop_reason = "error" if failures else "budget" if "budget" in ends else "stopped" if ends else ""
        failure = failures[0] if failures else None
        complete = not stop_reason and not remaining
        if complete:
            self._remove_stale(run, selection)
        run.checkpoint.save(complete=complete, final=True, requests=run.hooks.requests_sent())
        manifest = self._manifest(run, selection, options, estimate)
        if stop_reason:
            self._fail(run, selection, remaining, stop_reason, failure, manifest)
        self.log.info("Done: %d units, %d records in %d files, %d requests (estimate was at most %d). Manifest: %s",
                      run.done, run.records, len(run.files), manifest["requests"], estimate, manifest["manifest_uri"])
        return manifest

    def _pull_unit(self, run: _Run, unit: Unit) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """One (campaign, report), fetched once from the window's start (an old campaign's late activity: from
        where its files end), one file per partition with records."""
        dialect = run.hooks.dialect()
        report, target = dialect.report(unit.report), Target(unit.campaign_id, unit.activity_id)
        window, partitioning = self._unit_window(run, unit)
        stream = dialect.stream(target, report, window, limit=self.limit)
        folder = dialect.layout(report, target)
        entries: list[dict[str, Any]] = []
        with run.lock:
            run.partial[unit] = entries
        for partition, batches in partitioning.split(stream.batches(), report):
            path = run.root / folder / file_name(partition, self.file_format, self.compression)
            entry = self.write_output(batches, path, columns=report.columns, identity=dialect.identity(report, target),
                                      window=partition, before_commit=run.budget.check_stop)
            with run.lock:
                run.files.append(entry)
                run.records += entry["records"]
                entries.append(entry)
        with run.lock:
            self.lineage_inputs.append(api_input(stream.url))
            del run.partial[unit]
        return ({"records": stream.records, "pages": stream.pages, "files": len(entries), "later": stream.later},
                entries)

    def _unit_window(self, run: _Run, unit: Unit) -> tuple[Window, Partitioning]:
        """The window a unit is pulled for, and its partitions: the run's, or from an earlier start (an old
        campaign's late activity) on the same partition grid."""
        start = run.starts.get(unit)
        if start is None or start == run.window.start:
            return run.window, run.partitioning
        grid = run.coverage.grid
        window = Window.of(start, run.window.end, on_unreadable_date=run.window.on_unreadable_date)
        return window, Partitioning.of(window, grid.size, grid.anchor)

    def _covered(self, run: _Run, selection: Selection, unit: Unit, counts: dict[str, int]) -> None:
        """A unit committed: its files hold every record from its start through the window's end."""
        answered = selection.answers.get(unit.campaign_id)
        if answered is None or run.window.end is None:
            return
        key = Unit(unit.campaign_id, unit.report).key
        if counts.get("later"):
            run.unclean.add(key)
        left = run.siblings.get(key)
        if left is not None:
            left.discard(unit)
            if left:
                return  # another activity of this campaign's report is still to commit
        window, _ = self._unit_window(run, unit)
        assert window.start is not None
        run.coverage.pulled(key, window.start, run.window.end, answered[0],
                            answered[1].get(self.api.report(unit.report).summary_key), key not in run.unclean)
        run.coverage.looked_at(unit.campaign_id, run.window.end)

    def _deleted(self, run: _Run, selection: Selection, unit: Unit) -> bool:
        """A unit's page answered 404: whether its campaign was deleted, which only the campaign's own 404 (asked
        twice) or a DELETED status confirms. A deleted campaign's files from this run are removed: they would
        hold only part of the window."""
        status = "DELETED" if unit.campaign_id in run.deleted else ""
        for _ in range(0 if status else 2):
            try:
                status = run.hooks.campaign(unit.campaign_id)["status"].upper()
            except ConstantContactNotFoundError:
                continue
            if status != "DELETED":
                return False
            break
        run.deleted.add(unit.campaign_id)  # its other units need not ask again
        with run.lock:
            partial = run.partial.pop(unit, [])
        for entry in partial:
            self._remove(run, entry["uri"])
            run.files.remove(entry)
            run.records -= entry["records"]
            self.files_written.remove(entry)
        selection.skip(unit.campaign_id, "deleted", "a report page answered 404 and the campaign "
                       + ("is DELETED" if status == "DELETED" else "answers 404") + " (deleted during the run)"
                       + (f"; the {len(partial)} files this run wrote for it were removed" if partial else ""),
                       unit.report)
        return True

    def _remove(self, run: _Run, uri: str) -> None:
        """Delete one data file under the root (already gone is fine)."""
        base = plain_uri(run.root).rstrip("/") + "/"
        if not uri.startswith(base):
            return
        path = run.root / uri.removeprefix(base)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        run.removed.append(uri)

    def _remove_stale(self, run: _Run, selection: Selection) -> None:
        """A rerun of a window removes the files its last run wrote that it no longer writes (a report whose
        records are gone upstream): a lake's glob would read them otherwise. Only units this run looked at
        lose files; a campaign it did not look at (beyond the horizon) keeps them."""
        if not run.checkpoint.previous:
            return
        looked = {unit.key for unit in selection.units} | {
            f"{s['campaign_id']}/{s['report']}" for s in selection.skipped if "report" in s}
        whole = {s["campaign_id"] for s in selection.skipped if "report" not in s and s["reason"] in (
            "deleted", "sent after the window", "not sent")}
        written = {entry["uri"] for entry in run.files}
        for key, entry in run.checkpoint.previous.items():
            files = entry.get("files") or []
            # v3 keys name the activity; its files name the campaign
            cid = next((str(f["campaign_id"]) for f in files if f.get("campaign_id")), key.partition("/")[0])
            if key in looked or f"{cid}/{key.rpartition('/')[2]}" in looked or cid in whole:
                for old in entry.get("files") or []:
                    if old["uri"] not in written:
                        self._remove(run, old["uri"])
        if run.removed:
            self.log.info("Removed %d files an earlier run of this window wrote and this run did not (their records "
                          "are gone), e.g. %s", len(run.removed), run.removed[0])

    # ---- reporting -------------------------------------------------------------------------------------------
    def _summary(self, run: _Run, selection: Selection, remaining: dict[Unit, int], started: float) -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        used = run.hooks.requests_sent()
        rate = (used - run.spent_before_pull) / elapsed
        left = sum(remaining.values())
        eta = f"about {left / rate:,.0f} s left at most" if rate > 0 else "time left unknown"
        self.log.info("Progress: %d/%d units, %d requests, %d records, %.0f records/s, %s", run.done,
                      len(selection.units), used, run.records, run.records / elapsed, eta)

    def _manifest(self, run: _Run, selection: Selection, options: dict[str, Any], estimate: int) -> dict[str, Any]:
        """The full manifest, written under the root; XCom gets it with its lists capped."""
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
                "records": run.records, "files_count": len(run.files),
                "files": sorted(run.files, key=lambda f: f["uri"]),
                "skipped_count": len(selection.skipped), "skipped": selection.skipped,
                "removed_count": len(run.removed), "removed": sorted(run.removed),
                "checkpoint_uri": plain_uri(run.checkpoint.path)}
        write_json(path, full)
        return {**full, "files": full["files"][:MAX_LISTED], "skipped": selection.skipped[:MAX_LISTED],
                "removed": full["removed"][:MAX_LISTED], "manifest_uri": plain_uri(path)}

    def _fail(self, run: _Run, selection: Selection, remaining: dict[Unit, int], reason: str,
              failure: BaseException | None, manifest: dict[str, Any]) -> None:
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
        self.log.error("A unit failed (%s: %s), so the run stopped: %s; %s. %s once the cause is fixed.",
                       type(failure).__name__, failure, done, left, go_on)
        raise failure
