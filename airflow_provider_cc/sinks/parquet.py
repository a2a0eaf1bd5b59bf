"""Parquet: typed columns from the report's schema, one row group per batch of pages, reproducible bytes.

Needs pyarrow (the ``[parquet]`` extra); it is imported only when a Parquet file is written.
"""

from __future__ import annotations

import math
from contextlib import suppress
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactDataError
from airflow_provider_cc.reports import V2, Column, column_of
from airflow_provider_cc.sinks.cells import cell_text
from airflow_provider_cc.window import record_instant

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import pyarrow as pa

PARQUET_COMPRESSIONS = ("snappy", "zstd", "none")
# Rows per row group. Pages are converted to Arrow as they arrive (compact, typed) and written once this
# many rows are pending, so memory is bounded by one row group, not by the report. Measured at 1 M records
# (bench --only formats): 65,536 rows grew a task by 28 MB, 16,384 by 20 MB, with the same file size within
# 3 % and the same DuckDB scan time (docs/benchmarks.md).
ROW_GROUP_ROWS = 16_384


def arrow_schema(columns: tuple[str, ...], api: str = V2, types: tuple[Column, ...] = ()) -> pa.Schema:
    """The Arrow schema of ``columns`` of an ``api`` report (or of the typed columns ``types``, a dimension's):
    timestamps as ``timestamp[ms, tz=UTC]``, counts as ``int64``, ids and codes as strings."""
    import pyarrow as pa

    typed = types or tuple(column_of(name, api) for name in columns)
    return pa.schema([pa.field(c.name, c.kind.arrow(pa)) for c in typed])


def write_parquet(stream: IO[bytes], batches: Iterable[list[dict]], columns: tuple[str, ...], *,
                  parquet_compression: str = "snappy", row_group_rows: int = ROW_GROUP_ROWS, api: str = V2,
                  types: tuple[Column, ...] = (), **_: Any) -> int:
    """Write every batch into one Parquet file; return the record count. The columns are typed as the ``api``
    version's catalogue types them (v3's ``created_time`` is a timestamp).

    The file carries no time or host in its metadata (only the schema and pyarrow's ``created_by``), so the
    same records give the same bytes with the same pyarrow version.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(columns, api, types)
    converters = _converters(schema)
    codec = None if parquet_compression == "none" else parquet_compression
    writer = pq.ParquetWriter(stream, schema, compression=codec)
    pending: list[pa.RecordBatch] = []
    rows = count = 0
    try:
        for batch in batches:
            if not batch:
                continue
            pending.append(_record_batch(batch, schema, converters))
            rows += len(batch)
            count += len(batch)
            if rows >= row_group_rows:
                writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=rows)
                pending, rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=rows)
        writer.close()
    except BaseException:
        with suppress(Exception):  # the caller throws the stream away; just release the writer
            writer.close()
        raise
    return count


def _record_batch(batch: list[dict], schema: pa.Schema, converters: list[Callable[[Any], Any]]) -> pa.RecordBatch:
    """One page as typed Arrow columns: vectorised when the values are what the API sends, else exact."""
    import pyarrow as pa

    try:
        arrays = []
        for field in schema:
            values = pa.array([record.get(field.name) for record in batch], pa.string())
            arrays.append(values if field.type == pa.string() else values.cast(field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
    except (pa.ArrowException, ValueError, TypeError):  # odd types, lone surrogates, other date forms
        return pa.RecordBatch.from_arrays(
            [pa.array([convert(record.get(field.name)) for record in batch], field.type)
             for field, convert in zip(schema, converters, strict=True)],
            schema=schema,
        )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _converters(schema: pa.Schema) -> list[Callable[[Any], Any]]:
    """The exact conversion of each column's values (the slow path), chosen once per file from its type."""
    import pyarrow as pa

    def timestamp(name: str) -> Callable[[Any], Any]:
        def convert(value: Any) -> Any:
            if _missing(value):
                return None
            moment = record_instant(value)
            if moment is None:
                raise ConstantContactDataError(
                    f"{name}={str(value)[:60]!r} is not a date the provider can read; it cannot be written as a "
                    "Parquet timestamp")
            return moment

        return convert

    def integer(value: Any) -> Any:
        return None if _missing(value) else int(value)

    def text(value: Any) -> Any:
        return None if _missing(value) else cell_text(value, formula_guard=False)

    return [timestamp(field.name) if pa.types.is_timestamp(field.type)
            else integer if pa.types.is_integer(field.type) else text for field in schema]
