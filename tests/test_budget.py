"""A task's requests across its threads: one hook per thread on the key's one limiter, the budget before each."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from airflow_provider_cc._compat import AirflowTaskTerminated
from airflow_provider_cc.budget import Budget, BudgetSpent, Stopped, ThreadHooks
from airflow_provider_cc.emulator import FaultConfig
from airflow_provider_cc.exceptions import ConstantContactError
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.stopping import Stopper
from tests.conftest import start_emulator


def test_the_budget_counts_and_refuses_the_request_past_it():
    budget = Budget(2)
    budget.take()
    budget.take()
    with pytest.raises(BudgetSpent):
        budget.take()
    assert budget.used == 2
    unlimited = Budget(None)
    for _ in range(50):
        unlimited.take()
    assert unlimited.used == 50


def test_a_stop_refuses_requests_and_commits():
    stopper = Stopper("account")
    budget = Budget(None, stopper)
    budget.check_stop()
    stopper.stop()
    with pytest.raises(AirflowTaskTerminated):
        budget.take()
    ending = Budget(None)
    ending.stop.set()
    with pytest.raises(Stopped):
        ending.check_stop()


def test_each_thread_gets_its_own_session_on_the_keys_one_limiter_through_the_budget(emulator):
    budget = Budget(3)
    settings = ConstantContactHook().settings
    hooks = ThreadHooks(ConstantContactHook.default_conn_name, settings, budget)
    seen: list[ConstantContactHook] = []
    threads = [threading.Thread(target=lambda: seen.append(hooks.get())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(h) for h in seen}) == 3 and len({id(h.transport.session) for h in seen}) == 3
    assert len({id(h.transport.limiter._limiter) for h in seen}) == 1, "one limiter for the key"
    cid = emulator.campaign_ids()[0]
    for _ in range(3):
        hooks.campaign(cid)
    with pytest.raises(BudgetSpent):
        hooks.campaign(cid)
    assert len(emulator.requests) == 3 and hooks.requests_sent() == 3
    hooks.close()


@pytest.mark.parametrize("how", ["on_kill", "run_ending"])
def test_a_stop_during_a_retry_wait_ends_the_wait(monkeypatch, how):
    emu = start_emulator(monkeypatch, faults=FaultConfig(error_rate=1.0))  # every answer a 500: retried
    try:
        stopper = Stopper("account")
        budget = Budget(None, stopper)
        settings = dataclasses.replace(ConstantContactHook().settings, backoff=60.0, max_retries=3)
        hooks = ThreadHooks(ConstantContactHook.default_conn_name, settings, budget)
        raised: list[BaseException] = []

        def ask() -> None:
            try:
                hooks.campaign(emu.campaign_ids()[0])
            except BaseException as error:  # what ended the request is the result
                raised.append(error)

        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not emu.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        stopper.stop() if how == "on_kill" else budget.stop.set()
        thread.join(20)  # the retry wait is 30-60 s: only a wait that wakes on the stop ends before this
        assert not thread.is_alive(), "the retry wait did not notice the stop"
        assert isinstance(raised[0], AirflowTaskTerminated if how == "on_kill" else Stopped)
        assert len(emu.requests) == 1, "no retry sent after the stop"
        hooks.close()
    finally:
        emu.stop()


def test_requests_sent_counts_every_attempt_retries_included(monkeypatch):
    emu = start_emulator(monkeypatch, faults=FaultConfig(error_rate=1.0))
    try:
        budget = Budget(None)
        settings = dataclasses.replace(ConstantContactHook().settings, backoff=0.0, max_retries=2)
        hooks = ThreadHooks(ConstantContactHook.default_conn_name, settings, budget)
        with pytest.raises(ConstantContactError):
            hooks.campaign(emu.campaign_ids()[0])
        assert hooks.requests_sent() == hooks.get().transport.requests_sent == len(emu.requests) == 3
        hooks.close()
    finally:
        emu.stop()
