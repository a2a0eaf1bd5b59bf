"""Writes to a real S3-compatible server (moto) through ObjectStoragePath and an Airflow aws connection."""

from __future__ import annotations

import gzip
import io
import json
import logging
import random
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pendulum
import pyarrow.parquet as pq
import pytest

from airflow_provider_cc._compat import AirflowException, AirflowFailException, ObjectStoragePath
from airflow_provider_cc.destinations import check_writable
from airflow_provider_cc.exceptions import ConstantContactInputError, ConstantContactStorageUnavailableError
from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
from airflow_provider_cc.sinks import UPLOAD_BLOCK_SIZE, write_file
from tests.conftest import as_output
from tests.storage import servers
from tests.storage.conftest import AWS_CONN_ID, REGION, aws_connection

if TYPE_CHECKING:
    from collections.abc import Iterator

CONTEXT = {"data_interval_start": pendulum.datetime(2024, 1, 1), "data_interval_end": pendulum.datetime(2024, 1, 3)}
NAME = "20240101T000000Z_20240103T000000Z"


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def versions(s3: Any, bucket: str) -> list[tuple[str, str]]:
    answer = s3.list_object_versions(Bucket=bucket)
    return ([("version", v["Key"]) for v in answer.get("Versions", [])]
            + [("delete marker", m["Key"]) for m in answer.get("DeleteMarkers", [])])


def uploads(s3: Any, bucket: str) -> list[dict]:
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def big_pages(pages: int, fail_after: int | None = None, on_page: Any = None, noisy: bool = False):
    """Pages of 500 records of about 9 KB each (~4.5 MB a page); raise after ``fail_after`` pages.

    ``noisy``: random hex instead of repeated letters, so gzip and Parquet cannot shrink a page to nothing.
    """
    for page in range(pages):
        if fail_after is not None and page == fail_after:
            raise RuntimeError("the API went away mid-report")
        if on_page is not None:
            on_page(page)
        noise = random.Random(page)
        yield [{"activity_type": "EMAIL_SEND", "campaign_id": "1", "contact_id": str(page * 500 + i),
                "email_address": f"{noise.randbytes(4500).hex() if noisy else 'x' * 9000}@example.com",
                "send_date": "2024-01-01T00:00:00.000Z"}
               for i in range(500)]


def target(bucket: str, key: str) -> ObjectStoragePath:
    return ObjectStoragePath(f"s3://{bucket}/{key}", conn_id=AWS_CONN_ID)


@pytest.mark.parametrize(("file_format", "compression"), [("jsonl", None), ("csv", "gzip"), ("parquet", None)])
def test_the_operator_writes_exactly_one_object_with_the_right_bytes(emulator, s3, bucket, tmp_path, file_format,
                                                                       compression):
    cid = emulator.campaign_ids()[0]
    options = {"campaign_id": cid, "report": "sends", "file_format": file_format, "compression": compression,
               "limit": 50}
    manifest = ConstantContactCampaignTrackingOperator(
        task_id="s3", destination=f"s3://{bucket}/cc/", storage_conn_id=AWS_CONN_ID, **options).execute(CONTEXT)
    local = ConstantContactCampaignTrackingOperator(task_id="disk", destination=f"{tmp_path}/",
                                                    **options).execute(CONTEXT)
    key = f"cc/campaign/sends/campaign_id={cid}/{NAME}.{file_format}" + (".gz" if compression else "")
    assert keys(s3, bucket) == [key], "one object, no temporary one"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == (tmp_path / key.removeprefix("cc/")).read_bytes(), "the same bytes as on local disk"
    assert manifest["uri"] == f"s3://{bucket}/{key}", "a plain URI, without the connection id"
    assert manifest["storage_conn_id"] == AWS_CONN_ID and manifest["bytes"] == len(body)
    assert manifest["records"] == local["records"] > 0
    if file_format == "jsonl":
        expected = as_output(emulator.records(cid, "sends", created_since="2024-01-01T00:00:00Z",
                                              created_before="2024-01-03T00:00:00Z"))
        assert [json.loads(line) for line in body.splitlines()] == expected
    if file_format == "parquet":
        assert pq.read_table(io.BytesIO(body)).num_rows == manifest["records"]
    if compression:
        assert gzip.decompress(body)


def test_a_versioned_bucket_gets_exactly_one_version_per_write(emulator, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    op = ConstantContactCampaignTrackingOperator(task_id="v", campaign_id=emulator.campaign_ids()[0], report="opens",
                                                 destination=f"s3://{bucket}/", storage_conn_id=AWS_CONN_ID)
    op.execute(CONTEXT)
    op.execute(CONTEXT)
    key = f"campaign/opens/campaign_id={emulator.campaign_ids()[0]}/{NAME}.jsonl"
    assert versions(s3, bucket) == [("version", key), ("version", key)], "no copies, no temporary keys"


def test_a_failure_mid_upload_leaves_no_object_and_no_multipart_upload(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    seen: list[list[dict]] = []

    def watch(page: int) -> None:
        if page == 3:  # ~13 MB written so far: a multipart upload is under way, with bounded parts
            seen.append(uploads(s3, bucket))
            upload = seen[0][0]
            parts = s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])["Parts"]
            seen.append(parts)

    with pytest.raises(RuntimeError, match="went away"):
        write_file(big_pages(10, fail_after=4, on_page=watch), target(bucket, "cc/out.jsonl"), file_format="jsonl")
    assert len(seen[0]) == 1 and seen[0][0]["Key"] == "cc/out.jsonl", "the upload went straight to the final key"
    assert seen[1] and all(p["Size"] < UPLOAD_BLOCK_SIZE + 5 * 2**20 for p in seen[1]), "parts are bounded"
    assert uploads(s3, bucket) == [], "the multipart upload was aborted"
    assert versions(s3, bucket) == [], "no object, no version, no delete marker"


@pytest.mark.parametrize(("file_format", "compression"), [("jsonl", None), ("csv", "gzip"), ("parquet", None)])
@pytest.mark.parametrize("pages", [1, 4])
def test_a_refusal_before_commit_leaves_nothing(s3, bucket, pages, file_format, compression):
    """One page is one PUT never sent; four are a multipart upload under way, which is aborted."""
    in_flight: list[list[dict]] = []

    def refuse() -> None:
        in_flight.append(uploads(s3, bucket))
        raise RuntimeError("campaign turned out to be a draft")

    with pytest.raises(RuntimeError, match="draft"):
        write_file(big_pages(pages, noisy=True), target(bucket, "cc/out"), file_format=file_format,
                   compression=compression, columns=("contact_id", "email_address", "send_date"),
                   before_commit=refuse)
    assert len(in_flight[0]) == (1 if pages == 4 else 0), "the refusal came with a multipart upload under way"
    assert keys(s3, bucket) == [] and uploads(s3, bucket) == [], "no object, no multipart upload left"


def test_a_large_object_is_uploaded_in_bounded_parts(s3, bucket):
    count = write_file(big_pages(6), target(bucket, "big.jsonl"), file_format="jsonl")
    head = s3.head_object(Bucket=bucket, Key="big.jsonl")
    assert count == 3000 and head["ContentLength"] > 3 * UPLOAD_BLOCK_SIZE
    assert head["ETag"].strip('"').endswith(f"-{head['ContentLength'] // UPLOAD_BLOCK_SIZE}"), (
        "a multipart upload of 8 MiB parts (the ETag ends with the part count)")


def test_a_missing_bucket_fails_before_any_api_request(emulator, s3):
    op = ConstantContactCampaignTrackingOperator(task_id="m", campaign_id=emulator.campaign_ids()[0], report="opens",
                                                 destination="s3://no-such-bucket-here/cc/",
                                                 storage_conn_id=AWS_CONN_ID)
    with pytest.raises(ConstantContactInputError, match="bucket 'no-such-bucket-here' does not exist"):
        op.execute(CONTEXT)
    assert emulator.requests == [], "no quota spent"


def test_an_object_storage_path_root_on_s3(emulator, s3, bucket):
    root = ObjectStoragePath(f"s3://{bucket}/cc/", conn_id=AWS_CONN_ID)
    manifest = ConstantContactCampaignTrackingOperator(task_id="r", campaign_id=emulator.campaign_ids()[0],
                                                       report="opens", destination=root).execute(CONTEXT)
    key = f"cc/campaign/opens/campaign_id={emulator.campaign_ids()[0]}/{NAME}.jsonl"
    assert keys(s3, bucket) == [key] and manifest["storage_conn_id"] == AWS_CONN_ID


class _Answer(BaseHTTPRequestHandler):
    """Answers every request with the server's fixed status and no body."""

    server: Any

    def log_message(self, *args: Any) -> None:
        return

    def _answer(self) -> None:
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = do_PUT = do_POST = _answer


@pytest.fixture
def answering(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 endpoint on 127.0.0.1 answering every request with one status, behind a connection of its own
    (``server.conn_id``: Airflow caches a connection's file system, so each test needs a new id)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.status = 200
    server.conn_id = f"aws_answering_{uuid.uuid4().hex[:8]}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": f"http://127.0.0.1:{server.server_address[1]}", "region_name": REGION,
                      "config_kwargs": {"retries": {"max_attempts": 1}}}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{server.conn_id.upper()}", json.dumps(conn))
    yield server
    server.shutdown()
    server.server_close()


def test_credentials_that_may_not_read_bucket_metadata_only_warn(answering, caplog):
    answering.status = 403
    with caplog.at_level(logging.WARNING, logger="airflow_provider_cc.destinations"):
        check_writable(ObjectStoragePath("s3://locked/cc/out.jsonl", conn_id=answering.conn_id))
    assert "may not read the bucket's metadata; the upload will tell" in caplog.text


def test_an_object_store_failing_otherwise_is_a_clear_error_naming_only_the_exception_type(answering):
    """The exception's text is left out: it may carry an endpoint URL with credentials in it."""
    answering.status = 400
    with pytest.raises(ConstantContactInputError, match=rf"did not answer through connection '{answering.conn_id}' "
                                                        r"\(OSError\)\. Nothing was requested") as failure:
        check_writable(ObjectStoragePath("s3://odd/cc/out.jsonl", conn_id=answering.conn_id))
    assert "Bad Request" not in str(failure.value) and "Errno" not in str(failure.value)


def test_an_object_store_that_is_down_is_a_transient_error_and_airflow_retries_it(emulator, monkeypatch):
    """A real moto server answers the check, then is stopped: the next task's check finds the port closed."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, aws_access_key_id="t", aws_secret_access_key="t",
                 region_name=REGION).create_bucket(Bucket="lake")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_GOING_DOWN", aws_connection(url))
    check_writable(ObjectStoragePath("s3://lake/cc/out.jsonl", conn_id="aws_going_down"))  # up: no error
    server.stop()
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DOWN", aws_connection(url))  # a new client: no pooled connection
    op = ConstantContactCampaignTrackingOperator(task_id="down", campaign_id=emulator.campaign_ids()[0],
                                                 report="opens", destination="s3://lake/cc/",
                                                 storage_conn_id="aws_down")
    with pytest.raises(ConstantContactStorageUnavailableError, match=r"could not be reached through connection "
                                                                     r"'aws_down' \(\w+\); a transient") as failure:
        op.execute(CONTEXT)
    # Airflow fails a task for good only on AirflowFailException (and its own skip/sensor exceptions); any
    # other exception goes to up_for_retry while tries remain.
    assert isinstance(failure.value, AirflowException) and not isinstance(failure.value, AirflowFailException)
    assert url not in str(failure.value) and emulator.requests == [], "no URL echoed, no quota spent"


def test_a_store_answering_5xx_is_a_transient_error(answering):
    answering.status = 503
    with pytest.raises(ConstantContactStorageUnavailableError) as failure:
        check_writable(ObjectStoragePath("s3://busy/cc/out.jsonl", conn_id=answering.conn_id))
    assert not isinstance(failure.value, AirflowFailException)


@pytest.fixture(scope="module")
def authenticating_s3() -> Iterator[tuple[str, str]]:
    """moto's S3 server checking credentials (its own process: the setting is process-wide); the first two
    requests are let through to create a user, whose access key id is returned with the URL."""
    import boto3

    with servers.moto_process(INITIAL_NO_AUTH_ACTION_COUNT="2") as url:
        iam = boto3.client("iam", endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="x",
                           region_name=REGION)
        iam.create_user(UserName="writer")
        key = iam.create_access_key(UserName="writer")["AccessKey"]["AccessKeyId"]
        yield url, key


@pytest.mark.parametrize(("login", "code"), [("AKIAUNKNOWN000000000", "InvalidAccessKeyId"),
                                             (None, "SignatureDoesNotMatch")])
def test_refused_credentials_are_a_permanent_error_before_any_api_request(emulator, authenticating_s3, monkeypatch,
                                                                          login, code):
    url, known_key = authenticating_s3
    conn = json.loads(aws_connection(url))
    conn["login"], conn["password"] = login or known_key, "not-the-secret"
    conn_id = f"aws_refused_{code.lower()}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    op = ConstantContactCampaignTrackingOperator(task_id="refused", campaign_id=emulator.campaign_ids()[0],
                                                 report="opens", destination="s3://lake/cc/", storage_conn_id=conn_id)
    with pytest.raises(ConstantContactInputError, match=f"refused the credentials of connection '{conn_id}' "
                                                        rf"\({code}\); fix the connection") as failure:
        op.execute(CONTEXT)
    assert isinstance(failure.value, AirflowFailException), "no retry can help"
    assert "not-the-secret" not in str(failure.value) and emulator.requests == []
