"""An example DAG, unchanged, writing to a real S3 server (moto): the root and its connection from Variables."""

from __future__ import annotations

import json

import pendulum

from tests import dimension_rows
from tests.conftest import as_output, dag_test, load_dags
from tests.storage.conftest import AWS_CONN_ID
from tests.storage.test_s3 import keys


def test_the_daily_example_writes_to_s3_with_the_connection_of_its_variable(airflow_db, emulator, s3, bucket,
                                                                             monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT", f"s3://{bucket}/cc/")
    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_STORAGE_CONN_ID", AWS_CONN_ID)
    run = dag_test(load_dags()[0]["constant_contact_daily"], pendulum.datetime(2024, 1, 2, 3, 30, tz="UTC"))
    assert run.state == "success"
    written = [k for k in keys(s3, bucket) if k.startswith("cc/campaign/")]
    assert written, "files on S3"
    assert set(keys(s3, bucket)) - set(written) - {k for k in keys(s3, bucket) if k.startswith("cc/_state/")} == {
        f"cc/dimension/v2/{n}/20240101T030000Z_20240102T030000Z.jsonl" for n in dimension_rows.V2_NAMES}
    for name, rows in dimension_rows.v2_rows(emulator, emulator.campaign_ids()).items():
        body = s3.get_object(Bucket=bucket, Key=f"cc/dimension/v2/{name}/20240101T030000Z_20240102T030000Z.jsonl")
        assert body["Body"].read() == dimension_rows.jsonl(rows), name
    for key in written:
        report, cid = key.split("/")[2], key.split("=")[1].split("/")[0]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        assert [json.loads(line) for line in body.splitlines()] == as_output(emulator.records(
            cid, report, created_since="2024-01-01T03:00:00Z", created_before="2024-01-02T03:00:00Z")), key
