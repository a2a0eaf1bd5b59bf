"""Where files go: the one home of the output layout, file names and destination resolution.

Every writer of the provider (the per-campaign and per-contact operators, the account operator) names its
files here, so a daily run, a rerun and a one-pass history load of the same interval name the same objects.

The root rule: a destination is a **root** (files go under it, in the layout below) when it ends in ``/``
(checked on the text the user gave, also for an ``ObjectStoragePath``, whose ``str()`` drops the slash) or
names only a bucket. Otherwise it names one file. An ``ObjectStoragePath`` built from a plain local path
(``ObjectStoragePath("/data/cc/")``) is refused: universal-pathlib 0.3 (Airflow 3.1+) keeps no trace of its
trailing slash, so the same DAG would write a root on Airflow 2.11 and a file on 3.3. A file destination
that is an existing directory is refused before any request: nothing is ever written into a directory
under a hidden name.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.exceptions import ConstantContactInputError, ConstantContactStorageUnavailableError
from airflow_provider_cc.sinks import extension
from airflow_provider_cc.stores import (
    LOCAL,
    LOCAL_PROTOCOLS,
    OBJECT_STORE_PROTOCOLS,
    directory_error,
    plain_uri,
    require_store,
)

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_cc.window import Window

log = logging.getLogger(__name__)


def stamp(value: datetime) -> str:
    """Compact UTC time for object keys: ``20240101T000000Z`` (milliseconds only when present)."""
    ms = value.microsecond // 1000
    return f"{value:%Y%m%dT%H%M%S}" + (f".{ms:03d}" if ms else "") + "Z"


def file_name(window: Window, file_format: str, compression: str | None) -> str:
    """``{start}_{end}.{ext}`` of a window's file."""
    assert window.start is not None and window.end is not None
    return f"{stamp(window.start)}_{stamp(window.end)}{extension(file_format, compression)}"


def snapshot_name(end: datetime, file_format: str, compression: str | None) -> str:
    """``{end}.{ext}``: a snapshot report's file, named by the end of the run that took it."""
    return f"{stamp(end)}{extension(file_format, compression)}"


def campaign_layout(report: str, campaign_id: str, link_id: str | None = None, activity_id: str | None = None) -> str:
    """Folder of a campaign report's files below a root; ids must already be normalised. On v3 a campaign's
    files are per campaign activity (its primary email, its resend), one folder level deeper."""
    activity = f"/campaign_activity_id={activity_id}" if activity_id is not None else ""
    link = f"/link_id={link_id}" if link_id is not None else ""
    return f"campaign/{report}/campaign_id={campaign_id}{activity}{link}"


def contact_layout(report: str, contact_id: str) -> str:
    """Folder of a contact report's files below a root; ids must already be normalised."""
    return f"contact/{report}/contact_id={contact_id}"


# ---- destinations -----------------------------------------------------------------------------------------
def _given_text(path: ObjectStoragePath) -> str | None:
    """The last piece of text an ``ObjectStoragePath`` was built from, trailing slash included.

    ``str()`` normalises the slash away; universal-pathlib keeps the raw arguments (``_raw_urlpaths`` in
    0.3, on Airflow 3.1+; ``_raw_paths`` in 0.2). That text is reliable only for a path built from a URL
    (a protocol): 0.3 splits a plain local path into pathlib parts, losing the slash, so :func:`as_path`
    refuses those.
    """
    for holder in (getattr(path, "__wrapped__", None), path):
        for name in ("_raw_urlpaths", "_raw_paths"):
            raw = getattr(holder, name, None)
            if raw:
                return str(raw[-1])
    return None


def _names_only_a_container(path: ObjectStoragePath) -> bool:
    text = path.path.strip("/")
    if (path.protocol or "") in LOCAL_PROTOCOLS:
        return text == ""
    return "/" not in text


def as_path(destination: Any, storage_conn_id: str | None = None) -> ObjectStoragePath:
    """The destination as an ``ObjectStoragePath``; anything else is refused clearly.

    :param destination: a URL (``s3://``, ``file://``...), an absolute local path, or an
        ``ObjectStoragePath`` built from a URL (which keeps its own connection).
    :param storage_conn_id: the Airflow connection of the object store, for a URL or a path; empty text
        (a template that rendered to nothing, e.g. an unset Variable) means none.
    """
    storage_conn_id = _conn_id_or_none(storage_conn_id)
    if isinstance(destination, ObjectStoragePath):
        if not destination.protocol:
            local = os.path.abspath(destination.path)
            root = local.rstrip("/") + "/"
            raise ConstantContactInputError(
                f"destination ObjectStoragePath({local!r}) was built from a plain path, whose trailing '/' "
                "(root or file?) universal-pathlib does not keep on every Airflow version. Build it from a URL, "
                f"e.g. ObjectStoragePath('file://{root}') for a root or ObjectStoragePath('file://{local}') "
                f"for a file, or pass the string '{root}' or '{local}'.")
        return destination
    text = "" if destination is None else str(destination).strip()
    if text in ("", "None", "none", "null"):
        raise ConstantContactInputError(
            f"destination={destination!r} is empty (a template that rendered to nothing?); give a root such as "
            "'s3://bucket/cc/' or 'file:///data/cc/', or leave destination=None for XCom")
    if text.startswith("/"):
        text = "file://" + text
    elif "://" not in text:
        raise ConstantContactInputError(
            f"destination={destination!r} is a relative path, which would depend on the worker's current "
            "directory; give an absolute path ('/data/cc/') or a URL ('file:///data/cc/', 's3://bucket/cc/')")
    try:
        return ObjectStoragePath(text, conn_id=storage_conn_id)
    except ValueError:  # universal-pathlib: "Unsupported filesystem: 'x'", a protocol fsspec does not know
        protocol = text.partition("://")[0]
        raise ConstantContactInputError(
            f"destination={destination!r}: {protocol!r} is not a storage protocol known here. The provider "
            "writes to local disk (file:// or an absolute path) and object stores "
            f"({', '.join(sorted(OBJECT_STORE_PROTOCOLS))}): s3:// needs airflow-provider-constant-contact[s3], "
            "gs:// needs airflow-provider-constant-contact[gcs], abfs:// needs "
            "apache-airflow-providers-microsoft-azure.") from None


def _conn_id_or_none(conn_id: str | None) -> str | None:
    text = "" if conn_id is None else str(conn_id).strip()
    return None if text in ("", "None", "none", "null") else text


def is_root(destination: Any) -> bool:
    """Whether files go *under* ``destination`` (it ends in ``/``, or names only a bucket).

    :param destination: as for :func:`as_path` (refused the same way).
    """
    path = as_path(destination)
    if isinstance(destination, ObjectStoragePath):
        given = _given_text(destination)
        ends_in_slash = given is not None and given.endswith("/")
    else:
        ends_in_slash = str(destination).strip().endswith("/")
    return ends_in_slash or _names_only_a_container(path)


def resolve_target(destination: Any, storage_conn_id: str | None, layout: str, window: Window, *,
                   file_format: str, compression: str | None) -> ObjectStoragePath:
    """The object to write: ``destination`` itself, or, when it is a root, the layout's file under it.

    :param destination: a root or a file, as for :func:`as_path`.
    :param storage_conn_id: the Airflow connection of the object store.
    :param layout: the folder below a root (:func:`campaign_layout`, :func:`contact_layout`).
    :param window: the window, which names the file.
    :param file_format: ``jsonl``, ``csv`` or ``parquet`` (the file name's ending).
    :param compression: ``None`` or ``gzip`` (the file name's ending).
    """
    path = as_path(destination, storage_conn_id)
    if is_root(destination):
        path = path / layout / file_name(window, file_format, compression)
    return path


def conn_id_of(path: ObjectStoragePath) -> str | None:
    """The Airflow connection an ``ObjectStoragePath`` uses (Airflow 3: ``conn_id``; 2: a storage option)."""
    conn_id = getattr(path, "conn_id", None)
    if conn_id is None:
        conn_id = (getattr(path, "storage_options", None) or {}).get("conn_id")
    return conn_id


def check_writable(target: ObjectStoragePath) -> None:
    """Fail clearly, before the first API request, when ``target`` cannot be written.

    Local disk: the target is not a directory and its folder can be created and written. Object stores: the
    bucket exists and answers (one HEAD request; when the credentials may not read bucket metadata, a
    warning, and the write itself decides). Other protocols are refused (no atomic commit there).
    """
    uri = plain_uri(target)
    store = require_store(target)
    if store.commit == LOCAL:
        _check_local(uri, os.path.abspath(target.path))
        return
    try:
        target.fs  # noqa: B018  (Airflow finds the file system of the protocol and connection here)
    except (ValueError, ImportError):  # "No filesystem registered for scheme gs", or its package is missing
        raise ConstantContactInputError(
            f"destination {uri}: this Airflow has no file system for {target.protocol!r}; "
            f"{store.note or f'install {store.install} on every worker'}. Nothing was requested from the API."
        ) from None
    _check_bucket(uri, target)


def _check_local(uri: str, final: str) -> None:
    if os.path.isdir(final):
        raise directory_error(uri)
    folder = os.path.dirname(final)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ConstantContactInputError(
            f"destination {uri}: cannot create the folder {folder} ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConstantContactInputError(f"destination {uri}: the folder {folder} is not writable by this worker")


def _check_bucket(uri: str, target: ObjectStoragePath) -> None:
    bucket = target.path.strip("/").partition("/")[0]
    conn = conn_id_of(target)
    try:
        target.fs.info(bucket)
    except FileNotFoundError:
        raise ConstantContactInputError(
            f"destination {uri}: the bucket {bucket!r} does not exist (or is not visible through connection "
            f"{conn!r}); create it or fix the destination. Nothing was requested from the API.") from None
    except PermissionError as exc:
        failure = _refused_credential(exc) or _refused_credential_on_listing(target, bucket)
        if failure:
            raise _credential_error(uri, conn, failure) from None
        log.warning("destination %s: connection %r may not read the bucket's metadata; the upload will tell "
                    "whether it may write there", uri, conn)
    except Exception as exc:  # only the type: the text may carry an endpoint URL with credentials in it
        failure = _refused_credential(exc)
        if failure:
            raise _credential_error(uri, conn, failure) from None
        if _unreachable(exc):
            raise ConstantContactStorageUnavailableError(
                f"destination {uri}: the object store could not be reached through connection {conn!r} "
                f"({type(exc).__name__}); a transient failure, so the task's retries will try again. Nothing "
                "was requested from the API.") from None
        raise ConstantContactInputError(
            f"destination {uri}: the object store did not answer through connection {conn!r} "
            f"({type(exc).__name__}). Nothing was requested from the API.") from None


# ---- what an object store's failure means ----------------------------------------------------------------
# Error codes of refused credentials (S3 and S3-compatible stores, Azure): retrying cannot help.
REFUSED_CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
    "InvalidClientTokenId", "AuthorizationHeaderMalformed", "AuthenticationFailed", "InvalidAuthenticationInfo",
})
# Exception types (by name, so that no store's package must be importable) of a store out of reach.
_UNREACHABLE_TYPES = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ServiceRequestError", "ServiceResponseError", "ClientConnectorError", "ServerDisconnectedError",
    "ServerTimeoutError", "TransportError", "TimeoutError",
})


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling (file systems translate errors)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 10 and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _status_and_code(exc: BaseException) -> tuple[int | None, str | None]:
    """The HTTP status and error code an object store's client attached to ``exc`` (botocore, gcsfs, azure)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status, response.get("Error", {}).get("Code")
    status = getattr(exc, "status_code", None)  # azure.core's HttpResponseError
    if isinstance(status, int):
        return status, getattr(exc, "error_code", None)
    code = getattr(exc, "code", None)  # gcsfs's HttpError
    return (code, None) if isinstance(code, int) else (None, None)


def _refused_credential(exc: BaseException) -> str | None:
    """The store's word that the credentials themselves are refused (an error code, or a 401), else ``None``."""
    for item in _chain(exc):
        status, code = _status_and_code(item)
        if code in REFUSED_CREDENTIAL_CODES:
            return str(code)
        if status == 401:
            return "401 Unauthorized"
    return None


def _unreachable(exc: BaseException) -> bool:
    """A refused or dropped connection, a timeout, or a 5xx or 429 answer: the store may answer later."""
    for item in _chain(exc):
        if isinstance(item, (ConnectionError, TimeoutError)):
            return True
        if {cls.__name__ for cls in type(item).__mro__} & _UNREACHABLE_TYPES:
            return True
        status, _ = _status_and_code(item)
        if status is not None and (status >= 500 or status == 429):
            return True
    return False


def _refused_credential_on_listing(target: ObjectStoragePath, bucket: str) -> str | None:
    """S3 answers a HEAD with a bare 403, whether the key is unknown or only lacks a permission: one listing
    of at most one key (whose answer carries the error code) tells them apart. Other stores say it on HEAD."""
    call_s3 = getattr(target.fs, "call_s3", None)
    if call_s3 is None:
        return None
    try:
        call_s3("list_objects_v2", Bucket=bucket, MaxKeys=1)
    except Exception as exc:
        return _refused_credential(exc)
    return None


def _credential_error(uri: str, conn: str | None, failure: str) -> ConstantContactInputError:
    return ConstantContactInputError(
        f"destination {uri}: the object store refused the credentials of connection {conn!r} ({failure}); fix "
        "the connection. Nothing was requested from the API.")
