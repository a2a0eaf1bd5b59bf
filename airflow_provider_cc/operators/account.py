"""The account operator: a whole account's campaign tracking for a window, in one task, inside the key's quota.

The run itself is :class:`~airflow_provider_cc.account.AccountEngine`'s; the operator wires Airflow to it: its
arguments and templating, the context's window, the storage root, the task's log and stop signal, XCom, lineage
and asset events, and the deferral while the daily quota resets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import AIRFLOW_V_3, PARTITIONED_ASSET_EVENTS
from airflow_provider_cc.account import AccountEngine, Plan, Wiring, arguments
from airflow_provider_cc.assets import AssetEventsMixin
from airflow_provider_cc.exceptions import ConstantContactInputError, ConstantContactQuotaExceededError
from airflow_provider_cc.hooks.constant_contact import MAX_TRACKING_LIMIT, check_limit
from airflow_provider_cc.hooks.transport_v3 import quota_reset
from airflow_provider_cc.lineage import OpenLineageMixin
from airflow_provider_cc.operators.output import _FileOutput
from airflow_provider_cc.operators.tracking import _ConstantContactOperator
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES
from airflow_provider_cc.triggers.quota import ConstantContactQuotaResetTrigger
from airflow_provider_cc.units import Partitioning
from airflow_provider_cc.window import resolve

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_cc._compat import Context

# 4 requests in flight keep a 4 requests/s key busy while one answer takes up to about a second.
DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_QUOTA_WAITS = 3  # waits for the daily quota's reset in one try


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
    :param dimensions: once the window is complete, also write what the events refer to, one file per
        dimension named by the window (``{root}dimension/{api}/{name}/{start}_{end}.{ext}``): ``campaigns``,
        ``links`` and, on v3, ``campaign_activities`` (docs/analytics.md). v2: no extra request (the campaign
        answers the selection reads); v3: the campaign list's pages, two requests per activity once (kept
        under ``{root}_state/``) and one per activity whose clicks the run wrote; counted in the estimate.
    :param on_incomplete: what the completeness check does when the files of a (campaign, report) whose whole
        history they hold have another number of records than Constant Contact counts: ``warn`` (default: one
        log line each; the manifest, XCom and lineage say it too) or ``fail`` the task (a retry pulls again).
        Costs no request on v2 (sends, bounces and unsubscribes compared with the campaign's summary), one per
        10 campaign activities on v3 (docs/analytics.md).
    :param asset_partitions: Airflow 3.3+: the asset events of the task's outlets carry the partitions it wrote
        (each partition's start, ``%Y-%m-%dT%H:%M:%S`` UTC: one event per partition), for DAGs scheduled on
        partitions of the asset; such events queue only partition-aware DAGs (default ``False``). Refused on
        an Airflow without partitioned asset events.
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
                 max_quota_waits: int = DEFAULT_MAX_QUOTA_WAITS, dimensions: bool = False, on_incomplete: str = "warn",
                 asset_partitions: bool = False, **kwargs: Any) -> None:
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
        self.dimensions = dimensions
        self.on_incomplete = on_incomplete
        self.asset_partitions = asset_partitions
        self.lineage_quality: list[dict[str, Any]] = []
        self._quota_waits = 0  # waits for the quota's reset so far in this try
        self.lineage_inputs: list[dict[str, str]] = []

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
        """Check the arguments, resolve the window and run the engine on it."""
        self.check_output()
        check_limit(self.limit, MAX_TRACKING_LIMIT)
        if self.asset_partitions and not PARTITIONED_ASSET_EVENTS:
            raise ConstantContactInputError("asset_partitions=True needs Airflow 3.3 or later (partitioned asset "
                                            "events); leave it False on this Airflow")
        arguments.check(concurrency=self.concurrency, sent_within=self.sent_within, recheck_every=self.recheck_every,
                        wait_for_quota_reset=self.wait_for_quota_reset, max_quota_waits=self.max_quota_waits,
                        dimensions=self.dimensions, on_incomplete=self.on_incomplete)
        reports = arguments.report_names(self.api, self.reports)
        ids = arguments.campaign_ids(self.api, self.campaign_ids)
        max_requests = arguments.budget_limit(self.max_requests)
        window = resolve(context, self.created_since, self.created_before, on_unreadable_date=self.on_unreadable_date)
        partitioning = Partitioning.of(window, self.partition, self.partition_anchor)
        horizon = arguments.horizon(window, self.sent_within)
        root = arguments.root(self.destination, self.storage_conn_id)
        plan = Plan(conn_id=self.constant_contact_conn_id, settings=self.hook.settings, reports=reports, ids=ids,
                    window=window, partitioning=partitioning, partition=self.partition, horizon=horizon,
                    sent_within=self.sent_within, recheck_every=self.recheck_every, root=root,
                    concurrency=self.concurrency, limit=self.limit, max_requests=max_requests,
                    # after a wait the try goes on: it resumes its own units even with resume=False
                    resume=self.resume or self._quota_waits > 0, output_options=self.output_options,
                    dimensions=self.dimensions, on_incomplete=self.on_incomplete)
        self.files_written, self.lineage_inputs, self.lineage_quality = [], [], []
        return AccountEngine(plan, Wiring(self.log, self, self.stopper, self.lineage_inputs,
                                          self.lineage_quality)).run()
