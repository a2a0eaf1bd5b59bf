"""The in-process limiter of an API key: one per key at the lowest configured rate, robust to a loaded
machine and to servers that count late, slowing down after an over-qps answer and recovering after."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from airflow_provider_cc.emulator import DataConfig, FaultConfig
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.hooks import limiter as limiter_module
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.hooks.limiter import LocalRateLimiter, Slot, window
from airflow_provider_cc.hooks.transport import OVER_QPS, RetryPolicy
from tests import reaper
from tests.conftest import run_threads, start_emulator


def pull(conn_id: str, campaign_id: str, pages: int, errors: list[Exception]) -> None:
    try:
        stream = ConstantContactHook(conn_id).iter_campaign_tracking(campaign_id, "sends", limit=10)
        assert len(list(stream)) == pages * 10 and stream.pages == pages
    except Exception as exc:  # collected: a thread's failure must fail the test
        errors.append(exc)


def test_two_hooks_on_one_key_share_one_limiter_at_the_lowest_rate(monkeypatch):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=2, activities=40), FaultConfig(qps=2))
    try:
        for conn_id, rate in (("CC_FAST", 4), ("CC_SLOW", 2)):
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", emu.connection_json(requests_per_second=rate,
                                                                              max_retries=0))
        fast, slow = ConstantContactHook("cc_fast"), ConstantContactHook("cc_slow")
        assert fast.transport.limiter is slow.transport.limiter
        errors: list[Exception] = []
        threads = [threading.Thread(target=pull, args=(conn, cid, 4, errors))
                   for conn, cid in zip(("cc_fast", "cc_slow"), emu.campaign_ids(), strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        emu.stop()
    assert errors == [] and emu.statuses == {200: 8}, (errors, emu.statuses)


def test_a_server_that_counts_late_gets_no_over_qps(monkeypatch):
    """Every fifth request is counted 120 ms late (a busy gateway): starts spaced by the clock alone put a
    fifth request into the server's second; counting a quick answer at its arrival does not."""
    # What "quick" means is not under test: on a busy machine an answer may take longer than the 0.25 s the
    # limiter takes as exact, and is then counted at its start plus a margin, which a server counting 120 ms
    # late defeats (the documented trade-off). Every answer counts as quick here, so the test holds at any load.
    monkeypatch.setattr(limiter_module, "EXACT_UP_TO", 600.0)
    emu = start_emulator(monkeypatch, DataConfig(campaigns=1, activities=150), FaultConfig(qps=4),
                         requests_per_second=4, max_retries=0)
    answer, calls = emu.server.answer, [0]

    def late(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] % 5 == 1:
            time.sleep(0.12)
        return answer(*args, **kwargs)

    emu.server.answer = late  # type: ignore[method-assign]
    try:
        stream = ConstantContactHook().iter_campaign_tracking(emu.campaign_ids()[0], "sends", limit=10)
        assert len(list(stream)) == 150
    finally:
        emu.stop()
    assert emu.statuses == {200: 15}


def test_one_task_on_a_loaded_machine_gets_no_over_qps(monkeypatch, cpu_load):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=1, activities=200), FaultConfig(qps=4),
                         requests_per_second=4, max_retries=0)
    try:
        stream = ConstantContactHook().iter_campaign_tracking(emu.campaign_ids()[0], "sends", limit=10)
        assert len(list(stream)) == 200
    finally:
        emu.stop()
    assert cpu_load.poll() is None, "the load ran throughout"
    assert emu.statuses == {200: 20}


def test_an_over_qps_answer_slows_the_key_then_it_recovers(hostile, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    summary = {"sends": 1, "opens": 0, "clicks": 0, "forwards": 0, "unsubscribes": 0, "bounces": 0}
    answers = [(403, [{"error_key": OVER_QPS, "error_message": "over qps"}]), (200, summary)]
    hostile.respond = lambda h, n: h.answer(*answers[min(n, 2) - 1])
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", hostile.connection(requests_per_second=4))
    hook = ConstantContactHook()
    assert hook.get_campaign_summary(1)["sends"] == 1
    limiter = hook.transport.limiter
    assert isinstance(limiter, LocalRateLimiter)
    # Halved to 2, then recovering by 0.2 requests/s each second: below 4 for 10 s, however slow the machine.
    assert 2.0 <= limiter.effective_rate() < 4.0, "halved, recovering by 0.2 requests/s each second"
    wait = float(re.search(r"retry 1 of 2 in ([\d.]+) s", caplog.text).group(1))  # type: ignore[union-attr]
    assert 0.5 <= wait <= 1.0, "a jittered wait, not a fixed second"
    assert "slows to 2.00 requests/s" in caplog.text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_aimd_decrease_once_per_slowdown_and_linear_recovery():
    clock = Clock()
    limiter = LocalRateLimiter(clock)
    owner = type("Owner", (), {})()
    limiter.register(owner, 4)
    first, second = limiter.acquire(), limiter.acquire()
    limiter.penalise(first)
    limiter.penalise(second)  # started before the slow-down: the same congestion, no second decrease
    assert limiter.effective_rate() == 2.0
    clock.now += 5
    assert limiter.effective_rate() == pytest.approx(3.0)
    later = limiter.acquire()
    limiter.penalise(later)  # a new over-qps answer: half of 3
    assert limiter.effective_rate() == pytest.approx(1.5)
    clock.now += 100
    assert limiter.effective_rate() == 4.0
    for _ in range(6):  # over-qps answers to requests started after each slow-down
        clock.now += 0.001
        limiter.penalise(Slot(None, clock.now))
        clock.now += 0.001
    assert limiter.effective_rate() == pytest.approx(0.5, abs=0.01), "never below 1/8 of the rate"


def test_a_slowed_key_spaces_its_requests_further():
    limiter = LocalRateLimiter()
    owner = type("Owner", (), {})()
    limiter.register(owner, 4)
    limiter.penalise(limiter.acquire())  # now 2 a second: two starts per second window
    starts, answers = [], []
    for _ in range(3):
        slot = limiter.acquire()
        starts.append(slot.start)
        slot.finish()
        answers.append(time.monotonic())
    assert starts[2] >= answers[0] + 1.0, "the third start waits a full window after the first answer"


def test_rates_stop_counting_when_their_hook_is_gone():
    limiter = LocalRateLimiter()
    keep, gone = type("Owner", (), {})(), type("Owner", (), {})()
    limiter.register(keep, 4)
    limiter.register(gone, 1)
    assert limiter.rate == 1
    del gone
    assert limiter.rate == 4


CHURN = """
import gc
from airflow_provider_cc.hooks.limiter import LocalRateLimiter

class Owner:  # in a reference cycle: only the cyclic collector frees it, at some later allocation
    def __init__(self):
        self.me = self

limiter = LocalRateLimiter()
gc.set_threshold(1)  # a collection at nearly every allocation, inside the rates' lock too
for _ in range(2_000):
    owner = Owner()  # alive while read; the earlier ones are collected at any allocation
    limiter.register(owner, 4)
    assert limiter.rate == 4
    del owner
gc.collect()
assert limiter.rate == 0, "a collected hook's rate still counts"
print("done")
"""


def test_a_hook_collected_while_its_thread_reads_the_rates_does_not_deadlock_it():
    """The garbage collector runs a dead hook's finaliser in whatever thread allocates next, which may be one
    holding the rates' lock (seen: an account pull's four threads hung for good). In a process of its own: a
    deadlock there would also stop any thread that collects afterwards, this test's included."""
    proc = reaper.spawn([sys.executable, "-c", CHURN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("reading the rates deadlocked on a finaliser run inside their lock")
    finally:
        reaper.stop(proc)
    assert proc.returncode == 0 and out.strip().endswith("done"), out


def test_window_and_policy_rules():
    assert window(4) == (4, 1.0) and window(0.5) == (1, 2.0) and window(10) == (10, 1.0)
    # Never more than floor(rate) starts in one second: 2 per 0.8 s would let 4 start within a second.
    assert window(2.5) == (2, 1.0) and window(3.99) == (3, 1.0) and window(4 / 3) == (1, 1.0)
    waits = [RetryPolicy().wait_over_qps(1) for _ in range(50)]
    assert all(0.5 <= w <= 1.0 for w in waits) and len(set(waits)) > 40, "jittered, never in lockstep"
    assert all(1.0 <= RetryPolicy().wait_over_qps(1, 1.0) <= 2.0 for _ in range(20)), "Retry-After, plus jitter"
    assert all(2.0 <= RetryPolicy().wait_over_qps(3) <= 4.0 for _ in range(20)), "doubling"
    assert RetryPolicy().wait_over_qps(500) == 60


def test_limiters_are_found_by_a_hash_not_the_key(hostile, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", hostile.connection(api_key="a-secret-key-123"))
    ConstantContactHook().transport  # noqa: B018
    names = json.dumps(list(limiter_module._LOCAL))
    assert "a-secret-key-123" not in names and hostile.url not in names


@pytest.mark.parametrize("url", ["redis://:s3cret@localhost:notaport/0", "redis://:s3cret@[::1/0"])
def test_a_malformed_rate_limiter_url_is_an_input_error_without_its_password(url):
    with pytest.raises(ConstantContactInputError, match="rate_limiter_url") as refused:
        limiter_module.RedisRateLimiter(url, "identity")
    assert "s3cret" not in str(refused.value) and refused.value.__cause__ is None


def test_a_fractional_rate_never_lets_more_than_its_floor_start_in_one_second(monkeypatch):
    """Rates 4 and 3.99 on one key (the lowest, 3.99, applies): three per 0.75 s let six start within one
    second, and the emulator (4 in any second) refused some; three a second it never refuses."""
    emu = start_emulator(monkeypatch, DataConfig(campaigns=2, activities=60), FaultConfig(qps=4))
    try:
        for conn_id, rate in (("CC_FOUR", 4), ("CC_FRACTION", 3.99)):
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", emu.connection_json(requests_per_second=rate,
                                                                              max_retries=0))
        errors: list[Exception] = []
        run_threads([(pull, (conn, cid, 6, errors))
                     for conn, cid in zip(("cc_four", "cc_fraction"), emu.campaign_ids(), strict=True)])
    finally:
        emu.stop()
    assert errors == [] and emu.statuses == {200: 12}, (errors, emu.statuses)


PROCESS_TASK = """
import json, sys
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
hook = ConstantContactHook()
hook.transport
print("ready", flush=True)
sys.stdin.readline()
stream = hook.iter_campaign_tracking(sys.argv[1], "sends", limit=10)
print(json.dumps({"records": sum(1 for _ in stream)}), flush=True)
"""


def test_three_processes_at_four_thirds_stay_within_four_a_second(monkeypatch):
    """The README's advice without Redis, for N = 3: 4 / 3 a second each. One per 0.75 s per process let six
    start within a second across the three; one a second each never draws an over-qps answer."""
    from tests.hooks.test_redis_limiter import run_tasks

    emu = start_emulator(monkeypatch, DataConfig(campaigns=3, activities=60), FaultConfig(qps=4),
                         requests_per_second=4 / 3, max_retries=0)
    try:
        results = run_tasks(emu.campaign_ids(), {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"},
                            task=PROCESS_TASK)
    finally:
        emu.stop()
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout.strip().splitlines()[-1]) == {"records": 60}
    assert emu.statuses == {200: 18}, "no over-qps answer across the three processes"


class Stop(Exception):
    pass


def test_a_wait_in_the_limiter_goes_through_the_given_sleep_and_a_stop_ends_it():
    """The account operator's stop interrupts the transport's sleep; the limiter's waits use it too."""
    limiter = LocalRateLimiter()
    owner = type("Owner", (), {})()
    limiter.register(owner, 1)
    limiter.acquire()
    asked: list[float] = []

    def stopping_sleep(seconds: float) -> None:
        asked.append(seconds)
        raise Stop()

    with pytest.raises(Stop):  # the limiter's own wait would have ended in a slot, not in Stop
        limiter.acquire(stopping_sleep)
    assert len(asked) == 1 and 0 < asked[0] <= 1.0
