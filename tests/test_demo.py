"""The README's first command, minus the install: the demo's core run twice, its output checked."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys

from airflow_provider_cc.emulator import DataConfig, Emulator
from tests.conftest import ROOT, as_output


def run_demo(output, home) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CC_"))}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--output", str(output),
                           "--airflow-home", str(home)], capture_output=True, text=True, env=env, timeout=600)


def test_demo_runs_the_daily_pipeline_and_reruns_identically(tmp_path):
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    output, home = tmp_path / "output", tmp_path / "home"

    first = run_demo(output, home)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "DAG run success" in first.stdout and "18 files" in first.stdout and "403" not in first.stdout.split(
        "API answers:")[1].split("(")[0], first.stdout[-1500:]
    written = {p: p.read_bytes() for p in output.rglob("*.jsonl")}
    assert len(written) == 18

    reference = Emulator(DataConfig(**demo.DEMO_DATA))  # same seed and sizes: the data the demo pulled
    for path, data in written.items():
        report, cid = path.parts[-3], path.parts[-2].split("=")[1]
        expected = as_output(reference.records(cid, report, created_since="2024-01-01T03:00:00Z",
                                               created_before="2024-01-02T03:00:00Z"))
        assert [json.loads(line) for line in data.decode().splitlines()] == expected, path
    reference.server.server_close()

    second = run_demo(output, home)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert {p: p.read_bytes() for p in output.rglob("*.jsonl")} == written


def test_demo_stops_at_once_when_interrupted(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CC_"))}
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "demo.py"), "--output", str(tmp_path / "out"),
                             "--airflow-home", str(tmp_path / "home")], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in proc.stdout:
            if line.startswith("running constant_contact_daily"):
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted: stopping the emulator" in proc.stdout.read()
