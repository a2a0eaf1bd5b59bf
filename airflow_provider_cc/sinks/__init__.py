"""Where records go: a capped XCom list, or one file (JSON lines, CSV or Parquet) committed atomically.

``options`` (formats, compressions, checks), one module per format (``jsonl``, ``csvfile``, ``parquet``),
``cells`` (odd values made writable), ``commit`` (the atomic commit on file systems and object stores) and
``xcom`` (the capped list).
"""

from __future__ import annotations

from airflow_provider_cc.sinks.commit import UPLOAD_BLOCK_SIZE, Written, write_file, write_records
from airflow_provider_cc.sinks.options import (
    COMPRESSIONS,
    DEFAULT_MAX_XCOM_RECORDS,
    FORMATS,
    check_output_options,
    extension,
)
from airflow_provider_cc.sinks.parquet import PARQUET_COMPRESSIONS
from airflow_provider_cc.sinks.xcom import collect

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_MAX_XCOM_RECORDS",
    "FORMATS",
    "PARQUET_COMPRESSIONS",
    "UPLOAD_BLOCK_SIZE",
    "Written",
    "check_output_options",
    "collect",
    "extension",
    "write_file",
    "write_records",
]
