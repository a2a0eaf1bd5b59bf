"""What the operators that write files share: their output options, checking them, and writing one file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_cc.destinations import as_path, conn_id_of, is_root, plain_uri
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.reports import V2
from airflow_provider_cc.sinks import DEFAULT_MAX_XCOM_RECORDS, check_output_options, write_records
from airflow_provider_cc.sinks.multipart import UnfinishedUploads
from airflow_provider_cc.stores import LOCAL, require_store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.reports import Column
    from airflow_provider_cc.window import Window


class _FileOutput:
    """Mixin of the operators that write files: the output options, and one file written and recorded.

    Every file written is recorded in ``files_written`` (the entries the XCom manifest, lineage and asset
    events read): ``{"uri", "storage_conn_id", "records", "bytes", **identity, "window"}``. Before an object's
    first write in the task, the unfinished multipart uploads an interrupted earlier try left at its key are
    aborted (``sinks.multipart``: one listing per root per task).
    """

    file_format: str
    compression: str | None
    parquet_compression: str
    csv_formula_guard: bool
    storage_conn_id: str | None
    files_written: list[dict[str, Any]]
    unfinished_uploads: UnfinishedUploads

    def _init_output(self, *, file_format: str, compression: str | None, storage_conn_id: str | None,
                     parquet_compression: str, csv_formula_guard: bool) -> None:
        """Keep the output options (called from the operator's ``__init__``).

        :param file_format: ``jsonl``, ``csv`` or ``parquet``.
        :param compression: ``None`` or ``gzip`` (jsonl and csv).
        :param storage_conn_id: Airflow connection for the object store.
        :param parquet_compression: ``snappy``, ``zstd`` or ``none``.
        :param csv_formula_guard: prefix CSV cells a spreadsheet would run as formulas with ``'``.
        """
        self.file_format = file_format
        self.compression = compression
        self.storage_conn_id = storage_conn_id
        self.parquet_compression = parquet_compression
        self.csv_formula_guard = csv_formula_guard
        self.files_written = []
        self.unfinished_uploads = UnfinishedUploads()

    @property
    def output_options(self) -> dict[str, Any]:
        """The options that shape the bytes of a file (the format's own option only where it applies)."""
        return {"file_format": self.file_format, "compression": self.compression,
                **({"parquet_compression": self.parquet_compression} if self.file_format == "parquet" else {}),
                **({"csv_formula_guard": self.csv_formula_guard} if self.file_format == "csv" else {})}

    def check_output(self, max_xcom_records: int = DEFAULT_MAX_XCOM_RECORDS) -> None:
        """Refuse bad output options before any request."""
        check_output_options(self.file_format, self.compression, max_xcom_records,
                             parquet_compression=self.parquet_compression, csv_formula_guard=self.csv_formula_guard)

    def write_output(self, batches: Iterable[list[dict]], target: ObjectStoragePath, *, columns: tuple[str, ...],
                     identity: dict[str, str], window: Window, before_commit: Callable[[], None] | None = None,
                     types: tuple[Column, ...] = ()) -> dict[str, Any]:
        """Write ``batches`` to ``target`` atomically, record the file in ``files_written`` and return its entry.

        :param batches: record batches.
        :param target: the file's final path.
        :param columns: the report's columns.
        :param identity: ``report`` and ``campaign_id`` (or ``contact_id``...) of the file, and ``api`` on v3 (it
            types the columns).
        :param window: the file's window.
        :param before_commit: called just before the file is committed; raising leaves no file.
        :param types: the typed columns, where they are not the report's (a dimension's).
        """
        if require_store(target).commit != LOCAL:
            self.unfinished_uploads.abort_before_write(target, self._listing_prefix(target))
        written = write_records(batches, target, file_format=self.file_format, compression=self.compression,
                                columns=columns, before_commit=before_commit,
                                parquet_compression=self.parquet_compression,
                                csv_formula_guard=self.csv_formula_guard, api=identity.get("api", V2), types=types)
        entry = {"uri": plain_uri(target), "storage_conn_id": conn_id_of(target), "records": written.records,
                 "bytes": written.bytes, **identity, "window": window.as_dict()}
        self.files_written.append(entry)  # list.append is atomic: threads of one run may share the list
        return entry

    def _listing_prefix(self, target: ObjectStoragePath) -> str:
        """The key prefix listed once per task for unfinished uploads: the root's, else the file's own key."""
        destination = getattr(self, "destination", None)
        try:
            base = as_path(destination, self.storage_conn_id).path if is_root(destination) else target.path
        except ConstantContactInputError:  # e.g. no destination (a test's bare write): the key alone
            base = target.path
        return base.strip("/").partition("/")[2]
