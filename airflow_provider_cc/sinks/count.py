"""Counting the records of a file the writers wrote (one reader per format, as there is one writer per format):
what the account run's completeness check compares with the API's counts."""

from __future__ import annotations

import csv
import gzip
import io
from typing import TYPE_CHECKING

from airflow_provider_cc.exceptions import ConstantContactDataError
from airflow_provider_cc.stores import plain_uri

if TYPE_CHECKING:
    from airflow_provider_cc._compat import ObjectStoragePath


def count_records(path: ObjectStoragePath, file_format: str, compression: str | None) -> int:
    """The records in one file: JSON lines, CSV rows below the header (quoted line breaks read as the CSV
    reader reads them), Parquet's row count from its footer.

    :raises ConstantContactDataError: the file cannot be read as its format (truncated, not the provider's).
    """
    try:
        with path.open("rb") as raw:
            if file_format == "parquet":
                import pyarrow.parquet as pq

                return int(pq.ParquetFile(raw).metadata.num_rows)
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if compression == "gzip" else raw
            text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
            if file_format == "csv":
                return max(0, sum(1 for _ in csv.reader(text)) - 1)
            return sum(1 for line in text if line.strip())
    except (OSError, ValueError, EOFError, csv.Error) as exc:  # pyarrow's errors are OSError/ValueError kinds
        raise ConstantContactDataError(f"{plain_uri(path)} cannot be read as {file_format} to count its records "
                                       f"({type(exc).__name__}): remove it and pull its window again") from None
