"""Operators that pull Constant Contact v2 tracking reports for a DAG run's window."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import AirflowSkipException, BaseOperator
from airflow_provider_cc.assets import AssetEventsMixin
from airflow_provider_cc.destinations import campaign_layout, check_writable, contact_layout, resolve_target
from airflow_provider_cc.hooks.constant_contact import (
    MAX_TRACKING_LIMIT,
    TRACKED_STATUSES,
    ConstantContactHook,
    numeric_id,
)
from airflow_provider_cc.lineage import OpenLineageMixin, api_input
from airflow_provider_cc.operators.output import _FileOutput
from airflow_provider_cc.reports import campaign_report, columns_for, contact_report
from airflow_provider_cc.sinks import DEFAULT_MAX_XCOM_RECORDS, collect
from airflow_provider_cc.stopping import Stopper
from airflow_provider_cc.window import Window, resolve

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_cc._compat import Context, ObjectStoragePath
    from airflow_provider_cc.hooks.paging import RecordStream

class _ConstantContactOperator(BaseOperator):
    """Shared wiring: the connection id and a hook built at execute time."""

    def __init__(self, *, constant_contact_conn_id: str = ConstantContactHook.default_conn_name,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.constant_contact_conn_id = constant_contact_conn_id

    @cached_property
    def hook(self) -> ConstantContactHook:
        """The hook (no I/O until used)."""
        return ConstantContactHook(self.constant_contact_conn_id)

    @cached_property
    def stopper(self) -> Stopper:
        """Set by :meth:`on_kill`; the work checks it between pages and before committing."""
        return Stopper(self.task_id)

    def on_kill(self) -> None:
        """Airflow's SIGTERM handler and execution timeout call this: stop at the next page, commit nothing."""
        self.stopper.stop()


class _TrackingOperator(_FileOutput, OpenLineageMixin, AssetEventsMixin, _ConstantContactOperator):
    """Pull one report for a window into XCom (small) or one file in object storage (any size).

    :param created_since: inclusive start; default: the run's data interval start (templated).
    :param created_before: exclusive end; default: the run's data interval end (templated).
    :param destination: object to write, e.g. ``s3://bucket/cc/out.jsonl``; ending in ``/`` it is a root
        under which the default layout applies. ``None`` returns the records to XCom (templated).
    :param file_format: ``jsonl`` (default), ``csv`` or ``parquet`` (needs pyarrow).
    :param compression: ``None`` or ``gzip`` (jsonl and csv).
    :param parquet_compression: ``snappy`` (default), ``zstd`` or ``none``.
    :param csv_formula_guard: prefix CSV cells starting with ``= + - @``, tab or CR with ``'`` so that
        spreadsheets show them as text (default); turn it off for machine loaders.
    :param storage_conn_id: Airflow connection for the object store (``aws_default``...).
    :param max_xcom_records: without ``destination``, fail above this many records.
    :param limit: page size, 1-500.
    :param on_unreadable_date: ``fail`` (default): a record whose date cannot be read fails the task with
        the count and an example; ``skip``: such records are left out and counted in the log.
    :param constant_contact_conn_id: the ``constant_contact`` connection.
    """

    template_fields: Sequence[str] = ("created_since", "created_before", "destination", "storage_conn_id",
                                      "constant_contact_conn_id")
    ui_color = "#1856ed"

    def __init__(self, *, created_since: Any = None, created_before: Any = None, destination: Any = None,
                 file_format: str = "jsonl", compression: str | None = None, storage_conn_id: str | None = None,
                 max_xcom_records: int = DEFAULT_MAX_XCOM_RECORDS, limit: int = MAX_TRACKING_LIMIT,
                 parquet_compression: str = "snappy", csv_formula_guard: bool = True,
                 on_unreadable_date: str = "fail", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_output(file_format=file_format, compression=compression, storage_conn_id=storage_conn_id,
                          parquet_compression=parquet_compression, csv_formula_guard=csv_formula_guard)
        self.on_unreadable_date = on_unreadable_date
        self.created_since = created_since
        self.created_before = created_before
        self.destination = destination
        self.max_xcom_records = max_xcom_records
        self.limit = limit
        # What execute did, for lineage and asset events (lineage.py, assets.py), with files_written.
        self.lineage_inputs: list[dict[str, str]] = []

    # What subclasses say about their report.
    def _stream(self, window: Window) -> RecordStream:
        raise NotImplementedError

    def _identity(self) -> dict[str, str]:
        raise NotImplementedError

    def _layout(self) -> str:
        raise NotImplementedError

    def _columns(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _check_tracked(self) -> None:
        """Called when the API returned no record at all, before anything is committed."""

    def _target(self, window: Window) -> ObjectStoragePath:
        return resolve_target(self.destination, self.storage_conn_id, self._layout(), window,
                              file_format=self.file_format, compression=self.compression)

    def execute(self, context: Context) -> Any:
        self.files_written, self.lineage_inputs = [], []
        self.check_output(self.max_xcom_records)
        window = resolve(context, self.created_since, self.created_before)
        stream = self._stream(window)
        self.lineage_inputs.append(api_input(stream.url))
        self.log.info("Pulling %s for [%s, %s)", stream.label, window.since_param, window.as_dict()["created_before"])

        def check_tracked() -> None:
            self.stopper.check()
            if stream.fetched == 0:
                self._check_tracked()

        stream.stopper = self.stopper  # checked before every page request
        batches = stream.batches()
        try:
            if self.destination is None:  # "" is a template that rendered to nothing: refused by the target
                records = collect(batches, self.max_xcom_records, stream.label)
                check_tracked()
                self.log.info("%s: %d records in %d pages to XCom", stream.label, len(records), stream.pages)
                return records
            target = self._target(window)
            check_writable(target)  # before the first request: no quota spent on an unwritable destination
            entry = self.write_output(batches, target, columns=self._columns(), identity=self._identity(),
                                      window=window, before_commit=check_tracked)
            count = entry["records"]
        finally:
            self.hook.close()
        self.log.info("%s: %d records in %d pages written to %s", stream.label, count, stream.pages, entry["uri"])
        return {"uri": entry["uri"], "storage_conn_id": entry["storage_conn_id"], "records": count,
                "bytes": entry["bytes"], "pages": stream.pages, **self._identity(), **window.as_dict(),
                "format": self.file_format, "compression": self.compression}


class ConstantContactCampaignTrackingOperator(_TrackingOperator):
    """Pull one campaign tracking report (sends, opens, clicks, forwards, unsubscribes, bounces).

    A campaign that is not SENT has no tracking data: when the API returns nothing and the campaign turns
    out to be DRAFT or SCHEDULED the task is skipped (a DELETED or unknown one fails with 404).

    :param campaign_id: numeric campaign id (templated; map over it with ``.expand``).
    :param report: report name.
    :param link_id: with ``clicks``, only the clicks of this link (templated).
    """

    template_fields: Sequence[str] = ("campaign_id", "report", "link_id", *_TrackingOperator.template_fields)

    def __init__(self, *, campaign_id: int | str, report: str, link_id: int | str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.report = report
        self.link_id = link_id

    def _stream(self, window: Window) -> RecordStream:
        return self.hook.iter_campaign_tracking(self.campaign_id, self.report, link_id=self.link_id,
                                                created_since=window.start, created_before=window.end,
                                                limit=self.limit, on_unreadable_date=self.on_unreadable_date)

    def _identity(self) -> dict[str, str]:
        ident = {"report": self.report, "campaign_id": numeric_id(self.campaign_id, "campaign_id")}
        return ident | ({"link_id": numeric_id(self.link_id, "link_id")} if self.link_id is not None else {})

    def _layout(self) -> str:
        link = None if self.link_id is None else numeric_id(self.link_id, "link_id")
        return campaign_layout(self.report, numeric_id(self.campaign_id, "campaign_id"), link)

    def _columns(self) -> tuple[str, ...]:
        return columns_for(campaign_report(self.report))

    def _check_tracked(self) -> None:
        status = self.hook.get_campaign(self.campaign_id).get("status")
        if status not in TRACKED_STATUSES:
            raise AirflowSkipException(
                f"campaign {self.campaign_id} is {status}: tracking data exists only once a campaign is SENT. "
                "Wait for it with ConstantContactCampaignSentSensor, or list SENT campaigns only."
            )


class ConstantContactContactTrackingOperator(_TrackingOperator):
    """Pull one contact's activity: ``all`` types (default) or one report.

    :param contact_id: numeric contact id (templated).
    :param report: ``all`` or one activity report name.
    """

    template_fields: Sequence[str] = ("contact_id", "report", *_TrackingOperator.template_fields)

    def __init__(self, *, contact_id: int | str, report: str = "all", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.report = report

    def _stream(self, window: Window) -> RecordStream:
        return self.hook.iter_contact_tracking(self.contact_id, self.report, created_since=window.start,
                                               created_before=window.end, limit=self.limit,
                                               on_unreadable_date=self.on_unreadable_date)

    def _identity(self) -> dict[str, str]:
        return {"report": self.report, "contact_id": numeric_id(self.contact_id, "contact_id")}

    def _layout(self) -> str:
        return contact_layout(self.report, numeric_id(self.contact_id, "contact_id"))

    def _columns(self) -> tuple[str, ...]:
        return columns_for(contact_report(self.report))


class ConstantContactCampaignSummaryOperator(_ConstantContactOperator):
    """Return a campaign's tracking summary (sends, opens, clicks, forwards, unsubscribes, bounces) to XCom.

    :param campaign_id: numeric campaign id (templated).
    :param update_summary: ask for current figures instead of the last scheduled update.
    """

    template_fields: Sequence[str] = ("campaign_id", "constant_contact_conn_id")

    def __init__(self, *, campaign_id: int | str, update_summary: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.update_summary = update_summary

    def execute(self, context: Context) -> dict[str, Any]:
        summary = self.hook.get_campaign_summary(self.campaign_id, update_summary=self.update_summary)
        return {**summary, "campaign_id": numeric_id(self.campaign_id, "campaign_id")}


class ConstantContactContactSummaryOperator(_ConstantContactOperator):
    """Return a contact's tracking summary, or its per-campaign summary, to XCom.

    :param contact_id: numeric contact id (templated).
    :param by_campaign: return the per-campaign list (summaryByCampaign; it has no unsubscribes).
    """

    template_fields: Sequence[str] = ("contact_id", "constant_contact_conn_id")

    def __init__(self, *, contact_id: int | str, by_campaign: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.by_campaign = by_campaign

    def execute(self, context: Context) -> Any:
        if self.by_campaign:
            return self.hook.get_contact_summary_by_campaign(self.contact_id)
        return self.hook.get_contact_summary(self.contact_id)


class ConstantContactListCampaignsOperator(_ConstantContactOperator):
    """Return the ids of the campaigns in a status, for ``.expand(campaign_id=...)``.

    :param status: ``SENT`` (default), ``ALL``, ``DRAFT``, ``RUNNING``, ``SCHEDULED`` or ``DELETED``.
    :param modified_since: only campaigns modified on or after this time (templated).
    """

    template_fields: Sequence[str] = ("status", "modified_since", "constant_contact_conn_id")

    def __init__(self, *, status: str = "SENT", modified_since: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status = status
        self.modified_since = modified_since

    def execute(self, context: Context) -> list[str]:
        stream = self.hook.iter_campaigns(status=self.status, modified_since=self.modified_since)
        ids = sorted({str(c["id"]) for c in stream})  # canonical ids (the hook normalises them), once each
        self.log.info("%d %s campaigns", len(ids), self.status)
        return ids
