"""v3 tokens through real HTTP against the emulator's OAuth2 server: cached, shared, refreshed one at a time,
rotated safely (persisted before use), recovered after invalid_grant, and failing clearly when broken."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests

from airflow_provider_cc.auth.store import FileTokenStore, TokenState
from airflow_provider_cc.auth.tokens import TokenManager, manager_for
from airflow_provider_cc.emulator import V3Options
from airflow_provider_cc.exceptions import ConstantContactTokenError, ConstantContactTokenStoreError
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
from tests.conftest import ROOT, V3_CONN_ENV, start_v3

WORKER = """
import json, sys, time
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
hook = ConstantContactV3Hook()
cid = sys.argv[1]
print("ready", flush=True)
sys.stdin.readline()
deadline = time.monotonic() + float(sys.argv[2])
done, errors = 0, []
while time.monotonic() < deadline:
    try:
        hook.get_campaign(cid)
        done += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:300])
    time.sleep(0.05)
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
    ("airflow", 30),
    pytest.param("file", 10, marks=pytest.mark.airflow_independent),
    pytest.param("redis", 10, marks=pytest.mark.airflow_independent),
])
def test_eight_threads_and_four_processes_refresh_one_rotating_chain_without_breaking_it(
        monkeypatch, tmp_path, request, store, seconds):
    """Rotating tokens living 3 s, for 15-30 s: no request fails, the store ends on the chain's head, no
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
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, cid, str(seconds)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                  env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}) for _ in range(4)]
        for proc in procs:
            assert proc.stdout is not None
            while (line := proc.stdout.readline()) and line.strip() != "ready":
                pass
        hook = ConstantContactV3Hook()
        errors: list[str] = []
        done = [0]
        deadline = time.monotonic() + seconds

        def thread_work() -> None:
            own = ConstantContactV3Hook()  # a hook per thread, one token manager per process
            while time.monotonic() < deadline:
                try:
                    own.get_campaign(cid)
                    done[0] += 1
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)

        threads = [threading.Thread(target=thread_work) for _ in range(8)]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 120)
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=seconds + 120)
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
    expiries = seconds / lifetime
    # Rotated more than once, and never more than once per expiry. Not "once per expiry" from below: on a busy
    # machine an expiry may pass while no thread or process asks for a token.
    assert 2 <= len(calls) <= seconds / (lifetime * 0.8) + 3, (len(calls), expiries)
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
    killed = subprocess.run([sys.executable, "-c", KILLED, str(store.directory), store.key, cid], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
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
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"))
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
