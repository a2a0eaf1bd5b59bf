"""The daily example backfills three intervals through real Airflow 2: ``airflow dags backfill`` (where the mapped
daily DAG deadlocked). Airflow 3's backfill is made on the system test's deployment and run by its scheduler
(tests/system/test_scheduler.py): a scheduler and an API server of its own here cost 25 CPU-seconds."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES
from tests import airflow_cli, dimension_rows
from tests.conftest import FAST_RETRY, ROOT, as_output, copy_migrated_db, start_emulator

DAG_ID = "constant_contact_daily"
INTERVALS = [("2024-01-01T03:00:00Z", "2024-01-02T03:00:00Z"), ("2024-01-02T03:00:00Z", "2024-01-03T03:00:00Z"),
             ("2024-01-03T03:00:00Z", "2024-01-04T03:00:00Z")]
DEADLINE = 900  # seconds for the runs, once Airflow is up (generous: a busy machine)


def stamp(moment: str) -> str:
    return moment.replace("-", "").replace(":", "")


class Airflow:
    """The ``airflow`` CLI of this environment on a fresh SQLite home."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env

    def run_each(self, *commands: list[str], timeout: float = 300) -> None:
        airflow_cli.run_each(*commands, env=self.env, timeout=timeout)

    def runs(self) -> dict[str, str]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return dict(db.execute("select run_id, state from dag_run where dag_id = ?", (DAG_ID,)).fetchall())


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
        emulator.stop()


def backfill_airflow_2(cli: Airflow) -> None:
    cli.run_each(["pools", "set", "constant_contact", "1", "Constant Contact API key"],
                 ["dags", "backfill", "-s", INTERVALS[0][0], "-e", INTERVALS[-1][0], DAG_ID], timeout=DEADLINE)


def test_the_daily_example_backfills_three_intervals(airflow):
    cli, emulator, out = airflow
    backfill_airflow_2(cli)
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

