"""The daily example backfills three intervals through real Airflow: ``airflow dags backfill`` on Airflow 2 (where
the mapped daily DAG deadlocked), ``airflow backfill create`` run by a real scheduler and api-server on Airflow 3."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

import pytest

from airflow_provider_cc._compat import AIRFLOW_V_3
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES
from tests import airflow_cli, dimension_rows, reaper
from tests.conftest import FAST_RETRY, ROOT, as_output, copy_migrated_db, start_emulator

DAG_ID = "constant_contact_daily"
INTERVALS = [("2024-01-01T03:00:00Z", "2024-01-02T03:00:00Z"), ("2024-01-02T03:00:00Z", "2024-01-03T03:00:00Z"),
             ("2024-01-03T03:00:00Z", "2024-01-04T03:00:00Z")]
DEADLINE = 900  # seconds for the runs, once Airflow is up (generous: a busy machine)


def stamp(moment: str) -> str:
    return moment.replace("-", "").replace(":", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Airflow:
    """The ``airflow`` CLI of this environment on a fresh SQLite home; every process it starts, it stops."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.procs: list[subprocess.Popen] = []
        self.logs: list[IO[str]] = []

    def run_each(self, *commands: list[str], timeout: float = 300) -> None:
        airflow_cli.run_each(*commands, env=self.env, timeout=timeout)

    def start(self, *args: str) -> None:
        log = (self.home / f"{args[0]}.log").open("w")
        self.logs.append(log)
        self.procs.append(reaper.spawn([sys.executable, "-m", "airflow", *args], env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT))

    def stop(self) -> None:
        reaper.stop(*self.procs, grace=30)
        for log in self.logs:
            log.close()

    def runs(self) -> dict[str, str]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return dict(db.execute("select run_id, state from dag_run where dag_id = ?", (DAG_ID,)).fetchall())

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in self.home.glob("*.log"))


@pytest.fixture
def airflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_db: Path) -> Any:
    emulator = start_emulator(monkeypatch)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT": emulator.connection_json(**FAST_RETRY),
        "AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT": f"file://{tmp_path}/out/",
    })
    copy_migrated_db(migrated_db, home / "airflow.db")  # as `airflow db migrate` leaves it
    cli = Airflow(home, env)
    try:
        yield cli, emulator, tmp_path / "out"
    finally:
        cli.stop()
        emulator.stop()


def backfill_airflow_2(cli: Airflow) -> None:
    cli.run_each(["pools", "set", "constant_contact", "1", "Constant Contact API key"],
                 ["dags", "backfill", "-s", INTERVALS[0][0], "-e", INTERVALS[-1][0], DAG_ID], timeout=DEADLINE)


def backfill_airflow_3(cli: Airflow) -> None:
    port = free_port()
    cli.env.update({
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "backfill-test-" + "s" * 32,
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the backfill's runs, not catch-up from start_date
    })
    # Dates are logical dates, the start of a data interval (the run ids name the intervals' ends).
    cli.run_each(["pools", "set", "constant_contact", "1", "Constant Contact API key"], ["dags", "reserialize"],
                 ["dags", "unpause", DAG_ID],
                 ["backfill", "create", "--dag-id", DAG_ID, "--from-date", INTERVALS[0][0], "--to-date",
                  INTERVALS[-1][0]])
    cli.start("api-server", "--host", "127.0.0.1", "--port", str(port))
    deadline = time.monotonic() + 600
    while True:  # tasks report to the api-server: a task started before it answers would fail
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the api-server did not come up:\n" + cli.log_tail()
            time.sleep(1)
    cli.start("scheduler")
    deadline = time.monotonic() + DEADLINE
    while not (len(cli.runs()) == 3 and set(cli.runs().values()) <= {"success", "failed"}):
        assert time.monotonic() < deadline, f"runs: {cli.runs()}\n" + cli.log_tail()
        time.sleep(2)


def test_the_daily_example_backfills_three_intervals(airflow):
    cli, emulator, out = airflow
    (backfill_airflow_3 if AIRFLOW_V_3 else backfill_airflow_2)(cli)
    assert sorted(cli.runs().values()) == ["success"] * 3, cli.runs()
    written = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()
               and p.relative_to(out).parts[0] == "campaign"}
    assert not [p for p in out.rglob("*") if p.is_file() and p.relative_to(out).parts[0] not in (
        "campaign", "dimension", "_state")]
    dimensions = dimension_rows.v2_rows(emulator, emulator.campaign_ids())  # every run's, the same rows
    assert dimension_rows.written(out) == {f"dimension/v2/{n}/{stamp(since)}_{stamp(before)}.jsonl": rows
                                           for since, before in INTERVALS for n, rows in dimensions.items()}
    expected = {}
    for since, before in INTERVALS:
        name = f"{stamp(since)}_{stamp(before)}.jsonl"
        for cid in emulator.campaign_ids():
            for report in CAMPAIGN_REPORT_NAMES:
                records = emulator.records(cid, report, created_since=since, created_before=before)
                if records:
                    expected[f"campaign/{report}/campaign_id={cid}/{name}"] = as_output(records)
    assert {name: [json.loads(line) for line in data.decode().splitlines()] for name, data in written.items()} \
        == expected
    assert len(expected) > 3 * 6, "every interval has files"

