"""The event-driven example on a real deployment: its AssetWatcher runs on the triggerer, announces each sent
campaign of the emulator's account once, and the DAG scheduled on the asset pulls those campaigns' tracking.
The triggerer is then restarted: the re-created trigger goes on from the watermark it stored in the asset's
state store, and announces nothing again."""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_cc.emulator import Emulator as Reference
from airflow_provider_cc.emulator.data import ms_to_text
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES
from airflow_provider_cc.window import format_api, record_instant
from tests import reaper
from tests.conftest import as_output
from tests.system.conftest import PATIENCE, read_jsonl, wait_for
from tests.system.test_scheduler import DATA, finished

ON_SEND = "constant_contact_on_send"
FIRST_LOOK = "watching the campaign sends of constant_contact_default"


def served(emulator: Any) -> int:
    """Requests the emulator has answered (every process's)."""
    return requests.get(f"{emulator.url}/_emulator/stats", timeout=60).json()["requests"]


def announced(airflow: Any) -> list[dict[str, Any]]:
    """The payloads of the asset's events, oldest first."""
    asset = airflow.api("GET", "/assets", params={"name_pattern": "constant_contact_campaign_sent"})["assets"][0]
    events = airflow.api("GET", "/assets/events", params={"asset_id": asset["id"], "order_by": "timestamp",
                                                          "limit": 100})["asset_events"]
    return [e["extra"]["payload"] for e in events]


def test_each_send_runs_the_event_driven_dag_once_across_a_triggerer_restart(deployment):
    airflow, emulator, output, credentials = deployment
    reference = Reference(DATA)
    reference.server.server_close()
    sent = sorted((c.run_ms, c.id) for c in reference.dataset.campaigns.values() if c.status == "SENT")
    want = [(cid, format_api(record_instant(ms_to_text(ms)))) for ms, cid in sent]
    airflow.wait_parsed([ON_SEND])
    airflow.create_pool("constant_contact", 1)

    # Paused DAGs have no watcher: unpause, and parse the file again so the scheduler registers it.
    airflow.set_paused(ON_SEND, False)
    token = airflow.api("GET", f"/dags/{ON_SEND}/details")["file_token"]
    airflow.api("PUT", f"/parseDagFile/{token}")
    wait_for("the watcher's first look", lambda: FIRST_LOOK in airflow.processes.log("triggerer"), PATIENCE,
             logs=airflow.processes.tails)

    # Both sends are announced, each once, and the runs pull every report of both campaigns. (The asset events
    # are read once the runs are done: Airflow 3.3's REST API answers 500 for an event whose run has not started.)
    def all_done() -> bool:
        runs = airflow.runs(ON_SEND)
        done = [finished(airflow, ON_SEND, r["dag_run_id"]) for r in runs]
        pulls = [ti for tis in done for ti in tis if ti["task_id"] == "pull"]
        return bool(runs) and all(done) and len(pulls) == len(want) * len(CAMPAIGN_REPORT_NAMES)

    wait_for("the event-driven runs to pull every report of each campaign", all_done, PATIENCE,
             logs=airflow.processes.tails)
    runs = len(airflow.runs(ON_SEND))
    payloads = announced(airflow)
    assert [(p["campaign_id"], p["sent"]) for p in payloads] == want, payloads
    assert all(p["api"] == "v2" and p["name"] and p["constant_contact_conn_id"] == "constant_contact_default"
               for p in payloads)
    for cid, since in want:  # every report of the campaign, from its send on, as the emulator has it
        for report in CAMPAIGN_REPORT_NAMES:
            [path] = (output / f"campaign/{report}/campaign_id={cid}").glob("*.jsonl")
            assert read_jsonl(path) == as_output(reference.records(cid, report, created_since=since)), path

    # The triggerer restarts: the trigger is made again from its kwargs (sent_after=2000: both sends would be
    # announced again from those alone) and reads its watermark from the asset's state store.
    old = airflow.processes.running["triggerer"]
    reaper.stop(old)
    airflow.processes.start("triggerer", [*old.args[:3], "triggerer", "--skip-serve-logs"])
    wait_for("the new triggerer's first look", lambda: airflow.processes.log("triggerer").count(FIRST_LOOK) >= 2,
             PATIENCE, logs=airflow.processes.tails)
    before = served(emulator)
    wait_for("two more polls", lambda: served(emulator) >= before + 2, PATIENCE, every=5, logs=airflow.processes.tails)
    assert len(airflow.runs(ON_SEND)) == runs, "a send was announced again after the restart"
    assert len(announced(airflow)) == len(want), announced(airflow)

    log = airflow.processes.log("triggerer")
    assert not [name for name, secret in credentials.items() if secret in log], "a secret in the triggerer's log"
