"""Output options: formats (and their writers), compressions and their checks, and file name endings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.sinks.csvfile import write_csv
from airflow_provider_cc.sinks.jsonl import write_jsonl
from airflow_provider_cc.sinks.parquet import PARQUET_COMPRESSIONS, write_parquet

if TYPE_CHECKING:
    from collections.abc import Callable

# The one writer per format; the formats are its keys.
WRITERS: dict[str, Callable[..., int]] = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}
FORMATS: tuple[str, ...] = tuple(WRITERS)
COMPRESSIONS = (None, "gzip")
DEFAULT_MAX_XCOM_RECORDS = 1000


def check_output_options(file_format: str, compression: str | None, max_xcom_records: Any, *,
                         parquet_compression: str = "snappy", csv_formula_guard: Any = True) -> None:
    """Refuse unknown formats, compressions and caps, and Parquet without pyarrow, before any request."""
    if file_format not in FORMATS:
        raise ConstantContactInputError(f"file_format={file_format!r} is not one of {', '.join(FORMATS)}")
    if compression not in COMPRESSIONS:
        raise ConstantContactInputError(f"compression={compression!r} is not None or 'gzip'")
    if isinstance(max_xcom_records, bool) or not isinstance(max_xcom_records, int) or max_xcom_records < 0:
        raise ConstantContactInputError(f"max_xcom_records={max_xcom_records!r} must be a whole number >= 0")
    if not isinstance(csv_formula_guard, bool):
        raise ConstantContactInputError(f"csv_formula_guard={csv_formula_guard!r} must be True or False")
    if parquet_compression not in PARQUET_COMPRESSIONS:
        raise ConstantContactInputError(
            f"parquet_compression={parquet_compression!r} is not one of {', '.join(PARQUET_COMPRESSIONS)}")
    if file_format == "parquet":
        if compression is not None:
            raise ConstantContactInputError(
                f"compression={compression!r} does not apply to Parquet: a gzipped Parquet file is unreadable "
                "to Parquet readers, which decompress column pages themselves. Leave compression=None and "
                f"choose parquet_compression ({', '.join(PARQUET_COMPRESSIONS)}; default snappy).")
        try:
            import pyarrow.parquet  # noqa: F401
        except ModuleNotFoundError:
            raise ConstantContactInputError(
                "file_format='parquet' needs pyarrow, which is not installed: "
                "pip install 'airflow-provider-constant-contact[parquet]'") from None
        except ImportError as exc:
            # Installed but unusable, e.g. a pyarrow built for numpy 2 beside numpy 1.x.
            raise ConstantContactInputError(
                f"file_format='parquet' needs pyarrow, which is installed but cannot be imported: {exc}") from None


def extension(file_format: str, compression: str | None) -> str:
    """File name ending for a format, e.g. ``.jsonl.gz`` or ``.parquet``."""
    return f".{file_format}" + (".gz" if compression == "gzip" else "")
