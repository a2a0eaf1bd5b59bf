"""The atomic commit: a file appears at its final path complete, or not at all.

* **Local disk**: the data goes to a hidden ``.{name}.{uuid}.tmp`` file beside the target, which
  ``os.replace`` puts in place once complete and synced to disk (``fsync``). ``os.replace`` cannot put a
  file into an existing directory, so nothing ever lands in a directory under a hidden name.
* **Object stores** (S3, GCS, Azure): one object write is already atomic (a PUT, or a multipart upload that
  exists only once completed), so the data goes straight to the final key, in bounded blocks
  (:data:`UPLOAD_BLOCK_SIZE`). On any failure the upload is aborted: no object, no extra version in a
  versioned bucket; S3's multipart upload is aborted and GCS's resumable session cancelled (Azure keeps the
  staged blocks uncommitted until the key's next commit, or a week). A process killed outright aborts nothing:
  see ``sinks.multipart``.

Other protocols are refused (:func:`~airflow_provider_cc.stores.require_store`).
"""

from __future__ import annotations

import gzip
import os
import uuid
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_cc.reports import V2
from airflow_provider_cc.sinks.options import WRITERS
from airflow_provider_cc.stores import LOCAL, directory_error, plain_uri, require_store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.reports import Column

# Upload buffer for object stores: S3's smallest multipart part is 5 MiB. s3fs defaults to 50 MiB, which
# held up to ~100 MB per task; 8 MiB keeps a task's upload memory near 16 MB and allows objects up to
# 10,000 parts = 78 GiB.
UPLOAD_BLOCK_SIZE = 8 * 2**20


@dataclass(frozen=True)
class Written:
    """What a commit wrote.

    :param records: the records in the file.
    :param bytes: the file's size as stored (after compression).
    """

    records: int
    bytes: int


def write_records(batches: Iterable[list[dict]], path: ObjectStoragePath, *, file_format: str = "jsonl",
                  compression: str | None = None, columns: tuple[str, ...] = (),
                  before_commit: Callable[[], None] | None = None, parquet_compression: str = "snappy",
                  csv_formula_guard: bool = True, api: str = V2, types: tuple[Column, ...] = ()) -> Written:
    """Stream batches into ``path`` atomically; return the records and bytes written.

    Gzip output carries no timestamp or name and Parquet no time, so equal data gives equal bytes.

    :param batches: lists of records, one per page.
    :param path: the final object.
    :param file_format: ``jsonl``, ``csv`` or ``parquet``.
    :param compression: ``None`` or ``gzip`` (not for Parquet).
    :param columns: the columns of CSV and Parquet, in order.
    :param before_commit: last check before the file appears (may raise to abandon it).
    :param parquet_compression: ``snappy``, ``zstd`` or ``none``.
    :param csv_formula_guard: prefix CSV cells a spreadsheet would run as formulas with ``'``.
    :param api: the API version of the report the columns are of (their types, in Parquet).
    :param types: the typed columns, where they are not a report's (a dimension's; Parquet types them so).
    """
    encode = partial(_encode, batches, file_format=file_format, compression=compression, columns=columns,
                     parquet_compression=parquet_compression, csv_formula_guard=csv_formula_guard, api=api,
                     types=types)
    if require_store(path).commit == LOCAL:
        return _replace_local(encode, path, before_commit)
    return _upload(encode, path, before_commit)


def write_file(batches: Iterable[list[dict]], path: ObjectStoragePath, *, file_format: str = "jsonl",
               compression: str | None = None, columns: tuple[str, ...] = (),
               before_commit: Callable[[], None] | None = None, parquet_compression: str = "snappy",
               csv_formula_guard: bool = True, api: str = V2) -> int:
    """:func:`write_records`, returning the record count only."""
    return write_records(batches, path, file_format=file_format, compression=compression, columns=columns,
                         before_commit=before_commit, parquet_compression=parquet_compression,
                         csv_formula_guard=csv_formula_guard, api=api).records


def _encode(batches: Iterable[list[dict]], raw: IO[bytes], *, file_format: str, compression: str | None,
            **options: Any) -> int:
    """Write the records into ``raw`` in the format; finish the gzip stream only on success."""
    if not compression:
        return WRITERS[file_format](raw, batches, **options)
    stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
    try:
        count = WRITERS[file_format](stream, batches, **options)
    except BaseException:
        with suppress(Exception):  # the caller discards ``raw``; just release the compressor
            stream.close()
        raise
    stream.close()
    return count


def _replace_local(encode: Callable[[IO[bytes]], int], path: ObjectStoragePath,
                   before_commit: Callable[[], None] | None) -> Written:
    final = os.path.abspath(path.path)
    if os.path.isdir(final):
        raise directory_error(plain_uri(path))
    folder, name = os.path.split(final)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as raw:
            count = encode(raw)
            size = raw.tell()
            # On disk before the rename: else a crash soon after could leave an empty or partial file at
            # the final path (file systems may persist the rename before the data).
            raw.flush()
            os.fsync(raw.fileno())
        if before_commit is not None:
            before_commit()
        os.replace(temporary, final)  # IsADirectoryError if a directory appeared there meanwhile
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    return Written(count, size)


def _upload(encode: Callable[[IO[bytes]], int], path: ObjectStoragePath,
            before_commit: Callable[[], None] | None) -> Written:
    raw = path.fs.open(path.path, "wb", block_size=UPLOAD_BLOCK_SIZE)
    try:
        count = encode(raw)
        size = raw.tell()
        if before_commit is not None:
            before_commit()
        raw.close()  # commits: one PUT, or completes the multipart upload
    except BaseException:
        _abort(raw)
        raise
    return Written(count, size)


def _abort(raw: Any) -> None:
    """Throw an unfinished upload away: abort its multipart upload, never let a later close commit it."""
    with suppress(Exception):
        raw.discard()  # s3fs: AbortMultipartUpload; gcsfs: cancels the resumable upload
    with suppress(Exception):
        raw.closed = True  # fsspec commits on close(), also from __del__

