"""The same guarantees on every object store, each a real server: S3 (moto), GCS (fake-gcs-server), Azure Blob
(Azurite), through ObjectStoragePath and the store's Airflow connection and file system."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json

import pyarrow.parquet as pq
import pytest

from airflow_provider_cc._compat import AirflowFailException, ObjectStoragePath
from airflow_provider_cc.destinations import check_writable
from airflow_provider_cc.exceptions import ConstantContactInputError, ConstantContactStorageUnavailableError
from airflow_provider_cc.lineage import file_dataset_name
from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
from airflow_provider_cc.sinks import write_file
from tests.conftest import as_output
from tests.storage import servers
from tests.storage.conftest import AZURE_CONN_ID
from tests.storage.servers import AZURITE_ACCOUNT
from tests.storage.test_s3 import CONTEXT, NAME, big_pages

COLUMNS = ("activity_type", "campaign_id", "contact_id", "email_address", "send_date")


def expected_namespace(store_bucket) -> str:
    """The OpenLineage naming spec's namespace of an object in the bucket."""
    return {"s3": f"s3://{store_bucket.name}", "gcs": f"gs://{store_bucket.name}",
            "azure": f"abfss://{store_bucket.name}@{AZURITE_ACCOUNT}.dfs.core.windows.net"}[store_bucket.store]


def plain(store_bucket, key: str) -> str:
    if store_bucket.store == "azure":
        return f"abfs://{store_bucket.name}@{AZURITE_ACCOUNT}.dfs.core.windows.net/{key}"
    return store_bucket.uri(key)


def rows(body: bytes, file_format: str, compression: str | None) -> list[dict]:
    """A file's records as text values (what CSV holds), whatever the format."""
    if compression:
        body = gzip.decompress(body)
    if file_format == "jsonl":
        return [json.loads(line) for line in body.splitlines()]
    if file_format == "csv":
        return list(csv.DictReader(io.StringIO(body.decode())))
    table = pq.read_table(io.BytesIO(body)).to_pylist()
    return [{k: (v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z" if k.endswith("_date") else v)
             for k, v in row.items()} for row in table]


@pytest.mark.parametrize(("file_format", "compression"), [("jsonl", None), ("csv", "gzip"), ("parquet", None)])
def test_the_operator_writes_one_object_holding_the_emulators_records(emulator, store_bucket, tmp_path, file_format,
                                                                        compression):
    cid = emulator.campaign_ids()[0]
    options = {"campaign_id": cid, "report": "sends", "file_format": file_format, "compression": compression,
               "limit": 50}
    op = ConstantContactCampaignTrackingOperator(task_id="store", destination=store_bucket.uri("cc/"),
                                                 storage_conn_id=store_bucket.conn_id, **options)
    manifest = op.execute(CONTEXT)
    local = ConstantContactCampaignTrackingOperator(task_id="disk", destination=f"{tmp_path}/",
                                                    **options).execute(CONTEXT)
    key = f"cc/campaign/sends/campaign_id={cid}/{NAME}.{file_format}" + (".gz" if compression else "")
    assert store_bucket.keys() == [key], "one object at the final key, no temporary one"
    assert store_bucket.unfinished() == [], "nothing stored beside it"
    body = store_bucket.read(key)
    assert body == (tmp_path / key.removeprefix("cc/")).read_bytes(), "the same bytes as on local disk"
    expected = as_output(emulator.records(cid, "sends", created_since="2024-01-01T00:00:00Z",
                                          created_before="2024-01-03T00:00:00Z"))
    assert expected and rows(body, file_format, compression) == [{c: r[c] for c in COLUMNS} for r in expected] \
        if file_format != "jsonl" else rows(body, file_format, compression) == expected
    assert manifest["uri"] == plain(store_bucket, key), "a plain URI: no connection id, the account for Azure"
    assert manifest["storage_conn_id"] == store_bucket.conn_id and manifest["bytes"] == len(body)
    assert manifest["records"] == local["records"] == len(expected)
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(o.namespace, o.name) for o in lineage.outputs] == [(expected_namespace(store_bucket), key)]
    assert file_dataset_name(manifest["uri"]) == (expected_namespace(store_bucket), key)


def test_a_failure_mid_upload_leaves_no_object(store_bucket):
    """~18 MB sent in 8 MiB blocks when the source fails: the upload is aborted. S3 then holds no multipart upload
    and GCS no resumable session (cancelled); Azure keeps the staged blocks uncommitted (invisible, no object;
    no API deletes them: the next commit of that key discards them, Azure itself after a week)."""
    with pytest.raises(RuntimeError, match="went away"):
        write_file(big_pages(10, fail_after=4, noisy=True), store_bucket.path("cc/out.jsonl"), file_format="jsonl")
    assert store_bucket.keys() == [], "no object, complete or partial"
    assert store_bucket.unfinished() == ([] if store_bucket.store != "azure" else ["cc/out.jsonl"])
    count = write_file(big_pages(2, noisy=True), store_bucket.path("cc/out.jsonl"), file_format="jsonl")
    assert store_bucket.keys() == ["cc/out.jsonl"] and store_bucket.unfinished() == [], (
        "the retry's commit leaves nothing of the failed try")
    assert len(store_bucket.read("cc/out.jsonl").splitlines()) == count == 1000


@pytest.mark.parametrize("pages", [1, 4])
def test_a_refusal_before_commit_leaves_no_object(store_bucket, pages):
    """One page is one request never sent; four are an upload under way, which is aborted."""

    def refuse() -> None:
        raise RuntimeError("campaign turned out to be a draft")

    with pytest.raises(RuntimeError, match="draft"):
        write_file(big_pages(pages, noisy=True), store_bucket.path("cc/out.parquet"), file_format="parquet",
                   columns=("contact_id", "email_address", "send_date"), before_commit=refuse)
    assert store_bucket.keys() == []
    assert store_bucket.unfinished() == ([] if store_bucket.store != "azure" or pages == 1 else ["cc/out.parquet"])


def test_a_missing_bucket_fails_before_any_api_request(emulator, store_bucket):
    op = ConstantContactCampaignTrackingOperator(
        task_id="m", campaign_id=emulator.campaign_ids()[0], report="opens",
        destination=f"{store_bucket.scheme}://no-such-bucket-here/cc/", storage_conn_id=store_bucket.conn_id)
    with pytest.raises(ConstantContactInputError, match="bucket 'no-such-bucket-here' does not exist"):
        op.execute(CONTEXT)
    assert emulator.requests == [], "no quota spent"


def test_az_urls_are_refused_naming_abfs_before_any_api_request(emulator, azurite_url, monkeypatch):
    """fsspec knows az:// as abfs, but Airflow registers no file system for it: no connection would apply."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{AZURE_CONN_ID.upper()}", servers.azure_connection(azurite_url))
    op = ConstantContactCampaignTrackingOperator(task_id="az", campaign_id=emulator.campaign_ids()[0],
                                                 report="opens", destination="az://lake/cc/",
                                                 storage_conn_id=AZURE_CONN_ID)
    with pytest.raises(ConstantContactInputError, match=r"registers abfs:// and abfss://, not az://: write to "
                                                        r"abfs://"):
        op.execute(CONTEXT)
    assert emulator.requests == []


@pytest.mark.parametrize("store", ["gcs", "azure"])
def test_a_gcs_or_azure_store_that_is_down_is_a_transient_error(emulator, monkeypatch, store):
    """A closed port of 127.0.0.1 behind the store's real file system. gcsfs and the Azure SDK retry a refused
    connection for 65-85 s with asyncio.sleep between tries: their waits are cut to nothing here, the tries
    and the refused connections are real."""
    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda delay, *args, **kwargs: real_sleep(0, *args, **kwargs))
    url = f"http://127.0.0.1:{servers.free_port()}"  # nothing listens there
    conn_id = f"{store}_down"
    connection = servers.gcs_connection(url) if store == "gcs" else servers.azure_connection(url)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection)
    scheme = "gs" if store == "gcs" else "abfs"
    with pytest.raises(ConstantContactStorageUnavailableError, match="could not be reached") as failure:
        check_writable(ObjectStoragePath(f"{scheme}://lake/cc/out.jsonl", conn_id=conn_id))
    assert not isinstance(failure.value, AirflowFailException) and url not in str(failure.value)
