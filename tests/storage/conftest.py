"""A real S3-compatible server (moto's) on 127.0.0.1, and an Airflow aws connection pointing at it."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

AWS_CONN_ID = "aws_moto"
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


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 S3 client on the server; ``AWS_CONN_ID`` points Airflow (and s3fs) at the same server."""
    import boto3

    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": moto_url, "region_name": REGION}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}", json.dumps(conn))
    return boto3.client("s3", endpoint_url=moto_url, aws_access_key_id="testing", aws_secret_access_key="testing",
                        region_name=REGION)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A new, empty bucket."""
    name = f"cc-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
