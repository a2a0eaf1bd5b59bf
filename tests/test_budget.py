"""A task's requests across its threads: one hook per thread on the key's one limiter, the budget before each."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_cc._compat import AirflowTaskTerminated
from airflow_provider_cc.budget import Budget, BudgetSpent, Stopped, ThreadHooks
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.stopping import Stopper


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
