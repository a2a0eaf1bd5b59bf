"""The event trigger itself: its input checked before any request, no secret in what it serializes or fires,
its watermark kept in the watched asset's state store so a re-created trigger announces nothing twice, and
errors that never fire an event. Airflow 2 has no event triggers: there it refuses to be made, clearly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math

import pytest

from airflow_provider_cc._compat import HAS_EVENT_TRIGGERS
from airflow_provider_cc.emulator import DataConfig
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.triggers import sent as module
from airflow_provider_cc.triggers.sent import ConstantContactCampaignSentEventTrigger
from tests.conftest import start_emulator
from tests.triggers.test_sends import sends

airflow_3 = pytest.mark.skipif(not HAS_EVENT_TRIGGERS, reason="Airflow 3 only (see test_airflow_2_refuses_it)")


class Store:
    """The part of Airflow 3.3's ``AssetStateStoreAccessors`` the trigger uses, as JSON round trips."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def aget(self, key, default=None):
        return json.loads(self.values[key]) if key in self.values else default

    async def aset(self, key, value):
        self.values[key] = json.dumps(value)


@pytest.fixture
def emu(monkeypatch):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=3, contacts=20, activities=10))
    monkeypatch.setattr(module, "MIN_POLL_INTERVAL", 0.01)  # the bound and the spacing, shortened for the tests
    monkeypatch.setattr(module, "EVENT_SPACING", 0.01)
    yield emu
    emu.stop()


def events(trigger, count, *, polls=None, emu=None, during=None):
    """The first ``count`` events, or those within ``polls`` polls (counted by list requests) when given."""
    async def main():
        found = []
        agen = trigger.run()
        try:
            while len(found) < count:
                step = asyncio.ensure_future(agen.__anext__())
                while not step.done():
                    await asyncio.sleep(0.01)
                    if during:
                        during()
                    if polls is not None and emu.served["GET /v2/emailmarketing/campaigns"] >= polls:
                        step.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await step
                        return found
                found.append(step.result().payload)
            return found
        finally:
            await agen.aclose()

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


@airflow_3
@pytest.mark.parametrize("interval", [0, 59, 86_401, math.nan, math.inf, True, "300", None])
def test_the_poll_interval_is_bounded_and_checked_before_any_request(monkeypatch, interval):
    emu = start_emulator(monkeypatch)
    try:
        with pytest.raises(ConstantContactInputError, match="poll_interval must be a number of seconds from 60"):
            ConstantContactCampaignSentEventTrigger(poll_interval=interval)
        with pytest.raises(ConstantContactInputError, match="sent_after"):
            ConstantContactCampaignSentEventTrigger(sent_after="yesterday")
        assert emu.requests == []
    finally:
        emu.stop()


@airflow_3
def test_it_fires_each_send_once_and_a_recreated_trigger_goes_on_from_the_stored_watermark(emu):
    (_, t1), (second, t2), (third, t3) = sends(emu, "v2")
    trigger = ConstantContactCampaignSentEventTrigger(poll_interval=0.01)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_cc.triggers.sent.ConstantContactCampaignSentEventTrigger"
    assert kwargs == {"constant_contact_conn_id": "constant_contact_default", "poll_interval": 0.01,
                      "sent_after": None}
    store = Store()
    trigger.asset_state_store = store
    emu.set_now(t1)
    moved = []

    def send_the_second():  # once the first look has set the floor
        if store.values and not moved:
            moved.append(emu.set_now(t2))

    [payload] = events(trigger, 1, during=send_the_second)
    assert payload == {"campaign_id": second, "name": payload["name"], "sent": t2, "api": "v2",
                       "constant_contact_conn_id": "constant_contact_default"}
    assert payload["name"] == "Campaign 2"
    text = json.dumps(payload) + json.dumps(kwargs) + json.dumps(store.values)
    assert emu.api_key not in text and emu.token not in text

    # The triggerer restarts: the trigger is made again from its kwargs, with the same asset state store.
    again = ConstantContactCampaignSentEventTrigger(**kwargs)
    again.asset_state_store = store
    emu.clear_served()
    assert events(again, 1, polls=3, emu=emu) == []  # the second send is not announced again
    emu.set_now(t3)
    [payload] = events(again, 1)
    assert (payload["campaign_id"], payload["sent"]) == (third, t3)


@airflow_3
def test_several_sends_of_one_poll_are_announced_oldest_first_a_spacing_apart(emu, monkeypatch):
    everything = sends(emu, "v2")
    spacing, slept, real_sleep = 0.0123, [], asyncio.sleep

    async def recording(seconds):
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(module, "EVENT_SPACING", spacing)
    monkeypatch.setattr(module.asyncio, "sleep", recording)
    trigger = ConstantContactCampaignSentEventTrigger(poll_interval=0.01, sent_after="2000-01-01T00:00:00Z")
    payloads = events(trigger, len(everything))
    assert [(p["campaign_id"], p["sent"]) for p in payloads] == everything
    assert slept.count(spacing) == len(everything) - 1  # one poll: a spacing between two events, none before


@airflow_3
def test_an_error_fires_nothing_and_the_poll_goes_on_reading_the_connection_again(emu, monkeypatch):
    (_, t1), (second, t2), _ = sends(emu, "v2")
    emu.set_now(t2)
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT",
                       json.dumps({**emu.connection(max_retries=0), "password": "wrong-token"}))
    trigger = ConstantContactCampaignSentEventTrigger(poll_interval=0.01, sent_after=t1)
    assert events(trigger, 1, polls=3, emu=emu) == []  # three polls answered 401: no event
    assert emu.statuses.get(401, 0) >= 3 and set(emu.statuses) == {401}
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.connection_json())  # fixed
    [payload] = events(trigger, 1)
    assert (payload["campaign_id"], payload["sent"]) == (second, t2)


@pytest.mark.skipif(HAS_EVENT_TRIGGERS, reason="Airflow 2 only")
def test_airflow_2_refuses_it_clearly():
    with pytest.raises(ConstantContactInputError, match="needs Airflow 3.*ConstantContactCampaignSentSensor"):
        ConstantContactCampaignSentEventTrigger()


@airflow_3
def test_a_connection_airflow_cannot_find_is_logged_and_read_again(emu, monkeypatch, capfd):
    (_, t1), (second, t2), _ = sends(emu, "v2")
    emu.set_now(t2)
    monkeypatch.delenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT")
    reads = []
    real = module.hook_in_trigger

    async def counting(conn_id):
        reads.append(conn_id)
        if len(reads) == 3:  # the connection is created while the trigger waits
            monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.connection_json())
        return await real(conn_id)

    monkeypatch.setattr(module, "hook_in_trigger", counting)
    trigger = ConstantContactCampaignSentEventTrigger(poll_interval=0.01, sent_after=t1)
    [payload] = events(trigger, 1)
    assert payload["campaign_id"] == second and len(reads) == 3
    printed = "".join(capfd.readouterr())
    assert "could not be read (connection 'constant_contact_default'" in printed
