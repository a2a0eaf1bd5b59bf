"""The storage table: which protocols the provider writes to, how it commits there, how it names the files."""

from __future__ import annotations

import pytest

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.lineage import file_dataset_name
from airflow_provider_cc.stores import (
    LOCAL,
    LOCAL_PROTOCOLS,
    OBJECT_STORE,
    OBJECT_STORE_PROTOCOLS,
    STORES,
    directory_error,
    plain_uri,
    store_of,
)


def test_every_protocol_is_either_local_or_an_object_store():
    assert set(STORES) == LOCAL_PROTOCOLS | OBJECT_STORE_PROTOCOLS
    assert not LOCAL_PROTOCOLS & OBJECT_STORE_PROTOCOLS
    assert {s.commit for s in STORES.values()} == {LOCAL, OBJECT_STORE}
    assert store_of(None) is store_of("") is store_of("file") is store_of("FILE")
    assert store_of("hdfs") is None and store_of("memory") is None


@pytest.mark.parametrize("protocol", sorted(OBJECT_STORE_PROTOCOLS))
def test_every_object_store_the_commit_knows_is_named_by_its_bucket_in_lineage(protocol):
    namespace, name = file_dataset_name(f"{protocol}://bucket/k/f.jsonl")
    assert namespace == f"{STORES[protocol].namespace}://bucket" and name == "k/f.jsonl"


@pytest.mark.parametrize("protocol", sorted(LOCAL_PROTOCOLS - {""}))
def test_every_local_protocol_is_a_file_in_lineage(protocol):
    assert file_dataset_name(f"{protocol}:///data/f.jsonl") == ("file", "/data/f.jsonl")


def test_plain_uris_drop_the_connection_id():
    assert plain_uri(ObjectStoragePath("s3://aws_default@bucket/cc/x.jsonl")) == "s3://bucket/cc/x.jsonl"
    assert plain_uri(ObjectStoragePath("file:///data/x.csv")) == "file:///data/x.csv"
    assert plain_uri(ObjectStoragePath("local:///data/x.csv")) == "file:///data/x.csv"
    assert "is an existing directory" in str(directory_error("file:///data"))
