"""Where records go: a capped XCom list, or one file (JSON lines or CSV, optionally gzip) written atomically."""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid
from contextlib import suppress
from typing import IO, TYPE_CHECKING, Any, cast

from airflow_provider_cc.exceptions import ConstantContactInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_provider_cc._compat import ObjectStoragePath

FORMATS = ("jsonl", "csv")
COMPRESSIONS = (None, "gzip")
DEFAULT_MAX_XCOM_RECORDS = 1000



def _line_encoder() -> Callable[[Any], str]:
    """Compact JSON for one record. ``JSONEncoder.encode`` builds a new C encoder on every call; building
    one for all records halves the cost per record, with identical output."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without CPython's accelerator
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    encoder = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda record: "".join(encoder(record, 0))


_encode = _line_encoder()


def check_output_options(file_format: str, compression: str | None, max_xcom_records: Any) -> None:
    """Refuse unknown formats, compressions and caps before any request."""
    if file_format not in FORMATS:
        raise ConstantContactInputError(f"file_format={file_format!r} is not one of {', '.join(FORMATS)}")
    if compression not in COMPRESSIONS:
        raise ConstantContactInputError(f"compression={compression!r} is not None or 'gzip'")
    if isinstance(max_xcom_records, bool) or not isinstance(max_xcom_records, int) or max_xcom_records < 0:
        raise ConstantContactInputError(f"max_xcom_records={max_xcom_records!r} must be a whole number >= 0")


def extension(file_format: str, compression: str | None) -> str:
    """File name ending for a format, e.g. ``.jsonl.gz``."""
    return f".{file_format}" + (".gz" if compression == "gzip" else "")


def collect(batches: Iterable[list[dict]], cap: int, label: str) -> list[dict]:
    """All records as one list for XCom; stops fetching as soon as the cap is passed."""
    records: list[dict] = []
    for batch in batches:
        records.extend(batch)
        if len(records) > cap:
            raise ConstantContactInputError(
                f"{label}: more than max_xcom_records={cap} records in this window; XCom is for small "
                "results. Set destination='s3://bucket/prefix/' (or file://...) to write the records to "
                "storage and get a small manifest in XCom, or raise max_xcom_records."
            )
    return records


def _write_jsonl(stream: IO[bytes], batches: Iterable[list[dict]], columns: tuple[str, ...]) -> int:
    count = 0
    for batch in batches:
        stream.write(("\n".join(map(_encode, batch)) + "\n").encode())
        count += len(batch)
    return count


def _write_csv(stream: IO[bytes], batches: Iterable[list[dict]], columns: tuple[str, ...]) -> int:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)  # type: ignore[arg-type]
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for batch in batches:
        writer.writerows(batch)
        count += len(batch)
    text.flush()
    text.detach()
    return count


WRITERS: dict[str, Callable[[IO[bytes], Iterable[list[dict]], tuple[str, ...]], int]] = {
    "jsonl": _write_jsonl,
    "csv": _write_csv,
}


def write_file(batches: Iterable[list[dict]], path: ObjectStoragePath, *, file_format: str = "jsonl",
               compression: str | None = None, columns: tuple[str, ...] = (),
               before_commit: Callable[[], None] | None = None) -> int:
    """Stream batches into ``path`` atomically and return the record count.

    The records go to a hidden temporary object beside ``path``, which is moved into place only when
    everything was written (and ``before_commit`` did not raise): a failed or killed task never leaves a
    partial file at ``path``. Gzip output carries no timestamp or name, so equal data gives equal bytes.

    :param batches: lists of records, one per page.
    :param path: the final object.
    :param file_format: ``jsonl`` or ``csv``.
    :param compression: ``None`` or ``gzip``.
    :param columns: CSV columns, in order.
    :param before_commit: last check before the move (may raise to abandon the file).
    """
    if path.protocol in ("file", "local", ""):
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with temporary.open("wb") as raw:
            stream = cast("IO[bytes]", raw)
            if compression:
                stream = cast("IO[bytes]", gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
            try:
                count = WRITERS[file_format](stream, batches, columns)
            finally:
                if stream is not raw:
                    stream.close()
        if before_commit is not None:
            before_commit()
        temporary.move(path)
    except BaseException:
        with suppress(Exception):
            temporary.unlink()
        raise
    return count
