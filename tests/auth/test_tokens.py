"""v3 tokens through real HTTP against the emulator's OAuth2 server: cached, shared, refreshed one at a time,
rotated safely (persisted before use), recovered after invalid_grant, and failing clearly when broken."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import signal
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_cc.auth.store import FileTokenStore, TokenState
from airflow_provider_cc.auth.tokens import TokenManager, manager_for
from airflow_provider_cc.emulator import V3Options
from airflow_provider_cc.exceptions import (
    ConstantContactInputError,
    ConstantContactResponseError,
    ConstantContactTokenError,
    ConstantContactTokenStoreError,
)
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
from tests import warm
from tests.conftest import ROOT, V3_CONN_ENV, start_v3
from tests.hooks.conftest import HostileHandler, HostileServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# Each thread and process asks for a campaign every PAUSE s: five token managers (four processes, this one's eight
# threads) all notice an expiry within PAUSE s of each other and race for the refresh. More requests would only
# load the emulator (a fifth of a second keeps the race, at a quarter of the CPU of 0.05 s).
PAUSE = 0.2
MAX_STRESS = 180.0  # seconds the stress may last at most, waiting for three rotations on a busy machine
WORKER = """
import json, os, sys, time
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
hook = ConstantContactV3Hook()
cid = sys.argv[1]
print("ready", flush=True)
sys.stdin.readline()
stop, deadline = sys.argv[2], time.monotonic() + 600  # until the test says stop (a file); never unbounded
done, errors = 0, []
while not os.path.exists(stop) and time.monotonic() < deadline:
    try:
        hook.get_campaign(cid)
        done += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:300])
    time.sleep(float(sys.argv[3]))
print(json.dumps({"requests": done, "errors": errors, "token_calls": hook.tokens.token_calls}), flush=True)
"""


def refreshes(emu: Any) -> list[tuple[float, str, str]]:
    return [c for c in emu.v3.oauth.token_calls if c[1] == "refresh_token"]


def store_of(directory: str) -> FileTokenStore:
    """The store of the connection ``constant_contact_v3_default`` (its chain's key)."""
    return FileTokenStore(directory, ConstantContactV3Hook().tokens.store.key)


# The Airflow store (Variables through each version's API) on every Airflow version; the file and Redis stores
# do not depend on it, so they run with the first version only.
@pytest.mark.parametrize(("store", "seconds"), [
    ("airflow", 15),
    pytest.param("file", 10, marks=pytest.mark.airflow_independent),
    pytest.param("redis", 10, marks=pytest.mark.airflow_independent),
])
def test_eight_threads_and_four_processes_refresh_one_rotating_chain_without_breaking_it(
        monkeypatch, tmp_path, request, store, seconds):
    """Rotating tokens living 3 s, for at least 10-15 s and until the chain rotated three times (a busy machine may
    spend most of a fixed time on the first refresh): no request fails, the store ends on the chain's head, no
    token is ever reused, token calls are about one per expiry and never two in a second."""
    if store == "airflow":
        request.getfixturevalue("airflow_db")
        spec = "airflow"
    elif store == "redis":
        spec = request.getfixturevalue("redis_server").url
    else:
        spec = str(tmp_path / "tokens")
    lifetime = 3.0
    emu = start_v3(monkeypatch, spec, options=V3Options(access_token_lifetime=lifetime), requests_per_second=0)
    try:
        cid = next(iter(emu.v3.view.campaigns))
        stop = tmp_path / "stop"
        procs = [warm.start(WORKER, cid, str(stop), str(PAUSE), cwd=str(ROOT)) for _ in range(4)]
        for proc in procs:
            assert proc.stdout is not None
            while (line := proc.stdout.readline()) and line.strip() != "ready":
                pass
        hook = ConstantContactV3Hook()
        errors: list[str] = []
        done = [0]
        stopped = threading.Event()

        def thread_work() -> None:
            own = ConstantContactV3Hook()  # a hook per thread, one token manager per process
            while not stopped.is_set():
                try:
                    own.get_campaign(cid)
                    done[0] += 1
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(PAUSE)

        threads = [threading.Thread(target=thread_work) for _ in range(8)]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while time.monotonic() - started < MAX_STRESS and (time.monotonic() - started < seconds
                                                           or len(refreshes(emu)) < 3):
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        stopped.set()
        stop.touch()
        for thread in threads:
            thread.join(120)
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        emu.stop()
    assert errors == [] and all(r["errors"] == [] for r in results), (errors[:3], [r["errors"][:3] for r in results])
    assert done[0] > 0 and all(r["requests"] > 0 for r in results)
    calls = refreshes(emu)
    assert all(outcome == "ok" for _, _, outcome in calls), f"every token call succeeded: {calls}"
    assert emu.v3.oauth.reused == 0, "no refresh token was sent twice"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    assert all(gap >= 0.95 for gap in gaps), f"never two token calls within a second: {min(gaps, default=None)}"
    # Rotated three times within the bound, and never more than once per expiry. Not "once per expiry" from below:
    # on a busy machine an expiry may pass while no thread or process asks for a token.
    assert 3 <= len(calls) <= elapsed / (lifetime * 0.8) + 3, (len(calls), elapsed)
    state = hook.tokens.store.read()
    assert state is not None and emu.v3.oauth.chain_intact(state.refresh_token), "the chain is intact afterwards"


KILLED = """
import os, signal, sys
from airflow_provider_cc.auth.store import FileTokenStore
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

class KilledAfterWrite(FileTokenStore):
    def write(self, state):
        super().write(state)
        os.kill(os.getpid(), signal.SIGKILL)  # persisted, then gone before the token is used

hook = ConstantContactV3Hook()
store = KilledAfterWrite(sys.argv[1], sys.argv[2])
ConstantContactV3Hook(token_store=store).get_campaign(sys.argv[3])
"""


def test_a_process_killed_right_after_it_stored_a_rotated_token_leaves_a_chain_the_next_one_uses(v3, tmp_path):
    cid = next(iter(v3.v3.view.campaigns))
    store = store_of(str(tmp_path / "tokens"))
    killed = warm.start(KILLED, str(store.directory), store.key, cid, cwd=str(ROOT))  # forked warm
    _, err = killed.communicate(timeout=600)
    killed.close()
    assert killed.returncode == -signal.SIGKILL, err[-2000:]
    assert not any(p.startswith("/v3/") for p, _ in v3.requests), "it died before using the new token"
    state = store.read()
    assert state is not None and state.rotating and v3.v3.oauth.chain_intact(state.refresh_token)
    assert ConstantContactV3Hook().get_campaign(cid)["campaign_id"] == cid
    assert len(refreshes(v3)) == 1, "the next process used the stored access token: no second refresh"


class UnwritableStore(FileTokenStore):
    def write(self, state: TokenState) -> None:
        raise ConstantContactTokenStoreError(f"{self.where} cannot be written (No space left on device)")


def test_a_store_that_cannot_be_written_fails_the_task_before_the_new_token_is_used(v3, tmp_path):
    store = UnwritableStore(str(tmp_path / "readonly"), "k")
    hook = ConstantContactV3Hook(token_store=store)
    with pytest.raises(ConstantContactTokenError, match="cannot be written") as info:
        hook.get_campaign(next(iter(v3.v3.view.campaigns)))
    text = str(info.value)
    assert "was not used" in text and "python -m airflow_provider_cc.auth login" in text
    assert not any(p.startswith("/v3/") for p, _ in v3.requests), "no API request with the unstored token"
    assert all(t not in text for t in v3.v3.oauth.refresh_tokens() | v3.v3.oauth.seen_tokens)


class StaleOnce(FileTokenStore):
    """A store whose first reads are stale: a peer's rotation shows only after this process looked (a store
    whose lock is not exact, or a replica lagging)."""

    def __init__(self, directory: str, key: str, stale: TokenState) -> None:
        super().__init__(directory, key)
        self.stale = stale
        self.stale_reads = 2  # before the lock and under it: both before the peer's write shows

    def read(self) -> TokenState | None:
        if self.stale_reads:
            self.stale_reads -= 1
            return self.stale
        return super().read()


def test_invalid_grant_rereads_the_store_and_uses_the_peer_s_rotated_tokens(v3, tmp_path):
    from airflow_provider_cc.hooks.connection_v3 import V3Settings

    directory = str(tmp_path / "tokens")
    first = ConstantContactV3Hook()
    first.get_campaign(next(iter(v3.v3.view.campaigns)))  # rotates R1 -> R2, stored
    settings = first.settings
    stale = TokenState(refresh_token=settings.refresh_token)  # what the slow peer read: R1, no access token
    peer = TokenManager(V3Settings.from_connection(_conn()), StaleOnce(directory, first.tokens.store.key, stale))
    time.sleep(1.1)  # the token endpoint's 1 a second
    assert peer.access_token() == first.tokens.state().access_token  # type: ignore[union-attr]
    assert peer.token_calls == 1 and [c[2] for c in refreshes(v3)] == ["ok", "invalid_grant"]
    assert v3.v3.oauth.chain_intact(first.tokens.store.read().refresh_token)  # type: ignore[union-attr]


def _conn() -> Any:
    from airflow.models.connection import Connection

    return Connection.from_json(os.environ[V3_CONN_ENV], conn_id="constant_contact_v3_default")


def test_a_broken_chain_fails_without_retries_saying_how_to_reauthorize(v3):
    from airflow_provider_cc._compat import AirflowFailException

    requests.post(f"{v3.url}/_emulator/oauth/settings", json={"revoke": True}, timeout=10)
    with pytest.raises(ConstantContactTokenError, match="refresh-token chain is broken") as info:
        ConstantContactV3Hook().get_campaign(next(iter(v3.v3.view.campaigns)))
    assert isinstance(info.value, AirflowFailException), "task retries cannot mend it"
    assert "python -m airflow_provider_cc.auth login --conn-id constant_contact_v3_default" in str(info.value)
    assert len(refreshes(v3)) == 1, "the connection's token was the only one to try"


def test_a_new_login_in_the_connection_restarts_a_dead_chain(monkeypatch, v3):
    cid = next(iter(v3.v3.view.campaigns))
    old = ConstantContactV3Hook()
    old.get_campaign(cid)
    first_key = old.tokens.store.key
    requests.post(f"{v3.url}/_emulator/oauth/settings", json={"revoke": True}, timeout=10)
    conn = json.loads(os.environ[V3_CONN_ENV])
    conn["extra"]["refresh_token"] = v3.v3.oauth.issue()["refresh_token"]  # the user logged in again
    monkeypatch.setenv(V3_CONN_ENV, json.dumps(conn))
    time.sleep(1.1)
    hook = ConstantContactV3Hook()
    assert hook.get_campaign(cid)["campaign_id"] == cid
    assert [c[2] for c in refreshes(v3)][-1:] == ["ok"], "the new refresh token starts a chain of its own"
    assert hook.tokens.store.key != first_key


def test_long_lived_tokens_do_not_rotate_and_a_long_unused_token_is_warned_about(monkeypatch, tmp_path, caplog):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), options=V3Options(mode="long_lived"))
    try:
        hook = ConstantContactV3Hook()
        cid = next(iter(emu.v3.view.campaigns))
        hook.get_campaign(cid)
        state = hook.tokens.store.read()
        assert state is not None and state.rotating is False
        assert state.refresh_token == hook.settings.refresh_token, "the same refresh token, kept"
        # 150 days without a refresh (a paused DAG): the next refresh warns about the 180-day rule.
        hook.tokens.store.write(TokenState(**{**state.__dict__, "refreshed_at": time.time() - 150 * 86400,
                                              "expires_at": time.time() - 1}))
        caplog.set_level(logging.WARNING)
        later = TokenManager(hook.settings, hook.tokens.store)
        time.sleep(1.1)
        later.access_token()
    finally:
        emu.stop()
    assert "last used 150 days ago" in caplog.text and "180 days" in caplog.text


def test_one_manager_per_connection_and_process_and_a_day_of_hooks_costs_one_token_call(v3):
    hooks = [ConstantContactV3Hook() for _ in range(5)]
    assert len({id(h.tokens) for h in hooks}) == 1
    for hook in hooks:
        hook.get_campaign(next(iter(v3.v3.view.campaigns)))
    assert len(refreshes(v3)) == 1
    assert manager_for(hooks[0].settings) is hooks[0].tokens


def test_token_calls_wait_for_a_429_of_the_token_endpoint(monkeypatch, tmp_path, caplog):
    """Another process of the app took the token endpoint's second: 429, waited for, retried."""
    # One call per 5 s, not the real 1/s: the hook's first refresh must land inside the window the call
    # below opens, and on a busy machine building the hook can take more than a second.
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), options=V3Options(token_calls_per_second=0.2))
    try:
        hook = ConstantContactV3Hook()
        requests.post(emu.token_url, data={"grant_type": "refresh_token", "refresh_token": "x",
                                           "client_id": emu.v3.options.client_id}, timeout=10)
        caplog.set_level(logging.WARNING)
        assert hook.get_campaign(next(iter(emu.v3.view.campaigns)))
    finally:
        emu.stop()
    outcomes = [c[2] for c in refreshes(emu)]
    assert outcomes[-1] == "ok" and "too_many_requests" in outcomes[1:], outcomes
    assert "1 request/s limit" in caplog.text


def test_token_endpoint_error_text_never_carries_the_secrets_it_echoes(monkeypatch, tmp_path, caplog):
    """A token endpoint that echoes the refresh token and the client secret in its error_description."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl

    class Echo(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            form = dict(parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
            body = json.dumps({"error": "invalid_grant", "error_description": (
                f"refresh token {form.get('refresh_token')} for {self.headers.get('Authorization')} is dead")}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    refresh_token, secret = "echoed-refresh-token-0123456789", "echoed-client-secret-987"
    monkeypatch.setenv(V3_CONN_ENV, json.dumps({
        "conn_type": "constant_contact_v3", "host": "http://127.0.0.1:1", "login": "client-id", "password": secret,
        "extra": {"refresh_token": refresh_token, "token_url": f"http://127.0.0.1:{server.server_address[1]}/token",
                  "token_store": str(tmp_path / "tokens")}}))
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(ConstantContactTokenError) as info:
            ConstantContactV3Hook().get_campaign("e4cf53f0-e37f-11e8-9f32-f2801f1b9fd1")
    finally:
        server.shutdown()
        server.server_close()
    import base64

    basic = base64.b64encode(f"client-id:{secret}".encode()).decode()
    everything = str(info.value) + caplog.text
    assert "is dead" in everything, "the server's words are kept"
    assert refresh_token not in everything and secret not in everything and basic not in everything


# ---- a hostile token endpoint: every guarantee an API page has ------------------------------------------------
class _PostHandler(HostileHandler):
    do_POST = HostileHandler.do_GET


class TokenEndpoint(HostileServer):
    """A token endpoint whose answers the test writes; ``respond`` reads the form with :func:`form`."""

    def __init__(self, respond: Callable[[HostileHandler, int], None]) -> None:
        super().__init__(respond)
        self.RequestHandlerClass = _PostHandler

    def manager(self, directory: str, timeout: float = 1.0, oauth_timeout: float | None = None) -> TokenManager:
        """A manager of this endpoint's connection; its token calls wait ``oauth_timeout`` (default: ``timeout``)."""
        from airflow_provider_cc.hooks.connection_v3 import V3Settings

        settings = V3Settings(conn_id="hostile", base_url=self.url, client_id="hostile-client",
                              client_secret="hostile-secret", refresh_token="refresh-token-0",
                              token_url=f"{self.url}/token", token_store=directory, requests_per_second=0,
                              timeout=timeout, oauth_timeout=oauth_timeout or timeout, max_retries=0)
        return TokenManager(settings, FileTokenStore(directory, "k"))


def form(h: HostileHandler) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode()))


@pytest.fixture
def endpoint() -> Iterator[Callable[[Callable[[HostileHandler, int], None]], TokenEndpoint]]:
    servers: list[TokenEndpoint] = []

    def start(respond: Callable[[HostileHandler, int], None]) -> TokenEndpoint:
        server = TokenEndpoint(respond)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def good(n: int, **extra: Any) -> dict[str, Any]:
    return {"access_token": f"access-token-{n:04d}", "refresh_token": f"refresh-token-{n}", "token_type": "Bearer",
            "expires_in": 3600, **extra}


def test_a_dripping_token_answer_is_given_up_at_the_timeout_and_the_refresh_retried(endpoint, tmp_path):
    """One byte every 0.25 s: each read succeeds, the whole never ends within the 1-s token-call timeout (the
    drip alone would take 15 s). It bounds the whole answer, as the connection's timeout does for an API page."""
    stop = threading.Event()

    def respond(h: HostileHandler, n: int) -> None:
        form(h)
        if n > 1:
            h.answer(200, good(n))
            return
        body = json.dumps(good(n)).encode()
        h.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                      .encode())
        for i in range(len(body)):
            if stop.wait(0.25):
                break
            h.wfile.write(body[i:i + 1])
            h.wfile.flush()
        h.close_connection = True

    server = endpoint(respond)
    try:
        token = server.manager(str(tmp_path / "tokens")).access_token()
    finally:
        stop.set()
    assert token == "access-token-0002" and len(server.seen) == 2, "the drip was given up and the call retried"


def _rotating_and_slow_once(seconds: float) -> Callable[[HostileHandler, int], None]:
    """A rotating token endpoint (each refresh token works once) whose first answer comes ``seconds`` late,
    after it rotated the token: what a busy authorization server, or a busy worker, makes of an answer."""
    current = ["refresh-token-0"]
    lock = threading.Lock()

    def respond(h: HostileHandler, n: int) -> None:
        sent = form(h).get("refresh_token")
        with lock:
            if sent != current[0]:
                h.answer(400, {"error": "invalid_grant", "error_description": "The refresh token is invalid."})
                return
            current[0] = f"refresh-token-{n}"
        if n == 1:
            time.sleep(seconds)
        with contextlib.suppress(OSError):
            h.answer(200, good(n))

    return respond


def test_a_token_call_waits_its_own_timeout_so_a_slow_answer_keeps_the_chain(endpoint, tmp_path):
    """Pages time out at 0.3 s; the token answer comes after 1 s. Given up at 0.3 s, the rotated token in it would
    be lost (the retry's token is already replaced): with ``oauth_timeout`` 30 the token call waits for it."""
    server = endpoint(_rotating_and_slow_once(1.0))
    manager = server.manager(str(tmp_path / "tokens"), timeout=0.3, oauth_timeout=30)
    assert manager.settings.token_timeout == 30
    assert manager.access_token() == "access-token-0001" and len(server.seen) == 1
    state = manager.store.read()
    assert state is not None and state.refresh_token == "refresh-token-1", "the rotated token is stored"


def test_a_token_call_given_up_before_its_answer_says_why_the_retry_was_refused(endpoint, tmp_path):
    """With a token-call timeout shorter than the server's answer, the chain is lost (inherent to single-use
    tokens); the error says so and what setting keeps such an answer, not only "invalid_grant"."""
    server = endpoint(_rotating_and_slow_once(1.5))
    manager = server.manager(str(tmp_path / "tokens"), timeout=0.3)
    with pytest.raises(ConstantContactTokenError) as caught:
        manager.access_token()
    text = str(caught.value)
    assert "chain is broken" in text and "invalid_grant" in text, text
    assert "an earlier attempt's answer never arrived" in text and "oauth_timeout" in text, text
    assert len(server.seen) == 2, "one retry after the lost answer, then no other token to try"


def test_the_token_call_timeout_is_the_connections_unless_oauth_timeout_says_otherwise_and_is_checked():
    from airflow_provider_cc.hooks.connection_v3 import V3Settings

    base = {"conn_id": "c", "base_url": "https://api.cc.email", "client_id": "client"}
    assert V3Settings(**base, timeout=7).token_timeout == 7, "bounded like an API request by default"
    assert V3Settings(**base, timeout=5, oauth_timeout=45).token_timeout == 45
    with pytest.raises(ConstantContactInputError, match="oauth_timeout"):
        V3Settings(**base, oauth_timeout=0)


MB = 1 << 20


def _unbounded(h: HostileHandler) -> None:
    """A 200 without a length, 4 MB of one JSON string, then the end of the connection."""
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                  b'{"access_token": "')
    for _ in range(4):
        h.wfile.write(b"A" * MB)
    h.wfile.write(b'", "expires_in": 3600}')
    h.close_connection = True


def _bomb(h: HostileHandler) -> None:
    """0.1 MB of gzip that decodes to a 64 MB token answer."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = packer.compress(b'{"access_token": "') + b"".join(packer.compress(b"B" * MB) for _ in range(64)) + \
        packer.compress(b'", "expires_in": 3600}') + packer.flush()
    h.answer(200, body, {"Content-Encoding": "gzip"})


@pytest.mark.parametrize("answer", [_unbounded, _bomb], ids=["4-MB-answer", "gzip-bomb"])
def test_a_token_answer_larger_than_a_token_answer_is_refused_unread(endpoint, tmp_path, answer):
    def respond(h: HostileHandler, n: int) -> None:
        form(h)
        answer(h)

    server = endpoint(respond)
    manager = server.manager(str(tmp_path / "tokens"), timeout=30)
    with pytest.raises(ConstantContactResponseError, match=r"token refresh: the answer is larger than [\d,]+ "
                                                           "bytes once decoded"):
        manager.access_token()
    assert len(server.seen) == 1, "an answer that large is no token answer: not asked again"
    assert manager.store.read() is None, "nothing stored"


# ---- refresh_now: the keep-alive reports what the token endpoint said ---------------------------------------------
def test_refresh_now_raises_when_the_token_endpoint_refuses_the_stored_refresh_token(v3):
    """A process refreshed with the stored token R1 (rotated to R2) and died before storing R2: the store holds
    R1 and an access token still valid for hours. The keep-alive must say the chain is broken, not 'fresh'."""
    cid = next(iter(v3.v3.view.campaigns))
    hook = ConstantContactV3Hook()
    hook.get_campaign(cid)
    stored = hook.tokens.store.read()
    assert stored is not None
    time.sleep(1.1)  # the token endpoint's 1 a second
    lost = requests.post(v3.token_url, data={"grant_type": "refresh_token", "refresh_token": stored.refresh_token},
                         auth=(hook.settings.client_id, hook.settings.client_secret), timeout=10)
    assert lost.status_code == 200, "R1 rotated to R2, which no store holds"
    before = len(refreshes(v3))
    fresh_process = TokenManager(hook.settings, hook.tokens.store)
    with pytest.raises(ConstantContactTokenError, match="refresh-token chain is broken") as info:
        fresh_process.refresh_now()
    assert "python -m airflow_provider_cc.auth login --conn-id constant_contact_v3_default" in str(info.value)
    asked = [c[2] for c in refreshes(v3)[before:] if c[2] != "too_many_requests"]
    assert asked[:1] == ["invalid_grant"], "the token endpoint was asked, and refused"


def test_refresh_now_calls_the_token_endpoint_although_the_access_token_is_valid(v3):
    hook = ConstantContactV3Hook()
    hook.get_campaign(next(iter(v3.v3.view.campaigns)))
    first = hook.tokens.store.read()
    time.sleep(1.1)
    state = hook.tokens.refresh_now()
    assert first is not None and state.refresh_token != first.refresh_token
    assert [c[2] for c in refreshes(v3) if c[2] != "too_many_requests"] == ["ok", "ok"]
    assert hook.tokens.store.read() == state and v3.v3.oauth.chain_intact(state.refresh_token)


# ---- an expiry already past: a clock skew, not a reason to refresh on every request ------------------------------
def _jwt(claims: dict[str, Any]) -> str:
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return ".".join((part({"alg": "RS256"}), part(claims), "c2lnbmF0dXJl"))


@pytest.mark.parametrize("stated", [
    {"expires_in": 1_200_000_000},  # read as an epoch time: 2008
    {"expires_in": -60},
    {"jwt": True},  # exp two hours ago (the authorization server's clock is behind), iat an hour before it
], ids=["expires-in-2008", "expires-in-negative", "jwt-exp-2-h-ago"])
def test_a_stated_expiry_already_past_does_not_make_every_request_refresh(endpoint, tmp_path, monkeypatch, caplog,
                                                                          stated):
    from airflow_provider_cc.auth import tokens

    monkeypatch.setattr(tokens, "_skew_logged", threading.Event(), raising=False)  # once per process: again

    def respond(h: HostileHandler, n: int) -> None:
        form(h)
        answer = good(n)
        if "jwt" in stated:
            exp = int(time.time()) - 7200
            answer.update(access_token=_jwt({"iat": exp - 3600, "exp": exp}), expires_in=None)
        else:
            answer.update(stated)
        h.answer(200, answer)

    server = endpoint(respond)
    manager = server.manager(str(tmp_path / "tokens"))
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        manager.access_token()
    assert manager.token_calls == 1, "one refresh serves every call"
    state = manager.store.read()
    assert state is not None and state.expires_at > time.time() + 60
    assert caplog.text.count("expired") == 1 and "clock" in caplog.text, "the skew is logged, once"


@pytest.mark.parametrize(("answer", "lives"), [
    ({"expires_in": 3600}, 3600),
    ({"expires_in": 1_200_000_000}, 600),  # an epoch time long past: not believed
    ({"expires_in": 0}, 600),
    ({"expires_in": float("inf")}, 86_400),  # unreadable: as if none
    ({"expires_in": 1e300}, 86_400),  # at most 24 hours, what Constant Contact's tokens live
    ({"expires_in": 10**12}, 86_400),  # an epoch time in the year 33658: at most 24 hours too
    ({"expires_in": 30 * 86_400}, 86_400),
    ({}, 86_400),
    ({"expires_in": 3600, "access_token": _jwt({"iat": 0, "exp": 1000})}, 3600),  # the JWT's past exp ignored
    ({"access_token": _jwt({"iat": 1000, "exp": 4600})}, 3600),  # past, but its own lifetime: an hour
    ({"expires_in": 7200, "access_token": _jwt({"exp": 1e10})}, 7200),  # the earliest still ahead
])
def test_expiry_of_believes_only_an_expiry_ahead(answer, lives):
    from airflow_provider_cc.auth.tokens import expiry_of

    now = 2_000_000_000.0
    assert expiry_of(answer, now) == pytest.approx(now + lives, abs=1)


# ---- a store that reads as empty where it cannot be is failing, not empty --------------------------------------------
class BlindStore(FileTokenStore):
    """A store that, once ``blind``, reads as empty (Airflow's 404 for a Variable it cannot read)."""

    blind = False

    def read(self) -> TokenState | None:
        return None if self.blind else super().read()


def test_a_store_that_reads_as_empty_after_it_held_tokens_is_a_store_error_not_a_broken_chain(v3, tmp_path):
    cid = next(iter(v3.v3.view.campaigns))
    store = BlindStore(str(tmp_path / "tokens"), store_of(str(tmp_path / "tokens")).key)
    hook = ConstantContactV3Hook(token_store=store)
    hook.get_campaign(cid)  # the store now holds R1; the connection's R0 is rotated away
    token = hook.tokens.access_token()
    hook.tokens.unauthorized(token)  # the next call needs a refresh
    store.blind = True
    before = len(refreshes(v3))
    with pytest.raises(ConstantContactTokenStoreError, match="reads as empty.*Task retries apply"):
        hook.tokens.access_token()
    assert len(refreshes(v3)) == before, "no refresh with the connection's dead token"
    store.blind = False
    assert v3.v3.oauth.chain_intact(store.read().refresh_token), "the chain is intact"  # type: ignore[union-attr]
