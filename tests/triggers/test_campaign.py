"""The trigger: exact serialization, and run() under asyncio against the emulator."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from airflow_provider_cc.emulator import FaultConfig
from airflow_provider_cc.triggers.campaign import ConstantContactCampaignSentTrigger

if TYPE_CHECKING:
    from airflow_provider_cc._compat import TriggerEvent


def first_event(trigger: ConstantContactCampaignSentTrigger, *, during=None) -> TriggerEvent:
    async def main() -> TriggerEvent:
        if during:
            asyncio.get_running_loop().call_later(*during)
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
    event = first_event(ConstantContactCampaignSentTrigger(cid, poll_interval=0.05),
                        during=(0.4, emulator.set_status, cid, "SENT"))
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
    from tests.conftest import start_emulator

    emu = start_emulator(monkeypatch, faults=FaultConfig(latency=0.4))
    cid = emu.campaign_ids("SCHEDULED")[0]
    gaps: list[float] = []

    async def main() -> TriggerEvent:
        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        trigger = ConstantContactCampaignSentTrigger(cid, poll_interval=0.05, end_time=time.time() + 1.5)
        event = await trigger.run().__anext__()
        ticker.cancel()
        return event

    try:
        event = asyncio.run(main())
    finally:
        emu.stop()
    assert event.payload["status"] == "timeout"
    assert len([p for p, _ in emu.requests]) >= 2 and max(gaps) < 0.3, max(gaps)
