"""The sensor and its trigger on a v3 connection, over real HTTP against the emulator's v3 API: a campaign is
sent once it is ``Done`` and an activity of it has a completed send; a removed or unknown one ends the wait."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_cc._compat import AirflowFailException, TaskDeferred
from airflow_provider_cc.sensors.campaign import ConstantContactCampaignSentSensor
from airflow_provider_cc.triggers.campaign import ConstantContactCampaignSentTrigger

V3_CONN_ID = "constant_contact_v3_default"  # where tests.conftest.start_v3 points


@pytest.fixture
def v3emu(monkeypatch, tmp_path):
    from airflow_provider_cc.emulator import DataConfig, V3Options
    from tests.conftest import start_v3

    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig(campaigns=8, contacts=20, activities=10),
                   options=V3Options(resend_every=0))
    yield emu
    emu.stop()


def v3_campaign(emu, status: str):
    return next(c for c in emu.v3.view.campaigns.values() if c.primary.status == status)


def sensor(**kwargs) -> ConstantContactCampaignSentSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("deferrable", False)
    return ConstantContactCampaignSentSensor(constant_contact_conn_id=V3_CONN_ID, **kwargs)


def first_event(trigger: ConstantContactCampaignSentTrigger, *, during=None):
    async def main():
        if during:
            asyncio.get_running_loop().call_later(*during)
        return await trigger.run().__anext__()

    return asyncio.run(asyncio.wait_for(main(), timeout=30))


def test_poke_follows_a_v3_campaign_until_it_is_done_and_sent(v3emu):
    campaign = v3_campaign(v3emu, "SCHEDULED")
    op = sensor(campaign_id=campaign.id)
    assert op.poke({}) is False
    asked = [p for p, _ in v3emu.requests if p.startswith("/v3/")]
    assert asked == [f"/v3/emails/{campaign.id}"], "one request while it is not Done"
    v3emu.set_status(campaign.primary.id, "SENT")
    done = op.poke({})
    assert done.is_done and done.xcom_value["campaign_id"] == campaign.id
    assert done.xcom_value["status"] == "Done" and done.xcom_value["last_run_date"]
    assert done.xcom_value["campaign_activity_id"] == campaign.activities[0].id


@pytest.mark.parametrize("which", ["removed", "unknown"])
def test_a_removed_or_unknown_v3_campaign_fails_at_once(v3emu, which):
    if which == "removed":
        campaign = v3_campaign(v3emu, "DELETED")
        cid = campaign.id
    else:
        cid = "0f0f0f0f-0000-4000-8000-000000000000"
    with pytest.raises(AirflowFailException):
        sensor(campaign_id=cid, poke_interval=0.05, timeout=5).execute({})
    assert len([p for p, _ in v3emu.requests if p.startswith("/v3/emails")]) == 1, "no polling loop"


def test_a_v2_id_on_a_v3_connection_is_refused_before_any_request(v3emu):
    with pytest.raises(AirflowFailException, match="is not a v3 id"):
        sensor(campaign_id="1100394165000").execute({})
    assert not [p for p, _ in v3emu.requests if p.startswith("/v3/")]


def test_the_deferred_wait_on_v3_fires_once_sent(v3emu):
    campaign = v3_campaign(v3emu, "SCHEDULED")
    with pytest.raises(TaskDeferred) as deferred:
        sensor(campaign_id=campaign.id, deferrable=True, poke_interval=0.05, timeout=60).execute({})
    trigger = deferred.value.trigger
    assert trigger.constant_contact_conn_id == V3_CONN_ID
    event = first_event(trigger, during=(0.3, v3emu.set_status, campaign.primary.id, "SENT"))
    assert event.payload["status"] == "success" and event.payload["campaign"]["campaign_id"] == campaign.id
    result = sensor(campaign_id=campaign.id, deferrable=True).execute_complete({}, event.payload)
    assert result["campaign_id"] == campaign.id


def test_the_v3_trigger_times_out_and_reports_removed_campaigns(v3emu):
    waiting = v3_campaign(v3emu, "SCHEDULED")
    event = first_event(ConstantContactCampaignSentTrigger(waiting.id, V3_CONN_ID, poll_interval=0.05,
                                                           end_time=time.time() + 0.3))
    assert event.payload["status"] == "timeout" and "Scheduled" in event.payload["message"]
    removed = v3_campaign(v3emu, "DELETED")
    event = first_event(ConstantContactCampaignSentTrigger(removed.id, V3_CONN_ID, poll_interval=0.05))
    assert event.payload["status"] == "error"
