"""The Redis limiter against a real redis-server: worker processes on one key share its rate, its
slow-downs and its lowest configured rate; a missing package or an unreachable Redis fails clearly."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import pytest

from airflow_provider_cc.emulator import DataConfig, FaultConfig
from airflow_provider_cc.exceptions import ConstantContactInputError, ConstantContactRateLimiterError
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.hooks.limiter import RedisRateLimiter, key_identity
from tests import warm
from tests.conftest import ROOT, start_emulator
from tests.redis_server import free_port

TASK = """
import json, sys
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
hook = ConstantContactHook()
hook.transport  # connection read, limiter ready
print("ready", flush=True)
sys.stdin.readline()
stream = hook.iter_campaign_tracking(sys.argv[1], "sends", limit=10)
print(json.dumps({"records": sum(1 for _ in stream), "pages": stream.pages}), flush=True)
"""


def wait_ready(proc: warm.Task) -> None:
    """Read the task's output up to its "ready" line (Airflow may log a line or two first)."""
    assert proc.stdout is not None
    for _ in range(50):
        line = proc.stdout.readline()
        if line.strip() == "ready":
            return
        if not line:
            break
    raise AssertionError(f"a task did not start: {proc.stderr.read() if proc.stderr else ''}"[-3000:])


def run_tasks(campaign_ids: list[str], env: dict[str, str], task: str = TASK) -> list[subprocess.CompletedProcess[str]]:
    """One real process per campaign (forked warm: :mod:`tests.warm`), all started together once every one is
    ready."""
    procs = [warm.start(task, cid, env=env, cwd=str(ROOT)) for cid in campaign_ids]
    try:
        for proc in procs:
            wait_ready(proc)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_four_processes_on_one_key_share_its_rate_through_redis(monkeypatch, redis_server):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=4, activities=60), FaultConfig(qps=4),
                         requests_per_second=4, max_retries=0, rate_limiter_url=redis_server.url)
    try:
        env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
        results = run_tasks(emu.campaign_ids(), env)
    finally:
        emu.stop()
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout.strip().splitlines()[-1]) == {"records": 60, "pages": 6}
    assert emu.statuses == {200: 24}, "no over-qps answer across the four processes"


def test_slowdowns_and_the_lowest_rate_are_shared_between_processes(redis_server):
    identity = key_identity("https://api.example.com", "shared-key")
    one, two = RedisRateLimiter(redis_server.url, identity), RedisRateLimiter(redis_server.url, identity)
    owners = [type("Owner", (), {})() for _ in range(2)]
    one.register(owners[0], 4)
    two.register(owners[1], 2)
    two.acquire().finish()
    slot = one.acquire()
    assert one.last_rate == 2.0, "the lowest rate configured in any process applies"
    slot.finish()
    one.penalise(slot)
    one.penalise(slot)  # the same slow-down: no second decrease
    two.acquire().finish()
    # Halved to 1, recovering by 0.1 requests/s each second: below 2 for 10 s, however slow the machine.
    assert 1.0 <= two.last_rate < 2.0, "the other process slowed down too, and recovers gradually"
    client = redis_server.client()
    assert all(b"shared-key" not in name for name in client.keys("*")), "Redis keeps a hash of the key only"
    names = [name.decode() for name in client.keys(f"cc-limiter:{{{identity}}}:*")]
    assert sorted(names) == sorted(f"cc-limiter:{{{identity}}}:{n}" for n in ("counted", "rates", "seen", "slowdown"))
    assert all(0 < client.pttl(name) <= RedisRateLimiter.KEY_TTL_MS for name in names), "keys expire"


def test_an_unreachable_redis_fails_before_any_request(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emulator.connection_json(
        rate_limiter_url=f"redis://127.0.0.1:{free_port()}/0", redis_password="redis-password"))
    with pytest.raises(ConstantContactRateLimiterError, match="shared rate limiter \\(Redis\\) failed") as info:
        ConstantContactHook().get_campaign(emulator.campaign_ids()[0])
    assert "redis-password" not in str(info.value)
    assert emulator.requests == []


def test_without_the_redis_package_the_error_says_what_to_install(emulator):
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from airflow_provider_cc.hooks.connection import ConnectionSettings\n"
        "from airflow_provider_cc.hooks.transport import Transport\n"
        "from airflow_provider_cc.exceptions import ConstantContactInputError\n"
        f"s = ConnectionSettings(base_url={emulator.url!r}, api_key='k', token='t', "
        "rate_limiter_url='redis://127.0.0.1:1/0')\n"
        "try:\n    Transport(s)\nexcept ConstantContactInputError as e:\n    print(e)\n"
    )
    proc = warm.start(code)
    out, err = proc.communicate(timeout=600)
    assert "pip install 'airflow-provider-constant-contact[redis]'" in out, err[-2000:]
    assert emulator.requests == []


def test_a_rate_limiter_url_that_is_not_redis_is_refused(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emulator.connection_json(
        rate_limiter_url="http://user:pw@cache:6379"))
    with pytest.raises(ConstantContactInputError, match="rate_limiter_url must be a Redis URL") as info:
        ConstantContactHook().get_campaign(emulator.campaign_ids()[0])
    assert "pw" not in str(info.value)


def _counted_key(client: Any, identity: str) -> str:
    return f"cc-limiter:{{{identity}}}:counted"


@pytest.mark.parametrize("ahead", [3600.0, float("inf")])
def test_entries_from_a_clock_ahead_of_redis_cost_at_most_a_window_not_the_skew(redis_server, caplog, ahead):
    """h5: scores an hour (or +inf) ahead of Redis's TIME, as after a failover to a replica whose clock is
    behind: the limiter used to sleep the whole skew in one time.sleep (or fail with a bare OverflowError)."""
    identity = key_identity("https://api.example.com", f"skewed-{ahead}")
    limiter = RedisRateLimiter(redis_server.url, identity)
    owner = type("Owner", (), {})()
    limiter.register(owner, 4)
    limiter.acquire().finish()  # creates the keys
    client = redis_server.client()
    now = float(client.time()[0])
    client.zadd(_counted_key(client, identity), {f"old-clock-{i}": now + ahead for i in range(4)})
    asked: list[float] = []

    def sleep(seconds: float) -> None:  # the waits the limiter asks for, in seconds it computed (not measured)
        asked.append(seconds)
        assert seconds <= 1.01, f"a wait of {seconds} s: more than one window (the skew)"
        time.sleep(seconds)

    limiter.acquire(sleep)
    assert sum(asked) <= 2.02, f"waits of {asked}: at most about one window in all"
    assert "counted" in caplog.text and "clock" in caplog.text
    scores = [score for _, score in client.zrange(_counted_key(client, identity), 0, -1, withscores=True)]
    assert max(scores) < float(client.time()[0]) + 2, "the future entries were counted again as of now"


def test_a_stop_interrupts_a_wait_on_the_redis_limiter(redis_server):
    identity = key_identity("https://api.example.com", "stopped-key")
    limiter = RedisRateLimiter(redis_server.url, identity)
    owner = type("Owner", (), {})()
    limiter.register(owner, 0.5)  # one start per two seconds
    limiter.acquire().finish()

    class Stop(Exception):
        pass

    def stopping_sleep(seconds: float) -> None:
        raise Stop()

    with pytest.raises(Stop):  # waited through the given sleep, which the stop interrupts
        limiter.acquire(stopping_sleep)


def test_a_slowdown_dated_in_the_future_does_not_hold_the_rate_down(redis_server):
    identity = key_identity("https://api.example.com", "future-slowdown")
    limiter = RedisRateLimiter(redis_server.url, identity)
    owner = type("Owner", (), {})()
    limiter.register(owner, 4)
    limiter.acquire().finish()
    client = redis_server.client()
    now = float(client.time()[0])
    client.hset(f"cc-limiter:{{{identity}}}:slowdown", mapping={"r0": "0.5", "t0": f"{now + 3600:.6f}"})
    limiter.acquire().finish()
    time.sleep(1.1)
    limiter.acquire().finish()
    assert limiter.last_rate > 0.5, "the slow-down recovers from Redis's now, not from an hour ahead"


def test_a_bracket_host_left_open_in_the_url_is_a_clear_error_before_any_secret_is_read(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emulator.connection_json(
        rate_limiter_url="redis://:s3cret-pw@[::1/0"))
    with pytest.raises(ConstantContactInputError, match="rate_limiter_url is not a valid Redis URL") as info:
        ConstantContactHook().settings  # noqa: B018
    assert "s3cret-pw" not in str(info.value) and info.value.__cause__ is None
    assert emulator.requests == []
