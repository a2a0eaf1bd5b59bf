"""Layout, the root rule, plain URIs and the writability pre-check, on real local storage and the emulator."""

from __future__ import annotations

import json
import sys

import fsspec
import pendulum
import pytest

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.destinations import (
    as_path,
    campaign_layout,
    check_writable,
    conn_id_of,
    contact_layout,
    file_name,
    is_root,
    plain_uri,
    resolve_target,
    stamp,
)
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
from airflow_provider_cc.window import Window

DAY = Window.of("2024-01-01", "2024-01-02")
CONTEXT = {"data_interval_start": pendulum.datetime(2024, 1, 1), "data_interval_end": pendulum.datetime(2024, 1, 2)}
NAME = "20240101T000000Z_20240102T000000Z.jsonl"


def pull(emulator, **kwargs):
    return ConstantContactCampaignTrackingOperator(task_id="t", campaign_id=emulator.campaign_ids()[0],
                                                   report="opens", **kwargs)


def files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_names_and_layouts():
    assert stamp(pendulum.datetime(2024, 1, 1, 3, 0, 0, 5000)) == "20240101T030000.005Z"
    assert file_name(DAY, "csv", "gzip") == "20240101T000000Z_20240102T000000Z.csv.gz"
    assert file_name(DAY, "parquet", None) == "20240101T000000Z_20240102T000000Z.parquet"
    assert campaign_layout("clicks", "1", "2") == "campaign/clicks/campaign_id=1/link_id=2"
    assert contact_layout("all", "21") == "contact/all/contact_id=21"


@pytest.mark.parametrize("destination", [
    "s3://bucket/cc/", "s3://bucket", "s3://bucket/", "file:///data/cc/", "/data/cc/",
    ObjectStoragePath("s3://bucket/cc/"), ObjectStoragePath("s3://bucket/") / "cc/",
    ObjectStoragePath("file:///data/cc/"), ObjectStoragePath("s3://bucket"), ObjectStoragePath("gs://bucket/cc/"),
])
def test_roots_are_recognised_without_str(destination):
    assert is_root(destination)
    target = resolve_target(destination, None, "campaign/opens/campaign_id=1", DAY, file_format="jsonl",
                            compression=None)
    assert plain_uri(target).endswith(f"/campaign/opens/campaign_id=1/{NAME}")


@pytest.mark.parametrize("destination", ["s3://bucket/cc/out.jsonl", "/data/out.jsonl",
                                         ObjectStoragePath("s3://bucket/cc"), ObjectStoragePath("file:///data/x")])
def test_files_are_files(destination):
    assert not is_root(destination)
    target = resolve_target(destination, None, "campaign/opens/campaign_id=1", DAY, file_format="jsonl",
                            compression=None)
    assert "campaign_id" not in plain_uri(target)


def test_plain_uris_carry_no_connection_id():
    assert plain_uri(as_path("gs://google_cloud_default@bucket/k/f.jsonl")) == "gs://bucket/k/f.jsonl"
    assert plain_uri(as_path("s3://aws_default@bucket/cc/x.jsonl")) == "s3://bucket/cc/x.jsonl"
    target = resolve_target("s3://bucket/cc/", "my_aws", "campaign/opens/campaign_id=1", DAY, file_format="jsonl",
                            compression=None)
    assert plain_uri(target) == f"s3://bucket/cc/campaign/opens/campaign_id=1/{NAME}"
    assert conn_id_of(target) == "my_aws" and "my_aws" in str(target), "str() is not a plain URI"
    assert conn_id_of(ObjectStoragePath("s3://other@bucket/x")) == "other"
    assert plain_uri(as_path("/data/x.csv")) == "file:///data/x.csv"


@pytest.mark.parametrize(("destination", "words"), [
    ("None", "is empty"), ("  ", "is empty"), ("out/cc/", "relative path"), ("cc.jsonl", "relative path"),
])
def test_bad_destinations_fail_before_any_request(emulator, destination, words):
    with pytest.raises(ConstantContactInputError, match=words):
        pull(emulator, destination=destination).execute(CONTEXT)
    assert emulator.requests == []


def test_an_object_storage_path_root_gets_the_layout(emulator, tmp_path):
    root = ObjectStoragePath(f"file://{tmp_path}/cc/")
    manifest = pull(emulator, destination=root).execute(CONTEXT)
    cid = emulator.campaign_ids()[0]
    assert files(tmp_path) == [f"cc/campaign/opens/campaign_id={cid}/{NAME}"]
    assert manifest["uri"] == f"file://{tmp_path}/cc/campaign/opens/campaign_id={cid}/{NAME}"


def test_every_interval_into_an_object_storage_path_root_keeps_its_own_file(emulator, tmp_path):
    root = ObjectStoragePath(f"file://{tmp_path}/")
    op = pull(emulator, destination=root)
    op.execute(CONTEXT)
    op.execute({"data_interval_start": pendulum.datetime(2024, 1, 2),
                "data_interval_end": pendulum.datetime(2024, 1, 3)})
    assert len(files(tmp_path)) == 2


@pytest.mark.parametrize("as_object", [False, True])
def test_an_existing_directory_without_the_slash_is_refused_before_any_request(emulator, tmp_path, as_object):
    folder = tmp_path / "cc"
    folder.mkdir()
    (folder / "earlier.jsonl").write_text("{}\n")
    destination = ObjectStoragePath(f"file://{folder}") if as_object else str(folder)
    with pytest.raises(ConstantContactInputError, match=f"destination file://{folder} is an existing directory"):
        pull(emulator, destination=destination).execute(CONTEXT)
    assert emulator.requests == [], "refused before the first API request"
    assert files(tmp_path) == ["cc/earlier.jsonl"], "nothing written into it, hidden or not"


def test_a_folder_that_cannot_be_created_fails_before_any_request(emulator, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConstantContactInputError, match="cannot create the folder"):
        pull(emulator, destination=f"file://{tmp_path}/file/cc/").execute(CONTEXT)
    assert emulator.requests == []


def test_check_writable_creates_the_local_folder(tmp_path):
    target = as_path(f"{tmp_path}/a/b/c.jsonl")
    check_writable(target)
    assert (tmp_path / "a" / "b").is_dir() and not (tmp_path / "a" / "b" / "c.jsonl").exists()


def test_files_written_entries(emulator, tmp_path):
    op = pull(emulator, destination=f"{tmp_path}/", file_format="csv", compression="gzip")
    manifest = op.execute(CONTEXT)
    (entry,) = op.files_written
    assert entry["uri"] == manifest["uri"] and entry["uri"].startswith("file:///")
    assert entry["storage_conn_id"] is None and entry["records"] == manifest["records"] > 0
    assert entry["bytes"] == (tmp_path / entry["uri"].split(f"{tmp_path}/", 1)[1]).stat().st_size
    assert entry["window"] == {"created_since": "2024-01-01T00:00:00.000Z",
                               "created_before": "2024-01-02T00:00:00.000Z"}
    json.dumps(manifest)  # XCom-friendly


@pytest.mark.parametrize("destination", ["memory://cc/", ObjectStoragePath("memory://cc/out.jsonl")])
def test_a_protocol_without_an_atomic_commit_is_refused_before_any_request(emulator, destination):
    with pytest.raises(ConstantContactInputError, match="protocol 'memory' is not one of them"):
        pull(emulator, destination=destination).execute(CONTEXT)
    assert emulator.requests == []
    assert not fsspec.filesystem("memory").exists("/cc"), "nothing written, not even a temporary file"


@pytest.mark.parametrize("destination", [ObjectStoragePath("/data/cc/"), ObjectStoragePath("/data/cc"),
                                         ObjectStoragePath("/data/") / "cc/"])
def test_an_object_storage_path_from_a_plain_path_is_refused_on_every_airflow_version(emulator, destination):
    """universal-pathlib 0.3 (Airflow 3.1+) drops the slash of ObjectStoragePath("/data/cc/"), 0.2 keeps it:
    a root on 2.11 would be a file on 3.3. Refused on both, naming what to write instead."""
    advice = r"ObjectStoragePath\('file:///data/cc/'\) for a root or ObjectStoragePath\('file:///data/cc'\)"
    with pytest.raises(ConstantContactInputError, match=advice):
        is_root(destination)
    with pytest.raises(ConstantContactInputError, match="built from a plain path"):
        pull(emulator, destination=destination).execute(CONTEXT)
    assert emulator.requests == []


def test_an_unknown_protocol_is_a_clear_error_before_any_request(emulator):
    """Airflow 3.1+ (universal-pathlib 0.3) refuses it when the path is built, 2.x when it is checked."""
    with pytest.raises(ConstantContactInputError, match="'s4'"):
        pull(emulator, destination="s4://bucket/cc/").execute(CONTEXT)
    assert emulator.requests == []


@pytest.mark.parametrize(("destination", "package", "install"), [
    ("gs://bucket/cc/", "gcsfs", r"airflow-provider-constant-contact\[gcs\]"),
    ("abfs://container/cc/", "adlfs", r"airflow-provider-constant-contact\[azure\]"),
])
def test_an_object_store_without_its_package_names_what_to_install(emulator, monkeypatch, destination, package,
                                                                     install):
    """The file system's package made unimportable, as on a worker without it (the tests install both)."""
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ConstantContactInputError, match=f"this Airflow has no file system for '.+'; install {install}"):
        pull(emulator, destination=destination).execute(CONTEXT)
    assert emulator.requests == []


def test_an_empty_storage_conn_id_means_none():
    """An unset Variable in a template renders to "": no connection, not a connection named ""."""
    for empty in ("", " ", "None"):
        assert conn_id_of(as_path("s3://lake/cc/", empty)) is None
    assert conn_id_of(as_path("s3://lake/cc/", "aws_lake")) == "aws_lake"
