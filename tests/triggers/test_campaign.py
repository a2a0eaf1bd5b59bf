"""The trigger: exact serialization, and run() under asyncio against the emulator."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING

import pytest

from airflow_provider_cc.emulator import FaultConfig
from airflow_provider_cc.triggers.campaign import ConstantContactCampaignSentTrigger

if TYPE_CHECKING:
    from airflow_provider_cc._compat import TriggerEvent


def first_event(trigger: ConstantContactCampaignSentTrigger) -> TriggerEvent:
    async def main() -> TriggerEvent:
        return await trigger.run().__anext__()

    return asyncio.run(asyncio.wait_for(main(), timeout=30))


def test_serialize_is_exact_and_json_only():
    trigger = ConstantContactCampaignSentTrigger("42", "my_conn", poll_interval=60, end_time=1700000000.5)
    assert trigger.serialize() == (
        "airflow_provider_cc.triggers.campaign.ConstantContactCampaignSentTrigger",
        {"campaign_id": "42", "constant_contact_conn_id": "my_conn", "poll_interval": 60.0,
         "end_time": 1700000000.5},
    )
    classpath, kwargs = trigger.serialize()
    assert type(ConstantContactCampaignSentTrigger(**kwargs)).__name__ == classpath.rsplit(".", 1)[1]


def test_sent_campaign_fires_success(emulator):
    cid = emulator.campaign_ids()[0]
    event = first_event(ConstantContactCampaignSentTrigger(cid, poll_interval=0.05))
    assert event.payload["status"] == "success"
    assert event.payload["campaign"]["campaign_id"] == cid and event.payload["campaign"]["last_run_date"]


def test_waits_until_the_campaign_is_sent(emulator):
    cid = emulator.campaign_ids("SCHEDULED")[0]
    polled = lambda: len([p for p, _ in emulator.requests if p.endswith(cid)]) >= 3  # noqa: E731
    sender = _once(polled, lambda: emulator.set_status(cid, "SENT"))  # sent after three checks, however slow
    event = first_event(ConstantContactCampaignSentTrigger(cid, poll_interval=0.05))
    sender.join()
    assert event.payload["status"] == "success" and event.payload["campaign"]["status"] == "SENT"
    polls = [p for p, _ in emulator.requests if p.endswith(cid)]
    assert len(polls) >= 3, "it polled while the campaign was SCHEDULED"


def test_timeout(emulator):
    cid = emulator.campaign_ids("SCHEDULED")[0]
    event = first_event(ConstantContactCampaignSentTrigger(cid, poll_interval=0.05, end_time=time.time() + 0.3))
    assert event.payload["status"] == "timeout" and "SCHEDULED" in event.payload["message"]


@pytest.mark.parametrize(("status", "words"), [("DELETED", "not found"), ("missing", "not found")])
def test_deleted_and_unknown_campaigns_are_error_events(emulator, status, words):
    cid = emulator.campaign_ids(status)[0] if status != "missing" else "999"
    event = first_event(ConstantContactCampaignSentTrigger(cid, poll_interval=0.05))
    assert event.payload["status"] == "error" and words in event.payload["message"]


def test_run_does_not_block_the_event_loop(monkeypatch):
    """Each answer waits until the event loop has run something else while the request was out: a trigger that
    blocked the loop on its request would hold every answer back for 20 s, and ``answered`` says so."""
    from tests.conftest import start_emulator

    emu = start_emulator(monkeypatch)
    cid = emu.campaign_ids("SCHEDULED")[0]
    out: list[threading.Event] = []  # one per request in flight; the loop's other task sets them
    answered: list[bool] = []  # per request: whether the loop ran while it was out
    serve = emu.server.answer

    def held_answer(*args, **kwargs):
        ran = threading.Event()
        out.append(ran)
        answered.append(ran.wait(20))
        return serve(*args, **kwargs)

    emu.server.answer = held_answer  # type: ignore[method-assign]

    async def main() -> TriggerEvent:
        async def tick() -> None:
            while True:
                await asyncio.sleep(0.01)
                for ran in list(out):
                    ran.set()

        ticker = asyncio.create_task(tick())
        trigger = ConstantContactCampaignSentTrigger(cid, poll_interval=0.05, end_time=time.time() + 60)
        ender = _once(lambda: len(answered) >= 2, lambda: setattr(trigger, "end_time", time.time()))
        event = await trigger.run().__anext__()
        ticker.cancel()
        ender.join()
        return event

    try:
        event = asyncio.run(main())
    finally:
        emu.stop()
    assert event.payload["status"] == "timeout"
    assert len(answered) >= 2 and all(answered), answered


def _once(condition, then) -> threading.Thread:
    """A thread that calls ``then()`` once ``condition()`` holds (checked every 10 ms, for at most 60 s)."""
    def watch() -> None:
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# ---- outages: waited through until the timeout; only permanent errors end the wait -----------------------

def _recover_after(emulator, failures: int, then=None) -> threading.Thread:
    """Once the emulator has answered ``failures`` requests with a fault, serve normally again."""
    def watch() -> None:
        deadline = time.monotonic() + 60
        while emulator.server.faults.requests < failures and time.monotonic() < deadline:
            time.sleep(0.01)
        emulator.set_faults(FaultConfig())
        if then is not None:
            then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "fault",
    [FaultConfig(error_rate=1.0), FaultConfig(drop_rate=1.0), FaultConfig(malformed_rate=1.0)],
    ids=["500s", "dropped connections", "malformed bodies"],
)
def test_transient_failures_are_waited_through(monkeypatch, caplog, capsys, fault):
    from tests.conftest import start_emulator

    emu = start_emulator(monkeypatch, faults=fault, max_retries=1)  # a failed check = 2 faulty answers
    try:
        cid = emu.campaign_ids()[0]
        watcher = _recover_after(emu, 6)  # three failed checks, then recovery
        with caplog.at_level(logging.WARNING):
            event = first_event(ConstantContactCampaignSentTrigger(cid, poll_interval=0.05,
                                                                   end_time=time.time() + 60))
        watcher.join()
    finally:
        emu.stop()
    assert event.payload["status"] == "success" and event.payload["campaign"]["campaign_id"] == cid
    captured = capsys.readouterr()  # the trigger logs through Airflow 3's structlog, or stdlib logging on 2
    logged = caplog.text + captured.out + captured.err
    assert logged.count("the check failed for now") >= 2, logged
    assert emu.api_key not in logged and emu.token not in logged


def test_over_qps_answers_are_waited_through(scripted):
    over_qps = [{"error_key": "mashery.not.authorized.over.qps", "error_message": "over qps"}]
    path = "/v2/emailmarketing/campaigns/42"
    for _ in range(4):  # two checks of three attempts each, then the answer
        scripted.add(path, 403, over_qps, {"Retry-After": "0.01"})
    scripted.add(path, 200, {"id": "42", "name": "n", "status": "SENT", "last_run_date": "2024-01-01T00:00:00.000Z"})
    event = first_event(ConstantContactCampaignSentTrigger("42", poll_interval=0.05, end_time=time.time() + 60))
    assert event.payload["status"] == "success" and len(scripted.seen) == 5


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [(401, [{"error_key": "http.status.unauthorized", "error_message": "token"}], "authentication failed"),
     (403, [{"error_key": "mashery.not.authorized.inactive", "error_message": "inactive"}], "api_key is inactive"),
     (403, [{"error_key": "mashery.not.authorized.over.ratelimit", "error_message": "quota"}], "quota"),
     (404, [{"error_key": "http.status.not_found", "error_message": "gone"}], "not found"),
     (400, [{"error_key": "query.param.invalid", "error_message": "bad"}], "refused the request")],
    ids=["401", "inactive key", "quota spent", "404", "400"],
)
def test_permanent_errors_end_the_wait_with_an_error_event(scripted, status, body, words):
    scripted.add("/v2/emailmarketing/campaigns/42", status, body)
    event = first_event(ConstantContactCampaignSentTrigger("42", poll_interval=0.05, end_time=time.time() + 60))
    assert event.payload["status"] == "error" and words in event.payload["message"]
    assert len(scripted.seen) == 1, "a permanent error is not retried"
    assert "scripted-key" not in event.payload["message"] and "scripted-token" not in event.payload["message"]


def test_an_outage_lasting_to_the_timeout_is_reported_as_unavailable_not_as_an_error(monkeypatch):
    from tests.conftest import start_emulator

    emu = start_emulator(monkeypatch, faults=FaultConfig(error_rate=1.0), max_retries=1)
    try:
        cid = emu.campaign_ids("SCHEDULED")[0]
        trigger = ConstantContactCampaignSentTrigger(cid, poll_interval=0.05, end_time=time.time() + 60)
        # The timeout comes once two checks (four answers) failed, however slow the machine is.
        _once(lambda: emu.statuses.get(500, 0) >= 4, lambda: setattr(trigger, "end_time", time.time()))
        event = first_event(trigger)
    finally:
        emu.stop()
    assert event.payload["status"] == "unavailable" and "HTTP 500" in event.payload["message"]
    assert emu.statuses.get(500, 0) >= 4, "it kept checking through the outage"


@pytest.mark.parametrize(
    ("body", "headers"),
    [([1], {}), (None, {}), (b"[" * 100_000 + b"]" * 100_000, {}), (b"{}", {"Content-Encoding": "br"}),
     ({"id": "42", "name": "n"}, {}), ({"id": "42", "status": "SENT", "tracking_summary": []}, {})],
    ids=["an array", "null", "JSON nested too deep", "an encoding not asked for", "no status", "a summary array"],
)
def test_malformed_answers_are_waited_through(scripted, body, headers):
    path = "/v2/emailmarketing/campaigns/42"
    for _ in range(6):  # two checks of three attempts each
        scripted.add(path, 200, body, headers)
    scripted.add(path, 200, {"id": "42", "name": "n", "status": "SENT", "last_run_date": "2024-01-01T00:00:00.000Z"})
    event = first_event(ConstantContactCampaignSentTrigger("42", poll_interval=0.05, end_time=time.time() + 60))
    assert event.payload["status"] == "success" and len(scripted.seen) == 7


def test_an_unreachable_shared_rate_limiter_is_waited_through(monkeypatch):
    import json

    from tests.conftest import start_emulator
    from tests.redis_server import RedisServer, free_port

    port = free_port()  # no Redis on it, for now
    emu = start_emulator(monkeypatch)
    conn = json.loads(emu.connection_json(rate_limiter_url=f"redis://127.0.0.1:{port}/0", requests_per_second=4))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps(conn))
    redis: list[RedisServer] = []
    try:
        cid = emu.campaign_ids()[0]
        started = threading.Timer(0.5, lambda: redis.append(RedisServer(port=port)))
        started.start()
        event = first_event(ConstantContactCampaignSentTrigger(cid, poll_interval=0.2, end_time=time.time() + 25))
        started.join()
        assert event.payload["status"] == "success", event.payload
    finally:
        for server in redis:
            server.stop()
        emu.stop()
