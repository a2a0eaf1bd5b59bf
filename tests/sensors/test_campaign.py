"""The sensor: poke against the emulator, failures, deferral and completion from trigger events."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_cc._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow_provider_cc.sensors.campaign import ConstantContactCampaignSentSensor
from airflow_provider_cc.triggers.campaign import ConstantContactCampaignSentTrigger


def sensor(**kwargs) -> ConstantContactCampaignSentSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("deferrable", False)
    return ConstantContactCampaignSentSensor(**kwargs)


def test_poke_follows_the_campaign_from_scheduled_to_sent(emulator):
    cid = emulator.campaign_ids("SCHEDULED")[0]
    op = sensor(campaign_id=cid)
    assert op.poke({}) is False
    emulator.set_status(cid, "SENT")
    done = op.poke({})
    assert done.is_done and done.xcom_value["campaign_id"] == cid and done.xcom_value["status"] == "SENT"


def test_execute_in_poke_mode_waits_for_the_send(emulator):
    cid = emulator.campaign_ids("SCHEDULED")[0]
    threading.Timer(0.5, emulator.set_status, (cid, "SENT")).start()
    op = sensor(campaign_id=cid, poke_interval=0.1, timeout=30, mode="poke")
    result = op.execute({})
    assert result["campaign_id"] == cid and len(emulator.requests) >= 3


@pytest.mark.parametrize("which", ["DELETED", "missing"])
def test_deleted_or_unknown_fails_at_once_or_skips(emulator, which):
    cid = emulator.campaign_ids("DELETED")[0] if which == "DELETED" else "999"
    with pytest.raises(AirflowFailException, match=f"campaign {cid}"):
        sensor(campaign_id=cid, poke_interval=0.1).execute({})
    with pytest.raises(AirflowSkipException):
        sensor(campaign_id=cid, poke_interval=0.1, soft_fail=True).execute({})
    assert len(emulator.requests) == 2, "no polling loop on a dead campaign"


def test_deferrable_defers_with_the_trigger(emulator):
    cid = emulator.campaign_ids("SCHEDULED")[0]
    op = sensor(campaign_id=cid, deferrable=True, poke_interval=42, timeout=600)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, ConstantContactCampaignSentTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert trigger.campaign_id == cid and trigger.poll_interval == 42 and trigger.end_time is not None
    assert deferred.value.timeout.total_seconds() == 600


def test_deferrable_does_not_defer_when_already_sent(emulator):
    cid = emulator.campaign_ids()[0]
    assert sensor(campaign_id=cid, deferrable=True).execute({})["campaign_id"] == cid


def test_default_deferrable_comes_from_config(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert ConstantContactCampaignSentSensor(task_id="w", campaign_id=1).deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert ConstantContactCampaignSentSensor(task_id="w", campaign_id=1).deferrable is False


def test_execute_complete_success():
    op = sensor(campaign_id=1, deferrable=True)
    campaign = {"campaign_id": "1", "name": "n", "status": "SENT", "last_run_date": "2024-01-01T00:00:00.000Z"}
    assert op.execute_complete({}, {"status": "success", "campaign": campaign}) == campaign


def test_execute_complete_error_carries_the_api_message():
    op = sensor(campaign_id=1, deferrable=True)
    with pytest.raises(AirflowFailException, match="authentication failed"):
        op.execute_complete({}, {"status": "error", "message": "campaign 1: authentication failed (HTTP 401)"})


def test_execute_complete_timeout():
    with pytest.raises(AirflowSensorTimeout, match="still SCHEDULED"):
        sensor(campaign_id=1).execute_complete({}, {"status": "timeout", "message": "campaign 1 is still SCHEDULED"})
    with pytest.raises(AirflowSkipException):
        sensor(campaign_id=1, soft_fail=True).execute_complete({}, {"status": "timeout", "message": "late"})


def test_execute_complete_without_event_fails():
    with pytest.raises(AirflowFailException, match="no event"):
        sensor(campaign_id=1).execute_complete({}, None)
