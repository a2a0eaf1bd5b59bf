"""Operators that pull Constant Contact tracking reports for a DAG run's window, on the v2 or the v3 API (the
connection's type decides; the operators never ask)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from itertools import chain
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import AirflowSkipException, BaseOperator
from airflow_provider_cc.assets import AssetEventsMixin
from airflow_provider_cc.destinations import (
    as_path,
    check_writable,
    contact_layout,
    file_name,
    is_root,
    snapshot_name,
)
from airflow_provider_cc.dialects import dialect_for
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.hooks.constant_contact import MAX_TRACKING_LIMIT, ConstantContactHook
from airflow_provider_cc.lineage import OpenLineageMixin, api_input
from airflow_provider_cc.operators.output import _FileOutput
from airflow_provider_cc.sinks import DEFAULT_MAX_XCOM_RECORDS, collect
from airflow_provider_cc.stopping import Stopper
from airflow_provider_cc.window import Window, resolve

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_cc._compat import Context, ObjectStoragePath
    from airflow_provider_cc.dialects import Dialect
    from airflow_provider_cc.hooks.paging import RecordStream


@dataclass
class _Part:
    """One stream of a pull and where it goes: a v3 campaign has one per activity, anything else one."""

    stream: RecordStream
    layout: str
    identity: dict[str, str]


class _ConstantContactOperator(BaseOperator):
    """Shared wiring: the connection id, and the API (v2 or v3, by the connection's type) built at execute time."""

    def __init__(self, *, constant_contact_conn_id: str = ConstantContactHook.default_conn_name,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.constant_contact_conn_id = constant_contact_conn_id

    @cached_property
    def api(self) -> Dialect:
        """The connection's API version, in the operators' terms (reads the connection; no request)."""
        return dialect_for(self.constant_contact_conn_id)

    @property
    def hook(self) -> Any:
        """The v2 or v3 hook (no request until used)."""
        return self.api.hook

    @cached_property
    def stopper(self) -> Stopper:
        """Set by :meth:`on_kill`; the work checks it between pages and before committing."""
        return Stopper(self.task_id)

    def on_kill(self) -> None:
        """Airflow's SIGTERM handler and execution timeout call this: stop at the next page, commit nothing."""
        self.stopper.stop()


class _TrackingOperator(_FileOutput, OpenLineageMixin, AssetEventsMixin, _ConstantContactOperator):
    """Pull one report for a window into XCom (small) or files in object storage (any size).

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
    :param constant_contact_conn_id: the ``constant_contact`` (v2) or ``constant_contact_v3`` connection.
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

    # What subclasses say about their report (every argument checked in _check, before any request).
    def _check(self) -> None:
        raise NotImplementedError

    def _parts(self, window: Window) -> list[_Part]:
        raise NotImplementedError

    def _identity(self) -> dict[str, str]:
        raise NotImplementedError

    def _version(self) -> dict[str, str]:
        """What a file entry says of its API version: ``api`` on v3 (it types the file's columns and schema)."""
        return self.api.file_fields()

    def _layout(self) -> str:
        raise NotImplementedError

    def _columns(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _snapshot(self) -> bool:
        """Whether the report is a snapshot: pulled whole, its file named by the run's end."""
        return False

    def _check_tracked(self) -> None:
        """Called when the API returned no record at all, before anything is committed."""

    def _path(self, layout: str, window: Window) -> ObjectStoragePath:
        path = as_path(self.destination, self.storage_conn_id)
        if not is_root(self.destination):
            return path
        assert window.end is not None
        name = (snapshot_name(window.end, self.file_format, self.compression) if self._snapshot()
                else file_name(window, self.file_format, self.compression))
        return path / layout / name

    def execute(self, context: Context) -> Any:
        self.files_written, self.lineage_inputs = [], []
        self.check_output(self.max_xcom_records)
        window = resolve(context, self.created_since, self.created_before, on_unreadable_date=self.on_unreadable_date)
        self._check()
        if self.destination is not None:  # "" is a template that rendered to nothing: refused by the path
            check_writable(self._path(self._layout(), window))  # before the first request
        try:
            parts = self._parts(window)
            for part in parts:
                part.stream.stopper = self.stopper  # checked before every page request
                self.lineage_inputs.append(api_input(part.stream.url))
                self.log.info("Pulling %s for [%s, %s)", part.stream.label, window.since_param,
                              window.as_dict()["created_before"])

            def check_tracked() -> None:
                self.stopper.check()
                if sum(p.stream.fetched for p in parts) == 0:
                    self._check_tracked()

            if self.destination is None:
                label = parts[0].stream.label if len(parts) == 1 else f"{len(parts)} streams"
                records = collect(chain.from_iterable(p.stream.batches() for p in parts), self.max_xcom_records,
                                  label)
                check_tracked()
                self.log.info("%s: %d records in %d pages to XCom", label, len(records),
                              sum(p.stream.pages for p in parts))
                return records
            if is_root(self.destination):
                entries = [self.write_output(p.stream.batches(), self._path(p.layout, window),
                                             columns=self._columns(), identity=p.identity, window=window,
                                             before_commit=check_tracked) for p in parts]
            else:  # one file: every stream in it
                entries = [self.write_output(chain.from_iterable(p.stream.batches() for p in parts),
                                             self._path(self._layout(), window), columns=self._columns(),
                                             identity=self._identity(), window=window, before_commit=check_tracked)]
        finally:
            self.hook.close()
        pages = sum(p.stream.pages for p in parts)
        for entry in entries:
            self.log.info("%s records written to %s (%d pages in all)", entry["records"], entry["uri"], pages)
        first = entries[0]
        result = {"uri": first["uri"], "storage_conn_id": first["storage_conn_id"],
                  "records": sum(e["records"] for e in entries), "bytes": sum(e["bytes"] for e in entries),
                  "pages": pages, **self._identity(), **window.as_dict(), "format": self.file_format,
                  "compression": self.compression}
        return result | ({"files": entries} if len(entries) > 1 else {})


class ConstantContactCampaignTrackingOperator(_TrackingOperator):
    """Pull one campaign tracking report: sends, opens, clicks, forwards, unsubscribes, bounces; on v3 also
    ``unique_opens`` and ``didnotopens`` (snapshots: the whole report, one file per run named by its end).

    A campaign that has not been sent has no tracking data: when the API returns nothing and the campaign turns
    out to be DRAFT or SCHEDULED the task is skipped (a DELETED or unknown one fails with 404).

    On v3 a campaign's reports are read per campaign activity: a campaign id pulls its primary email and its
    resend (one request more, to find them; a file each under a root, ``.../campaign_activity_id={id}/``), an
    activity id that one (two requests more). Windows are cut on the client: the report is read newest first
    up to a page in order that closes with two records older than the window's start (``lookback`` reads further).

    :param campaign_id: campaign id (v2: numeric; v3: a campaign or campaign activity UUID; templated; map over
        it with ``.expand``).
    :param report: report name.
    :param link_id: with ``clicks``, only the clicks of this link (v3: its ``url_id``; templated).
    :param bounce_codes: v3 only: with ``bounces``, only these codes (``B D F S V X Z``).
    :param lookback: v3 only: read this much further back than the window's start (a ``timedelta``), a margin
        should the API not list a report strictly newest first; no record outside the window is kept.
    """

    template_fields: Sequence[str] = ("campaign_id", "report", "link_id", *_TrackingOperator.template_fields)

    def __init__(self, *, campaign_id: int | str, report: str, link_id: int | str | None = None,
                 bounce_codes: Any = None, lookback: timedelta | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.report = report
        self.link_id = link_id
        self.bounce_codes = bounce_codes
        self.lookback = lookback

    def _check(self) -> None:
        spec = self.api.report(self.report)
        self.api.campaign_id(self.campaign_id)
        if self.link_id is not None:
            self.api.link_id(self.link_id)
            if spec.name != "clicks":
                raise ConstantContactInputError(f"link_id only applies to the clicks report, not {self.report!r}")
        if self.bounce_codes is not None and "bounce_codes" not in self.api.tracking_filters:
            raise ConstantContactInputError(f"bounce_codes is a v3 filter; the {self.api.api} API has none (filter "
                                            "the bounce_code column instead)")
        if self.lookback is not None and (not isinstance(self.lookback, timedelta) or self.lookback < timedelta(0)):
            raise ConstantContactInputError(f"lookback={self.lookback!r} must be a datetime.timedelta of 0 or more")

    def _link(self) -> str | None:
        return None if self.link_id is None else self.api.link_id(self.link_id)

    def _parts(self, window: Window) -> list[_Part]:
        spec = self.api.report(self.report)
        filters = {} if self.bounce_codes is None else {"bounce_codes": self.bounce_codes}
        return [_Part(self.api.stream(target, spec, window, link_id=self._link(), limit=self.limit,
                                      lookback=self.lookback or timedelta(0), **filters),
                      self.api.layout(spec, target, self._link()), self.api.identity(spec, target, self._link()))
                for target in self.api.targets(self.api.campaign_id(self.campaign_id))]

    def _identity(self) -> dict[str, str]:
        ident = {"report": self.report, "campaign_id": self.api.campaign_id(self.campaign_id), **self._version()}
        return ident | ({"link_id": link} if (link := self._link()) is not None else {})

    def _layout(self) -> str:
        from airflow_provider_cc.dialects import Target

        return self.api.layout(self.api.report(self.report), Target(self.api.campaign_id(self.campaign_id)),
                               self._link())

    def _columns(self) -> tuple[str, ...]:
        return self.api.report(self.report).columns

    def _snapshot(self) -> bool:
        return self.api.report(self.report).snapshot

    def _check_tracked(self) -> None:
        tracked, status = self.api.tracked(self.api.campaign_id(self.campaign_id))
        if not tracked:
            raise AirflowSkipException(
                f"campaign {self.campaign_id} is {status}: tracking data exists only once a campaign is SENT (v3: "
                "Done). Wait for it with ConstantContactCampaignSentSensor, or list SENT campaigns only."
            )


class ConstantContactContactTrackingOperator(_TrackingOperator):
    """Pull one contact's activity: ``all`` types (default) or one report. On v3 it is the contact's activity
    details (which campaign activity, what, when: no addresses or links), read newest first up to the window's
    start.

    :param contact_id: contact id (v2: numeric; v3: a UUID; templated).
    :param report: ``all`` or one activity report name.
    """

    template_fields: Sequence[str] = ("contact_id", "report", *_TrackingOperator.template_fields)

    def __init__(self, *, contact_id: int | str, report: str = "all", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.report = report

    def _check(self) -> None:
        self.api.contact_report(self.report)
        self.api.contact_id(self.contact_id)

    def _parts(self, window: Window) -> list[_Part]:
        stream = self.api.contact_stream(self.api.contact_id(self.contact_id), self.api.contact_report(self.report),
                                         window, limit=self.limit)
        return [_Part(stream, self._layout(), self._identity())]

    def _identity(self) -> dict[str, str]:
        return {"report": self.report, "contact_id": self.api.contact_id(self.contact_id), **self._version()}

    def _layout(self) -> str:
        return contact_layout(self.report, self.api.contact_id(self.contact_id))

    def _columns(self) -> tuple[str, ...]:
        return self.api.contact_columns(self.api.contact_report(self.report))


class ConstantContactCampaignSummaryOperator(_ConstantContactOperator):
    """Return a campaign's counters to XCom: v2's tracking summary (sends, opens, clicks, forwards,
    unsubscribes, bounces), v3's campaign stats (``stats`` and ``percents``).

    :param campaign_id: campaign id (v2 numeric, v3 UUID; templated).
    :param update_summary: v2: ask for current figures instead of the last scheduled update.
    """

    template_fields: Sequence[str] = ("campaign_id", "constant_contact_conn_id")

    def __init__(self, *, campaign_id: int | str, update_summary: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.update_summary = update_summary

    def execute(self, context: Context) -> dict[str, Any]:
        return self.api.campaign_summary(self.api.campaign_id(self.campaign_id), update_summary=self.update_summary)


class ConstantContactContactSummaryOperator(_ConstantContactOperator):
    """Return a contact's tracking summary, or its per-campaign summary, to XCom. On v3 the counters are
    per campaign activity over a window (the run's data interval, or ``created_since``/``created_before``).

    :param contact_id: contact id (v2 numeric, v3 UUID; templated).
    :param by_campaign: return the per-campaign list (v2: summaryByCampaign, which has no unsubscribes).
    :param created_since: v3: the window's start (templated; default the data interval's).
    :param created_before: v3: the window's end (templated; default the data interval's).
    """

    template_fields: Sequence[str] = ("contact_id", "created_since", "created_before", "constant_contact_conn_id")

    def __init__(self, *, contact_id: int | str, by_campaign: bool = False, created_since: Any = None,
                 created_before: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.by_campaign = by_campaign
        self.created_since = created_since
        self.created_before = created_before

    def execute(self, context: Context) -> Any:
        contact = self.api.contact_id(self.contact_id)
        window = resolve(context, self.created_since, self.created_before) if self.api.windowed_contact_summary \
            else None
        return self.api.contact_summary(contact, by_campaign=self.by_campaign, window=window)


class ConstantContactListCampaignsOperator(_ConstantContactOperator):
    """Return the ids of the campaigns in a status, for ``.expand(campaign_id=...)``.

    :param status: ``SENT`` (default), ``ALL``, ``DRAFT``, ``RUNNING``, ``SCHEDULED`` or ``DELETED`` (on v3:
        Done, all but Removed, Draft, Executing, Scheduled, Removed).
    :param modified_since: only campaigns modified on or after this time (templated; v3: updated after).
    """

    template_fields: Sequence[str] = ("status", "modified_since", "constant_contact_conn_id")

    def __init__(self, *, status: str = "SENT", modified_since: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status = status
        self.modified_since = modified_since

    def execute(self, context: Context) -> list[str]:
        ids = self.api.list_campaigns(self.status, self.modified_since)  # canonical ids, each once
        self.log.info("%d %s campaigns", len(ids), self.status)
        return ids
