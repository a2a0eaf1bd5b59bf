"""A try SIGKILLed mid-upload leaves an unfinished multipart upload; the retry aborts it (moto's S3 server)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from airflow_provider_cc.emulator import DataConfig
from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
from tests.conftest import ROOT, start_emulator
from tests.storage import servers
from tests.storage.conftest import AWS_CONN_ID, REGION, aws_connection
from tests.storage.test_s3 import CONTEXT, NAME, keys, uploads

# The killed try: ~4.5 MB pages of random text to the key, in 8 MiB parts; after 7 pages (~32 MB: three parts
# sent) it waits, so the test kills it with the upload under way.
KILLED_TRY = textwrap.dedent("""
    import sys, time
    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.sinks import write_file
    from tests.storage.test_s3 import big_pages

    def wait(page):
        if page == 7:
            print("parts sent", flush=True)
            time.sleep(120)

    write_file(big_pages(8, on_page=wait, noisy=True), ObjectStoragePath(sys.argv[1], conn_id=sys.argv[2]))
""")


def kill_mid_upload(s3, bucket: str, key: str) -> None:
    """Run the try in its own process and SIGKILL it once S3 holds its parts (bounded: 90 s)."""
    proc = subprocess.Popen([sys.executable, "-c", KILLED_TRY, f"s3://{bucket}/{key}", AWS_CONN_ID], cwd=ROOT,
                            env=os.environ.copy(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(1)]
        while lines[-1] and lines[-1].strip() != "parts sent" and len(lines) < 1000:  # Airflow logs there too
            lines.append(proc.stdout.readline())
        assert lines[-1].strip() == "parts sent", "".join(lines)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and len(uploads(s3, bucket)) < 1:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    left = uploads(s3, bucket)
    assert [u["Key"] for u in left] == [key], "the killed try left its multipart upload"
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=left[0]["UploadId"])["Parts"]
    assert len(parts) >= 3 and keys(s3, bucket) == [], "three 8 MiB parts stored, no object"


def test_the_retry_aborts_the_unfinished_upload_a_sigkilled_try_left(emulator, s3, bucket):
    cid = emulator.campaign_ids()[0]
    key = f"cc/campaign/opens/campaign_id={cid}/{NAME}.jsonl"
    kill_mid_upload(s3, bucket, key)
    s3.create_multipart_upload(Bucket=bucket, Key="cc/other-app/file.bin")  # not a key the task writes
    retry = ConstantContactCampaignTrackingOperator(task_id="retry", campaign_id=cid, report="opens",
                                                    destination=f"s3://{bucket}/cc/", storage_conn_id=AWS_CONN_ID)
    manifest = retry.execute(CONTEXT)
    assert keys(s3, bucket) == [key] and manifest["records"] > 0
    assert [u["Key"] for u in uploads(s3, bucket)] == ["cc/other-app/file.bin"], (
        "the written key's unfinished upload is aborted; another key's is left to the lifecycle rule")
    assert (retry.unfinished_uploads.listings, retry.unfinished_uploads.aborted) == (1, 1)


@pytest.fixture
def account(monkeypatch):
    emulator = start_emulator(monkeypatch, DataConfig.realistic(weeks=3, activities=40))
    yield emulator
    emulator.stop()


def test_a_task_writing_many_files_lists_unfinished_uploads_once(account, s3, bucket):
    """The account task writes a file per campaign and report: one listing for them all, before its first upload."""
    stale = s3.create_multipart_upload(Bucket=bucket, Key="cc/campaign/opens/x.jsonl")  # no file of the task
    op = ConstantContactAccountTrackingOperator(task_id="account", destination=f"s3://{bucket}/cc/",
                                                storage_conn_id=AWS_CONN_ID)
    op.execute({"data_interval_start": "2022-02-01T00:00:00Z", "data_interval_end": "2022-03-01T00:00:00Z"})
    written = [k for k in keys(s3, bucket) if k.startswith("cc/campaign/")]
    assert len(written) > 10, "many files"
    assert op.unfinished_uploads.listings == 1 and op.unfinished_uploads.aborted == 0
    assert [u["UploadId"] for u in uploads(s3, bucket)] == [stale["UploadId"]]


def test_credentials_that_may_not_list_uploads_still_write_and_say_so(emulator, monkeypatch, caplog):
    """A writer whose policy denies s3:ListBucketMultipartUploads (moto checking IAM, in its own process): the
    cleanup of earlier tries is skipped with a warning, never fails the task."""
    import boto3

    with servers.moto_process(INITIAL_NO_AUTH_ACTION_COUNT="3") as url:  # the three IAM requests below
        iam = boto3.client("iam", endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="x",
                           region_name=REGION)
        iam.create_user(UserName="writer")
        # s3:ListBucketMultipartUploads is the IAM action; moto 5.2.6 checks the operation's name instead.
        iam.put_user_policy(UserName="writer", PolicyName="no-listing", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {"Effect": "Deny", "Action": ["s3:ListBucketMultipartUploads", "s3:ListMultipartUploads"],
                 "Resource": "*"}]}))
        key = iam.create_access_key(UserName="writer")["AccessKey"]
        s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id=key["AccessKeyId"],
                          aws_secret_access_key=key["SecretAccessKey"], region_name=REGION)
        s3.create_bucket(Bucket="lake")
        with pytest.raises(Exception, match="AccessDenied"):
            s3.list_multipart_uploads(Bucket="lake")
        conn = json.loads(aws_connection(url))
        conn["login"], conn["password"] = key["AccessKeyId"], key["SecretAccessKey"]
        monkeypatch.setenv("AIRFLOW_CONN_AWS_NO_LISTING", json.dumps(conn))
        op = ConstantContactCampaignTrackingOperator(task_id="w", campaign_id=emulator.campaign_ids()[0],
                                                     report="opens", destination="s3://lake/cc/",
                                                     storage_conn_id="aws_no_listing")
        with caplog.at_level(logging.WARNING, logger="airflow_provider_cc.sinks.multipart"):
            manifest = op.execute(CONTEXT)
        assert manifest["records"] > 0 and keys(s3, "lake") == [manifest["uri"].removeprefix("s3://lake/")]
        assert "could not list the unfinished multipart uploads under s3://lake/cc (PermissionError)" in caplog.text
        assert key["SecretAccessKey"] not in caplog.text
