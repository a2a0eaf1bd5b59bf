"""Unfinished multipart uploads that an earlier, killed try left behind, aborted when their key is written again.

A failed upload is aborted (``sinks.commit``), but a worker killed outright (SIGKILL, the OOM killer, a lost
node) cannot abort anything: S3 keeps the parts it received, billed as storage, until someone aborts the
upload. The retry writes the same keys, so it aborts those keys' unfinished uploads before writing them.

Cost: one paginated ``ListMultipartUploads`` per bucket and prefix (the task's root) per task, made before the
task's first upload there, so the listing can hold no upload of this task; then one
``AbortMultipartUpload`` per stale upload of a key the task writes. Keys the task does not write are left
alone: the bucket's lifecycle rule (*AbortIncompleteMultipartUpload*) is what cleans the rest.

Only S3 (s3fs) has listable multipart uploads. GCS's resumable upload sessions cannot be listed and expire
after a week; Azure's uncommitted blocks are discarded when the key is committed again, or after a week.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_cc._compat import ObjectStoragePath

log = logging.getLogger(__name__)


class UnfinishedUploads:
    """Per task: the unfinished multipart uploads under each prefix, listed once, aborted key by key.

    Thread-safe: the account operator writes from several threads.
    """

    def __init__(self) -> None:
        self._listed: dict[tuple[int, str, str], dict[str, list[str]]] = {}
        self._lock = threading.Lock()
        self.listings = 0  # ListMultipartUploads requests made (pages), for the logs and the tests
        self.aborted = 0

    def abort_before_write(self, target: ObjectStoragePath, prefix: str) -> int:
        """Abort the unfinished uploads of ``target``'s key found when ``prefix`` was first listed; return how many.

        :param target: the object about to be written.
        :param prefix: the key prefix to list once for the whole task (its root), within ``target``'s bucket.
        """
        fs = target.fs
        call_s3 = getattr(fs, "call_s3", None)
        if call_s3 is None:  # not S3: nothing listable is left behind (see the module's docstring)
            return 0
        bucket, _, key = target.path.strip("/").partition("/")
        with self._lock:
            slot = (id(fs), bucket, prefix)
            if slot not in self._listed:
                self._listed[slot] = self._list(call_s3, target.protocol, bucket, prefix)
            upload_ids = self._listed[slot].pop(key, [])
        for upload_id in upload_ids:
            try:
                call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
            except FileNotFoundError:  # NoSuchUpload: completed or aborted meanwhile
                pass
            except Exception as exc:  # e.g. no s3:AbortMultipartUpload: the lifecycle rule must do it
                log.warning("could not abort an unfinished multipart upload of %s://%s/%s (%s); the bucket's "
                            "lifecycle rule (AbortIncompleteMultipartUpload) must remove it", target.protocol,
                            bucket, key, type(exc).__name__)
        if upload_ids:
            self.aborted += len(upload_ids)
            log.info("aborted %d unfinished multipart upload(s) of %s://%s/%s left by an earlier, interrupted try",
                     len(upload_ids), target.protocol, bucket, key)
        return len(upload_ids)

    def _list(self, call_s3: Any, protocol: str, bucket: str, prefix: str) -> dict[str, list[str]]:
        """Unfinished uploads by key; none (and a warning) when the credentials may not list them: cleaning up
        after an earlier try must never fail this one."""
        found: dict[str, list[str]] = {}
        markers: dict[str, str] = {}
        while True:
            try:
                page = call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix, **markers)
            except Exception as exc:  # only the type: the text may carry an endpoint URL with credentials
                log.warning("could not list the unfinished multipart uploads under %s://%s/%s (%s): an interrupted "
                            "earlier try's uploads stay until the bucket's lifecycle rule "
                            "(AbortIncompleteMultipartUpload) removes them", protocol, bucket, prefix,
                            type(exc).__name__)
                return found
            self.listings += 1
            for upload in page.get("Uploads", []):
                found.setdefault(upload["Key"], []).append(upload["UploadId"])
            if not page.get("IsTruncated"):
                return found
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
