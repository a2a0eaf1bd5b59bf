"""The sensor: poke against the emulator, failures, deferral and completion from trigger events."""

from __future__ import annotations

import threading
import time

import pendulum
import pytest

from airflow_provider_cc._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow_provider_cc.emulator import FaultConfig
from airflow_provider_cc.exceptions import ConstantContactUnavailableError
from airflow_provider_cc.sensors.campaign import DEFERRAL_GRACE, ConstantContactCampaignSentSensor
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
    assert deferred.value.timeout.total_seconds() == 600 + DEFERRAL_GRACE, "the trigger reports the timeout itself"
    assert trigger.end_time == pytest.approx(time.time() + 600, abs=30)


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


# ---- outages: waited through in every mode, never turned into a skip -------------------------------------

@pytest.fixture
def flaky(monkeypatch):
    """An emulator answering 500 to everything until told otherwise; one retry per check keeps checks quick."""
    from tests.conftest import start_emulator

    emu = start_emulator(monkeypatch, faults=FaultConfig(error_rate=1.0), max_retries=1)
    yield emu
    emu.stop()


def _after_failures(emulator, failures: int, *actions) -> threading.Thread:
    """Once ``failures`` requests were answered with the fault, serve normally and run ``actions``."""
    def watch() -> None:
        deadline = time.monotonic() + 600
        while emulator.server.faults.requests < failures and time.monotonic() < deadline:
            time.sleep(0.01)
        emulator.set_faults(FaultConfig())
        for action in actions:
            action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_poke_treats_an_outage_as_not_yet(flaky):
    cid = flaky.campaign_ids()[0]
    op = sensor(campaign_id=cid)
    assert op.poke({}) is False
    flaky.set_faults(FaultConfig())
    assert op.poke({}).is_done


def test_poke_mode_waits_through_an_outage_even_with_soft_fail(flaky):
    cid = flaky.campaign_ids("SCHEDULED")[0]
    watcher = _after_failures(flaky, 6, lambda: flaky.set_status(cid, "SENT"))
    result = sensor(campaign_id=cid, poke_interval=0.05, timeout=60, soft_fail=True).execute({})
    watcher.join()
    assert result["campaign_id"] == cid and flaky.statuses[500] >= 6


@pytest.mark.parametrize("soft_fail", [False, True])
def test_an_outage_at_the_timeout_fails_and_never_skips(flaky, soft_fail):
    """Whether the campaign was sent is unknown: fail with retries, in poke mode and from a trigger event."""
    cid = flaky.campaign_ids("SCHEDULED")[0]
    with pytest.raises(ConstantContactUnavailableError, match=f"campaign {cid}: .*unknown .*HTTP 500"):
        sensor(campaign_id=cid, poke_interval=0.05, timeout=0.3, soft_fail=soft_fail).execute({})
    with pytest.raises(ConstantContactUnavailableError, match="HTTP 500"):
        sensor(campaign_id=cid, soft_fail=soft_fail, deferrable=True).execute_complete(
            {}, {"status": "unavailable", "message": f"campaign {cid}: server error (HTTP 500)"})


def test_a_timeout_after_a_working_check_still_skips_under_soft_fail(emulator):
    cid = emulator.campaign_ids("SCHEDULED")[0]
    with pytest.raises(AirflowSkipException):
        sensor(campaign_id=cid, poke_interval=0.05, timeout=0.2, soft_fail=True).execute({})


def test_deferred_sensor_waits_through_an_outage_in_a_real_dag_run(airflow_db, flaky, tmp_path, monkeypatch):
    """The example DAG through dag.test (which runs the trigger): with soft_fail=True, a few 500s then
    recovery must not skip the downstream pulls."""
    from tests.conftest import dag_test, load_dags

    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT", f"file://{tmp_path}/")
    dag = load_dags()[0]["constant_contact_wait_for_send"]
    wait = dag.get_task("wait_for_send")
    wait.poke_interval, wait.soft_fail, wait.deferrable = 0.05, True, True
    cid = flaky.campaign_ids("SCHEDULED")[0]
    watcher = _after_failures(flaky, 8, lambda: flaky.set_status(cid, "SENT"))
    run = dag_test(dag, pendulum.datetime(2024, 2, 1, tz="UTC"), run_conf={"campaign_id": cid})
    watcher.join()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"wait_for_send": "success", "pull": "success"}, states
    assert flaky.statuses[500] >= 8 and list(tmp_path.rglob("*.jsonl"))


def test_deferred_sensor_fails_not_skips_when_the_outage_outlasts_it(airflow_db, flaky, tmp_path, monkeypatch):
    from tests.conftest import dag_test, load_dags

    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT", f"file://{tmp_path}/")
    dag = load_dags()[0]["constant_contact_wait_for_send"]
    wait = dag.get_task("wait_for_send")
    wait.poke_interval, wait.soft_fail, wait.deferrable, wait.timeout = 0.05, True, True, 1.0
    cid = flaky.campaign_ids("SCHEDULED")[0]
    run = dag_test(dag, pendulum.datetime(2024, 2, 2, tz="UTC"), run_conf={"campaign_id": cid})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["wait_for_send"] == "failed" and states["pull"] != "skipped", states
    assert list(tmp_path.rglob("*.jsonl")) == []


@pytest.mark.parametrize("body", [[1], None, {"id": "42", "name": "no status"}], ids=["an array", "null", "no status"])
def test_poke_treats_a_malformed_answer_as_not_yet_and_never_skips(scripted, body):
    path = "/v2/emailmarketing/campaigns/42"
    for _ in range(3):  # one check of three attempts
        scripted.add(path, 200, body)
    scripted.add(path, 200, {"id": "42", "name": "n", "status": "SENT", "last_run_date": "2024-01-01T00:00:00.000Z"})
    op = sensor(campaign_id="42", soft_fail=True)
    assert op.poke({}) is False
    assert op.poke({}).is_done and len(scripted.seen) == 4
