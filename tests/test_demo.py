"""The README's first command, minus the install: interrupted, then run again; its output checked."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

from airflow_provider_cc.emulator import DataConfig, Emulator
from tests.conftest import ROOT, as_output

DEMO = [sys.executable, str(ROOT / "scripts" / "demo.py")]
# What the demo itself prints; anything else on the terminal is someone else's noise.
DEMO_LINES = ("airflow home: ", "output: ", "emulator: ", "running constant_contact_daily", "DAG run ", "report  ",
              "bounces ", "clicks ", "forwards ", "opens ", "sends ", "unsubscribes ", "18 files", "Airflow's log: ")


def demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CC_"))}


def run_demo(output, home) -> subprocess.CompletedProcess:
    return subprocess.run([*DEMO, "--output", str(output), "--airflow-home", str(home)], capture_output=True,
                          text=True, env=demo_env(), timeout=600)


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
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
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
    written = {p: p.read_bytes() for p in output.rglob("*.jsonl")}
    assert len(written) == 18

    reference = Emulator(DataConfig(**demo.DEMO_DATA))  # same seed and sizes: the data the demo pulled
    reference.server.server_close()
    for path, data in written.items():
        report, cid = path.parts[-3], path.parts[-2].split("=")[1]
        expected = as_output(reference.records(cid, report, created_since="2024-01-01T03:00:00Z",
                                               created_before="2024-01-02T03:00:00Z"))
        assert [json.loads(line) for line in data.decode().splitlines()] == expected, path
