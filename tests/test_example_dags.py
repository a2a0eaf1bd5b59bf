"""The example DAGs through real Airflow (``dag.test()`` on SQLite) against the emulator."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

import pendulum
import pytest

from airflow_provider_cc._compat import AIRFLOW_V_3
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES
from tests import dimension_rows
from tests.conftest import as_output, dag_test, load_dags

if TYPE_CHECKING:
    from pathlib import Path

EXAMPLES = {"constant_contact_daily", "constant_contact_history", "constant_contact_per_campaign",
            "constant_contact_summaries", "constant_contact_manual",
            "constant_contact_cron_trigger", "constant_contact_wait_for_send",
            "constant_contact_assets_producer", "constant_contact_assets_consumer", "constant_contact_v3_daily",
            "constant_contact_v3_history", "constant_contact_v3_wait_for_send", "constant_contact_hook_in_task"}
# Event-driven scheduling (an AssetWatcher) is Airflow 3's: on Airflow 2 that example's file defines no DAG.
EVENT_DRIVEN = "constant_contact_on_send"


def files(root: Path) -> dict[str, bytes]:
    """Data files under a root; the account operator's state (``_state/``) is not data."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] != "_state"}


def events_and_dimensions(found: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Data files split into event files and dimension files (``dimension/``)."""
    dimensions = {n: d for n, d in found.items() if n.startswith("dimension/")}
    return {n: d for n, d in found.items() if n not in dimensions}, dimensions


def loaded_names(found: dict[str, bytes]) -> set[str]:
    """The files' names (their windows)."""
    return {name.rsplit("/", 1)[1] for name in found}


def jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


@pytest.fixture
def output_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT", f"file://{tmp_path}/")
    return tmp_path


def test_examples_import_cleanly():
    dags, errors, warnings = load_dags()
    assert errors == [] and warnings == []
    assert set(dags) >= EXAMPLES
    assert (EVENT_DRIVEN in dags) == AIRFLOW_V_3


@pytest.mark.parametrize("dag_id", ["constant_contact_daily", "constant_contact_per_campaign"])
def test_daily_pipeline_writes_every_report_of_every_sent_campaign(airflow_db, emulator, output_root, dag_id):
    dag = load_dags()[0][dag_id]
    run = dag_test(dag, pendulum.datetime(2024, 1, 2, 3, tz="UTC"))
    assert run.state == "success"
    assert (run.data_interval_start, run.data_interval_end) == (pendulum.datetime(2024, 1, 1, 3),
                                                                 pendulum.datetime(2024, 1, 2, 3))
    everything = files(output_root)
    expected_names = {f"campaign/{r}/campaign_id={c}/20240101T030000Z_20240102T030000Z.jsonl"
                      for r in CAMPAIGN_REPORT_NAMES for c in emulator.campaign_ids()}
    if dag_id == "constant_contact_daily":  # one task for the account; no file for a report without activity
        expected_names = {n for n in expected_names if emulator.records(
            n.split("=")[1].split("/")[0], n.split("/")[1], created_since="2024-01-01T03:00:00Z",
            created_before="2024-01-02T03:00:00Z")}
        assert {ti.task_id for ti in run.get_task_instances()} == {"pull_account"}
    written, dimensions = events_and_dimensions(everything)
    assert set(written) == expected_names
    if dag_id == "constant_contact_daily":  # the example writes the dimensions of the campaigns it looked at
        assert dimensions == dimension_rows.files("v2", dimension_rows.v2_rows(emulator, emulator.campaign_ids()),
                                                  "20240101T030000Z_20240102T030000Z.jsonl")
        assert set(dimensions) == {f"dimension/v2/{n}/20240101T030000Z_20240102T030000Z.jsonl"
                                   for n in dimension_rows.V2_NAMES}
    else:
        assert dimensions == {}
    for name, data in written.items():
        report, cid = name.split("/")[1], name.split("=")[1].split("/")[0]
        assert jsonl(data) == as_output(emulator.records(cid, report, created_since="2024-01-01T03:00:00Z",
                                                         created_before="2024-01-02T03:00:00Z")), name
    assert sum(len(jsonl(d)) for d in written.values()) > 0

    # Rerun of the same interval (Airflow 2 needs another logical date inside it): identical bytes.
    again = dag_test(dag, pendulum.datetime(2024, 1, 2, 3 if AIRFLOW_V_3 else 4, tz="UTC"))
    assert again.state == "success" and files(output_root) == everything


def test_the_v3_daily_pipeline_writes_every_activitys_records(airflow_db, monkeypatch, tmp_path):
    from airflow_provider_cc.reports import v3_report
    from airflow_provider_cc.window import record_instant, to_utc
    from tests.conftest import start_v3

    emu = start_v3(monkeypatch, str(tmp_path / "tokens"))
    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_V3_OUTPUT_ROOT", f"file://{tmp_path}/lake/")
    try:
        run = dag_test(load_dags()[0]["constant_contact_v3_daily"], pendulum.datetime(2024, 1, 2, 3, tz="UTC"))
        assert run.state == "success"
        low, high = to_utc("2024-01-01T03:00:00Z", "s"), to_utc("2024-01-02T03:00:00Z", "e")
        want = {}
        for campaign in (c for c in emu.v3.view.campaigns.values() if c.status == "SENT"):
            for activity in emu.v3.view.reported(campaign):
                for report in CAMPAIGN_REPORT_NAMES:
                    kept = [{**r, "campaign_id": campaign.id} for r in emu.v3_records(
                        activity.id, v3_report(report).segment) if low <= record_instant(r["created_time"]) < high]
                    if kept:
                        want[f"campaign/{report}/campaign_id={campaign.id}/campaign_activity_id={activity.id}/"
                             "20240101T030000Z_20240102T030000Z.jsonl"] = kept
        written, dimensions = events_and_dimensions(files(tmp_path / "lake"))
        assert {name: jsonl(data) for name, data in written.items()} == want and want
        sent = [c.id for c in emu.v3.view.campaigns.values() if c.status == "SENT"]
        assert dimensions == dimension_rows.files("v3", dimension_rows.v3_rows(
            emu, sent, dimension_rows.clicked_activities(want)), "20240101T030000Z_20240102T030000Z.jsonl")
        assert {n.split("/")[2] for n in dimensions} == set(dimension_rows.V3_NAMES)
    finally:
        emu.stop()


def test_history_loads_a_range_in_one_pass_into_the_daily_files(airflow_db, emulator, output_root, monkeypatch):
    conf = {"start": "2024-01-01T03:00:00Z", "end": "2024-01-03T03:00:00Z"}
    history = load_dags()[0]["constant_contact_history"]
    run = dag_test(history, None if AIRFLOW_V_3 else pendulum.datetime(2024, 1, 5, tz="UTC"), run_conf=conf)
    assert run.state == "success"
    loaded = files(output_root)
    assert loaded_names(loaded) == {"20240101T030000Z_20240102T030000Z.jsonl",
                                    "20240102T030000Z_20240103T030000Z.jsonl"}
    daily_root = output_root / "daily"
    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT", f"file://{daily_root}/")
    daily = load_dags()[0]["constant_contact_daily"]
    for day in (2, 3):  # Airflow 2 needs logical dates no other test ran (inside the same intervals)
        assert dag_test(daily, pendulum.datetime(2024, 1, day, 3 if AIRFLOW_V_3 else 5, tz="UTC")).state == "success"
    events, dimensions = events_and_dimensions(files(daily_root))
    assert events == loaded, "the one-pass load wrote the daily runs' files, byte for byte"
    assert {name.split("/", 2)[2] for name in dimensions} == {  # the daily example also writes each day's dimensions
        f"{n}/{day}" for n in dimension_rows.V2_NAMES for day in loaded_names(loaded)}


def test_summaries_dag(airflow_db, emulator):
    run = dag_test(load_dags()[0]["constant_contact_summaries"], pendulum.datetime(2024, 1, 5, 4, tz="UTC"))
    assert run.state == "success"
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states == {("list_sent_campaigns", -1): "success", ("campaign_summary", 0): "success",
                      ("campaign_summary", 1): "success"}


def test_cron_string_schedule_pulls_from_the_previous_tick(airflow_db, emulator, output_root):
    dag = load_dags()[0]["constant_contact_cron_trigger"]
    first = dag_test(dag, pendulum.datetime(2024, 1, 2, 3, tz="UTC"))
    assert first.state == "success"
    if AIRFLOW_V_3:  # CronTriggerTimetable: a zero-width interval, pulled from the timetable's previous tick
        assert first.data_interval_start == first.data_interval_end
    # Airflow 2 reads a cron string as a data-interval timetable: the same window either way.
    second = dag_test(dag, pendulum.datetime(2024, 1, 3, 3, tz="UTC"))
    assert second.state == "success"
    names = sorted(p.name for p in output_root.rglob("*.jsonl"))
    assert names == ["20240101T030000Z_20240102T030000Z.jsonl", "20240102T030000Z_20240103T030000Z.jsonl"], names
    cid = emulator.campaign_ids()[0]
    combined = [r for p in sorted(output_root.rglob("*.jsonl"), key=lambda p: p.name, reverse=True)
                for r in jsonl(p.read_bytes())]
    assert combined == as_output(emulator.records(cid, "opens", created_since="2024-01-01T03:00:00Z",
                                                  created_before="2024-01-03T03:00:00Z"))


def test_manual_run_window(airflow_db, emulator, output_root):
    dag = load_dags()[0]["constant_contact_manual"]
    conf = {"campaign_id": emulator.campaign_ids()[0], "created_since": "2024-01-02T00:00:00Z"}
    if AIRFLOW_V_3:
        missing = dag_test(dag, None, run_conf={"campaign_id": conf["campaign_id"]})
        assert missing.state == "failed", "a run with no data interval and no created_since must not pull"
        assert list(output_root.rglob("*.jsonl")) == []
        run = dag_test(dag, None, run_conf=conf)
        assert run.state == "success" and run.data_interval_start is None
        ends_at = pendulum.instance(run.run_after)
    else:
        run = dag_test(dag, pendulum.datetime(2024, 1, 3, 12, tz="UTC"), run_conf=conf)
        assert run.state == "success"
        ends_at = pendulum.datetime(2024, 1, 3, 12)
    (written,) = output_root.rglob("*.jsonl")
    assert written.name.startswith("20240102T000000Z_") and written.name.split("_")[1].startswith(
        ends_at.strftime("%Y%m%dT%H%M"))


@pytest.mark.parametrize("variant", ["deferrable", "reschedule"])
def test_wait_for_send_then_extract(airflow_db, emulator, output_root, variant):
    dag = load_dags()[0]["constant_contact_wait_for_send"]
    wait = dag.get_task("wait_for_send")
    wait.poke_interval = 0.2
    if variant == "reschedule":
        wait.deferrable, wait.mode = False, "reschedule"
    cid = emulator.campaign_ids("SCHEDULED")[0]
    path = f"/v2/emailmarketing/campaigns/{cid}"

    def send_after_first_poll() -> None:
        deadline = time.monotonic() + 600
        while not any(p == path for p, _ in emulator.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        emulator.set_status(cid, "SENT")

    timer = threading.Thread(target=send_after_first_poll, daemon=True)
    timer.start()
    day = 10 if variant == "deferrable" else 11
    run = dag_test(dag, pendulum.datetime(2024, 1, day, tz="UTC"), run_conf={"campaign_id": cid})
    timer.join()
    assert run.state == "success"
    polls = [p for p, _ in emulator.requests if p == path]
    assert len(polls) >= 2, "the sensor checked again after the first SCHEDULED answer"
    written = files(output_root)
    assert {name.split("/")[1] for name in written} == set(CAMPAIGN_REPORT_NAMES)
    assert sum(len(jsonl(d)) for d in written.values()) > 0


def test_v3_wait_for_send_then_extract_and_v3_history_into_the_daily_files(airflow_db, monkeypatch, tmp_path):
    """On a v3 connection: the deferred sensor (dag.test runs its trigger) waits for a campaign to be sent, then
    its reports are pulled per activity; the history DAG's one pass writes the daily DAG's files, byte for byte."""
    from airflow_provider_cc.emulator import DataConfig
    from tests.conftest import start_v3

    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig(campaigns=6, contacts=40, activities=30))
    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_V3_OUTPUT_ROOT", f"file://{tmp_path}/wait/")
    try:
        campaign = next(c for c in emu.v3.view.campaigns.values() if c.primary.status == "SCHEDULED")
        dag = load_dags()[0]["constant_contact_v3_wait_for_send"]
        dag.get_task("wait_for_send").poke_interval = 0.2
        path = f"/v3/emails/{campaign.id}"

        def send_after_first_poll() -> None:
            deadline = time.monotonic() + 600
            while not any(p == path for p, _ in emu.requests) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            emu.set_status(campaign.primary.id, "SENT")

        timer = threading.Thread(target=send_after_first_poll, daemon=True)
        timer.start()
        run = dag_test(dag, pendulum.datetime(2024, 1, 10, tz="UTC"), run_conf={"campaign_id": campaign.id})
        timer.join()
        assert run.state == "success"
        assert len([p for p, _ in emu.requests if p == path]) >= 2, "it checked again after the first answer"
        written = files(tmp_path / "wait")
        assert written and all(f"campaign_id={campaign.id}/campaign_activity_id=" in n for n in written)

        # History over three days in one pass, then the daily DAG for the same days into another root.
        monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_V3_OUTPUT_ROOT", f"file://{tmp_path}/history/")
        history = dag_test(load_dags()[0]["constant_contact_v3_history"], pendulum.datetime(2024, 2, 1, tz="UTC"),
                           run_conf={"start": "2024-01-01T03:00:00Z", "end": "2024-01-04T03:00:00Z"})
        assert history.state == "success"
        monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_V3_OUTPUT_ROOT", f"file://{tmp_path}/daily/")
        daily = load_dags()[0]["constant_contact_v3_daily"]
        for day in (2, 3, 4):
            assert dag_test(daily, pendulum.datetime(2024, 1, day, 3, tz="UTC")).state == "success"
        events, dimensions = events_and_dimensions(files(tmp_path / "daily"))
        assert files(tmp_path / "history") == events != {}
        assert {name.split("/", 2)[2] for name in dimensions} == {  # and the daily example each day's dimensions
            f"{n}/{day}" for n in dimension_rows.V3_NAMES for day in loaded_names(events)}
    finally:
        emu.stop()
