"""The README's first commands, minus the install: the v2 demo interrupted, then run again; the v3 demo (a device-
flow login against the emulator, then the v3 daily DAG); their output checked against the emulator's records."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from importlib.metadata import version

from airflow_provider_cc.emulator import DataConfig, Emulator
from tests import dimension_rows
from tests.conftest import ROOT, as_output

DEMO = [sys.executable, str(ROOT / "scripts" / "demo.py")]
# What the demo itself prints; anything else on the terminal is someone else's noise.
DEMO_LINES = ("airflow home: ", "output: ", "emulator: ", "running constant_contact_daily", "DAG run ", "report  ",
              "bounces ", "clicks ", "forwards ", "opens ", "sends ", "unsubscribes ", "dimension ", "campaigns ",
              "links ", "18 files", "Airflow's log: ")
INTERVAL = "20240101T030000Z_20240102T030000Z.jsonl"


def demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CC_"))}


def run_demo(output, home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DEMO, *args, "--output", str(output), "--airflow-home", str(home)], capture_output=True,
                          text=True, env=demo_env(), timeout=900)


def load_demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def test_demo_refuses_to_empty_a_folder_it_did_not_make(tmp_path):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "thesis.txt").write_text("precious")
    proc = subprocess.run([*DEMO, "--output", str(output), "--airflow-home", str(tmp_path / "home")],
                          capture_output=True, text=True, env=demo_env(), timeout=600)
    assert proc.returncode == 1 and "holds files the demo did not write" in proc.stderr, proc.stderr
    assert "emptied first" in proc.stdout, "it says what it would do before it does it"
    assert (output / "thesis.txt").read_text() == "precious"


def test_demo_stops_at_once_mid_write_without_leaving_a_temporary_file_then_runs_again_quietly(tmp_path):
    demo = load_demo()
    output, home = tmp_path / "output", tmp_path / "home"

    proc = subprocess.Popen([*DEMO, "--output", str(output), "--airflow-home", str(home)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=demo_env())
    try:
        deadline = time.monotonic() + 900
        while not list(output.rglob(".*.tmp")):  # a file is being written: interrupt that
            assert proc.poll() is None and time.monotonic() < deadline, "no write in progress was seen"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    printed = proc.stdout.read()
    assert code == 130 and "interrupted: stopped the run and the emulator" in printed, printed[-3000:]
    assert not list(output.rglob(".*.tmp")), "a hidden temporary file was left behind"

    run = run_demo(output, home)  # straight away, over the interrupted run's home and output
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "DAG run success" in run.stdout and "18 files" in run.stdout, run.stdout[-1500:]
    noise = [line for line in run.stdout.splitlines() if line.strip() and not line.startswith(DEMO_LINES)]
    assert not noise and not run.stderr, f"framework noise on the terminal: {noise} {run.stderr[-1500:]}"
    assert "shall not contain '_'" not in (home / "airflow.log").read_text(), "the scheme notice is avoided"
    kept = ROOT / ".airflow" / f"migrated-{version('apache-airflow')}.db"
    assert kept.exists(), "the first run's migrated metadata DB is kept for the next runs to copy"
    written = {p: p.read_bytes() for p in (output / "campaign").rglob("*.jsonl")}
    assert len(written) == 18

    reference = Emulator(DataConfig(**demo.DEMO_DATA))  # same seed and sizes: the data the demo pulled
    reference.server.server_close()
    dimensions = dimension_rows.v2_rows(reference, reference.campaign_ids())  # the daily example writes them
    assert dimension_rows.written(output) == {f"dimension/v2/{n}/{INTERVAL}": rows for n, rows in dimensions.items()}
    total = sum(len(rows) for rows in dimensions.values())
    assert f"; 2 dimension files, {total} rows; API answers" in run.stdout, run.stdout[-1500:]
    for name, rows in dimensions.items():
        assert re.search(rf"^{name} +{len(rows)}  \S*dimension/v2/{name}/{INTERVAL}$", run.stdout, re.M), name
    for path, data in written.items():
        report, cid = path.parts[-3], path.parts[-2].split("=")[1]
        expected = as_output(reference.records(cid, report, created_since="2024-01-01T03:00:00Z",
                                               created_before="2024-01-02T03:00:00Z"))
        assert [json.loads(line) for line in data.decode().splitlines()] == expected, path


def test_the_v3_demo_logs_in_through_the_device_flow_then_writes_every_activitys_records(tmp_path):
    from airflow_provider_cc.emulator import V3Options
    from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES, v3_report
    from airflow_provider_cc.window import record_instant, to_utc

    demo = load_demo()
    output, home = tmp_path / "output", tmp_path / "home"
    run = run_demo(output, home, "--api", "v3")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    shown = run.stdout
    assert "rotating refresh tokens" in shown and "login: python -m airflow_provider_cc.auth login --client-id" in shown
    assert "/_emulator/oauth/device?user_code=" in shown and "demo: approving code" in shown, shown[:3000]
    assert "running constant_contact_v3_daily" in shown and "DAG run success" in shown, shown[-3000:]
    assert "token endpoint: {'device_code': 1}" in shown, "one login, and the stored access token served the run"
    assert "eyJ" not in shown + run.stderr, "no token (a JWT) on the terminal"
    allowed = (*DEMO_LINES, "running constant_contact_v3_daily", "login: ", "demo: approving", "token endpoint: ",
               "campaign_activities ")
    noise = [line for line in shown.splitlines() if line.strip() and not line.startswith(allowed)]
    assert not noise and not run.stderr, f"framework noise on the terminal: {noise} {run.stderr[-1500:]}"

    reference = Emulator(DataConfig(**demo.DEMO_DATA), v3=V3Options())  # same seed and sizes: what was pulled
    reference.server.server_close()
    low, high = to_utc("2024-01-01T03:00:00Z", "s"), to_utc("2024-01-02T03:00:00Z", "e")
    want = {}
    for campaign in (c for c in reference.v3.view.campaigns.values() if c.status == "SENT"):
        for activity in reference.v3.view.reported(campaign):
            for report in CAMPAIGN_REPORT_NAMES:
                kept = [{**r, "campaign_id": campaign.id} for r in reference.v3_records(
                    activity.id, v3_report(report).segment) if low <= record_instant(r["created_time"]) < high]
                if kept:
                    want[f"campaign/{report}/campaign_id={campaign.id}/campaign_activity_id={activity.id}/"
                         "20240101T030000Z_20240102T030000Z.jsonl"] = kept
    written = {str(p.relative_to(output)): [json.loads(line) for line in p.read_text().splitlines()]
               for p in (output / "campaign").rglob("*.jsonl")}
    assert written == want and want
    sent = [c.id for c in reference.v3.view.campaigns.values() if c.status == "SENT"]
    dimensions = dimension_rows.v3_rows(reference, sent, dimension_rows.clicked_activities(want))
    assert dimension_rows.written(output) == {f"dimension/v3/{n}/{INTERVAL}": rows for n, rows in dimensions.items()}
    total = sum(len(rows) for rows in dimensions.values())
    assert f"{len(want)} files, {sum(len(v) for v in want.values())} records; 3 dimension files, {total} rows" in shown
    for name, rows in dimensions.items():
        assert re.search(rf"^{name} +{len(rows)}  \S*dimension/v3/{name}/{INTERVAL}$", shown, re.M), name
