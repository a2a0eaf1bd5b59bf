"""Real object stores on 127.0.0.1 (moto's S3, fake-gcs-server, Azurite) and Airflow connections to them.

``bucket`` is a new, empty bucket on S3; ``store_bucket`` is one on each of the three stores in turn
(:class:`Bucket`: what a test writes through Airflow and reads back through the store's own client).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.storage import servers

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_cc._compat import ObjectStoragePath

AWS_CONN_ID = "aws_moto"
GCS_CONN_ID = "gcs_fake"
AZURE_CONN_ID = "azure_azurite"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def gcs_url() -> Iterator[str]:
    """fake-gcs-server on a free port of 127.0.0.1, for the whole session."""
    with servers.fake_gcs_server() as url:
        yield url


@pytest.fixture(scope="session")
def azurite_url() -> Iterator[str]:
    """Azurite's blob service on a free port of 127.0.0.1, for the whole session."""
    with servers.azurite() as url:
        yield url


def aws_connection(url: str, **extra: Any) -> str:
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                       "extra": {"endpoint_url": url, "region_name": REGION, **extra}})


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 S3 client on the server; ``AWS_CONN_ID`` points Airflow (and s3fs) at the same server."""
    import boto3

    monkeypatch.setenv(f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}", aws_connection(moto_url))
    return boto3.client("s3", endpoint_url=moto_url, aws_access_key_id="testing", aws_secret_access_key="testing",
                        region_name=REGION)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A new, empty bucket."""
    name = f"cc-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@dataclass
class Bucket:
    """A new, empty bucket (container) on one real object store, and the store's own view of it.

    :param store: ``s3``, ``gcs`` or ``azure``.
    :param scheme: the URL scheme the provider is given (``s3``, ``gs``, ``abfs``).
    :param conn_id: the Airflow connection of the store.
    :param name: the bucket (container).
    :param client: the store's own client (boto3 S3, the GCS base URL, an Azure ContainerClient).
    """

    store: str
    scheme: str
    conn_id: str
    name: str
    client: Any

    def uri(self, key: str = "") -> str:
        return f"{self.scheme}://{self.name}/{key}"

    def path(self, key: str) -> ObjectStoragePath:
        from airflow_provider_cc._compat import ObjectStoragePath

        return ObjectStoragePath(self.uri(key), conn_id=self.conn_id)

    def keys(self) -> list[str]:
        """Every object (committed blob) in the bucket."""
        if self.store == "s3":
            return [o["Key"] for o in self.client.list_objects_v2(Bucket=self.name).get("Contents", [])]
        if self.store == "gcs":
            with urllib.request.urlopen(f"{self.client}/storage/v1/b/{self.name}/o") as answer:
                return sorted(item["name"] for item in json.load(answer).get("items", []))
        return sorted(blob.name for blob in self.client.list_blobs())

    def read(self, key: str) -> bytes:
        if self.store == "s3":
            return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())
        if self.store == "gcs":
            quoted = urllib.parse.quote(key, safe="")
            with urllib.request.urlopen(f"{self.client}/storage/v1/b/{self.name}/o/{quoted}?alt=media") as answer:
                return bytes(answer.read())
        return bytes(self.client.download_blob(key).readall())

    def unfinished(self) -> list[str]:
        """Keys with data stored but no object: S3's unfinished multipart uploads; Azure's blobs that have
        uncommitted blocks. GCS lists no resumable upload sessions: always empty there."""
        if self.store == "s3":
            return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])]
        if self.store == "azure":
            return [blob.name for blob in self.client.list_blobs(include=["uncommittedblobs"])
                    if self.client.get_blob_client(blob.name).get_block_list("uncommitted")[1]]
        return []


def _gcs_bucket(url: str) -> str:
    name = f"cc-{uuid.uuid4().hex[:12]}"
    request = urllib.request.Request(f"{url}/storage/v1/b?project=cc-test", data=json.dumps({"name": name}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request).close()
    return name


@pytest.fixture(params=["s3", "gcs", "azure"])
def store_bucket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A new, empty bucket on S3 (moto), GCS (fake-gcs-server) and Azure Blob (Azurite) in turn."""
    name = f"cc-{uuid.uuid4().hex[:12]}"
    if request.param == "s3":
        client = request.getfixturevalue("s3")
        client.create_bucket(Bucket=name)
        return Bucket("s3", "s3", AWS_CONN_ID, name, client)
    if request.param == "gcs":
        url = request.getfixturevalue("gcs_url")
        monkeypatch.setenv(f"AIRFLOW_CONN_{GCS_CONN_ID.upper()}", servers.gcs_connection(url))
        return Bucket("gcs", "gs", GCS_CONN_ID, _gcs_bucket(url), url)
    from azure.storage.blob import BlobServiceClient

    url = request.getfixturevalue("azurite_url")
    monkeypatch.setenv(f"AIRFLOW_CONN_{AZURE_CONN_ID.upper()}", servers.azure_connection(url))
    service = BlobServiceClient.from_connection_string(servers.azure_connection_string(url))
    return Bucket("azure", "abfs", AZURE_CONN_ID, name, service.create_container(name))
