"""A real Airflow deployment for system tests: metadata DB, scheduler, dag-processor, triggerer, API server.

Every process runs in its own session with its output in a log file under the deployment's home, and is
stopped (its whole process group: SIGTERM, then SIGKILL) when the fixture ends, whatever happened, or by its
watchdog when the test process is killed (tests/reaper.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_cc._compat import AIRFLOW_V_3
from tests import reaper
from tests.conftest import ROOT, copy_migrated_db

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

# Airflow 3 only. On Airflow 2 the deployment differs (webserver, REST API v1, and LocalExecutor refuses
# SQLite, so it needs PostgreSQL and psycopg2); its test leg has no time left for one (docs/development.md).
collect_ignore_glob = [] if AIRFLOW_V_3 else ["test_scheduler.py"]  # the form's test runs on both

# The example DAG checks every 10 minutes; a cluster policy (a standard Airflow mechanism, read from
# $AIRFLOW_HOME/config/airflow_local_settings.py) shortens that for the test's deployment only.
LOCAL_SETTINGS = '''
def task_policy(task):
    if task.task_id == "wait_for_send":
        task.poke_interval = 1.0


def dag_policy(dag):
    # The event-driven example polls every 10 minutes from its first look: here every minute (the trigger's
    # least), announcing every send of the emulator's account (all sent after 2000).
    if dag.dag_id == "constant_contact_on_send":
        for asset in dag.timetable.asset_condition.objects:
            for watcher in asset.watchers:
                watcher.trigger.poll_interval = 60.0
                watcher.trigger.sent_after = "2000-01-01T00:00:00.000Z"
'''
# Airflow logs "Connection schemes (type: constant_contact) shall not contain '_'" on every look-up of the
# connection (the API server does them for tasks); on Airflow 3.1+ this setting (docs/production.md) drops
# it and nothing else.
SCHEME_NOTICE = "airflow.models.connection.Connection=ERROR"


# Seconds any one step of a deployment is waited for (a start, a parse, a run): generous, as a busy 2-core
# machine takes minutes to start Airflow's processes; a step that fails says so at once (an exited process, a
# failed task), so nothing waits this long but a real hang.
PATIENCE = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 2.0,
             logs: Callable[[], str] = lambda: "") -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds. A look
    is REST calls the API server answers: at one look a second, the API server used 22 of the system test's 76
    CPU-seconds (answering the looks and the tasks)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs()}")
        time.sleep(every)


class Processes:
    """Subprocesses in their own sessions, each logging to ``{home}/{name}.log``."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        with (self.home / f"{name}.log").open("ab") as log:
            proc = reaper.spawn(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.home)
        self.running[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tails(self, lines: int = 25) -> str:
        """The end of every process's log, for failure messages."""
        parts = []
        for name, proc in self.running.items():
            tail = "\n".join(self.log(name).splitlines()[-lines:])
            parts.append(f"--- {name} (exit code {proc.poll()}) ---\n{tail}")
        return "\n".join(parts)

    def stop_all(self) -> None:
        reaper.stop(*self.running.values())


class Emulator:
    """``python -m airflow_provider_cc.emulator`` in its own process, as a user starts it."""

    def __init__(self, processes: Processes, args: list[str]) -> None:
        self.args = args
        proc = processes.start("emulator", [sys.executable, "-u", "-m", "airflow_provider_cc.emulator", "--port",
                                            "0", *args])
        first = wait_for("the emulator to start", lambda: "_V3_DEFAULT=" in processes.log("emulator") and
                         processes.log("emulator"), PATIENCE, 0.1, processes.tails)
        assert proc.poll() is None, first
        lines = first.splitlines()
        self.url = lines[0].split(" on ")[1].split()[0]

        def pasted(name: str) -> str:  # the line a user pastes, as a shell reads it
            line = next(line for line in lines if f"AIRFLOW_CONN_{name}=" in line)
            return shlex.split(line)[-1].partition("=")[2]

        self.connection = pasted("CONSTANT_CONTACT_DEFAULT")
        self.v3_connection = pasted("CONSTANT_CONTACT_V3_DEFAULT")

    def set_status(self, campaign_id: str, status: str) -> None:
        response = requests.post(f"{self.url}/_emulator/campaigns/{campaign_id}/status", json={"status": status},
                                 timeout=60)
        assert response.status_code == 200, response.text


class Airflow3:
    """The Airflow 3 deployment: LocalExecutor on SQLite, driven through the API server's REST API (v2)."""

    def __init__(self, home: Path, processes: Processes) -> None:
        self.home = home
        self.processes = processes
        self.url = f"http://127.0.0.1:{processes.env['AIRFLOW__API__PORT']}"

    def start(self, migrated_db: Path) -> None:
        airflow = [sys.executable, "-m", "airflow"]
        copy_migrated_db(migrated_db, self.home / "airflow.db")
        port = self.processes.env["AIRFLOW__API__PORT"]
        self.processes.start("api-server", [*airflow, "api-server", "--host", "127.0.0.1", "--port", port,
                                            "--workers", "1"])
        self.processes.start("scheduler", [*airflow, "scheduler", "--skip-serve-logs"])
        self.processes.start("dag-processor", [*airflow, "dag-processor"])
        self.processes.start("triggerer", [*airflow, "triggerer", "--skip-serve-logs"])
        wait_for("every component to report healthy", self._healthy, PATIENCE, 1, self.processes.tails)

    def _healthy(self) -> bool:
        self._alive()
        try:
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        return all(health.get(part, {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"))

    def _alive(self) -> None:
        dead = {name: proc.returncode for name, proc in self.processes.running.items() if proc.poll() is not None}
        if dead:
            pytest.fail(f"Airflow processes ended early: {dead}\n{self.processes.tails()}")

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.url}/api/v2{path}", timeout=120, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content else None

    def wait_parsed(self, dag_ids: list[str]) -> None:
        def parsed() -> bool:
            self._alive()
            return all(requests.get(f"{self.url}/api/v2/dags/{d}", timeout=120).status_code == 200 for d in dag_ids)

        wait_for(f"the dag-processor to parse {dag_ids}", parsed, PATIENCE, 1, self.processes.tails)
        errors = self.api("GET", "/importErrors")["import_errors"]
        assert not errors, errors

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def create_connection(self, conn_id: str, conn: dict[str, Any]) -> None:
        self.api("POST", "/connections", json={"connection_id": conn_id, "conn_type": conn["conn_type"],
                                               "host": conn["host"], "port": conn.get("port"),
                                               "login": conn.get("login"), "password": conn["password"],
                                               "extra": json.dumps(conn.get("extra", {}))})

    def set_variable(self, key: str, value: str) -> None:
        """An Airflow Variable in the metadata DB, made or changed."""
        response = requests.patch(f"{self.url}/api/v2/variables/{key}", json={"key": key, "value": value}, timeout=120)
        if response.status_code == 404:
            self.api("POST", "/variables", json={"key": key, "value": value})
        else:
            assert response.status_code < 300, f"PATCH variable {key}: {response.status_code} {response.text[:500]}"

    def create_pool(self, name: str, slots: int) -> None:
        self.api("POST", "/pools", json={"name": name, "slots": slots})

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})["dag_run_id"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                        params={"limit": 100})["task_instances"]

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        self.api("POST", f"/dags/{dag_id}/clearTaskInstances",
                 json={"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": False,
                       "reset_dag_runs": True})


@pytest.fixture
def deployment(tmp_path: Path, migrated_db: Path) -> Iterator[tuple[Airflow3, Emulator, Path, dict[str, str]]]:
    """Airflow on a fresh home with the example DAGs, the emulator behind ``constant_contact_default``.

    Yields the deployment, the emulator, the output root and the emulator's credentials.
    """
    home = tmp_path / "airflow"
    (home / "config").mkdir(parents=True)
    (home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
    output = tmp_path / "output"
    credentials = {"api_key": f"system-test-key-{secrets.token_hex(8)}",
                   "token": f"system-test-token-{secrets.token_hex(8)}"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CC_"))}
    processes = Processes(home, env)
    try:
        emulator = Emulator(processes, ["--campaigns", "2", "--contacts", "200", "--activities", "300",
                                        "--api-key", credentials["api_key"], "--token", credentials["token"],
                                        "--api", "both"])
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "1",  # SQLite: one task at a time
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # the REST API without a login
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__API__PORT": str(free_port()),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API_AUTH__JWT_ISSUER": "cc-system-test",  # 3.0 has none by default; new PyJWT needs one
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__LOGGING__NAMESPACE_LEVELS": SCHEME_NOTICE,
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            # Parse each DAG file once (the default re-parses every 30 s): the DAGs do not change during a test.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW_VAR_CONSTANT_CONTACT_V3_OUTPUT_ROOT": f"file://{output}/v3/",
        })
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}/execution/"
        airflow = Airflow3(home, processes)
        airflow.start(migrated_db)
        # Stored in the metadata DB (as the UI or REST API does), so tasks read it through the API server.
        airflow.create_connection("constant_contact_default", json.loads(emulator.connection))
        # v3: the default token store (an Airflow Variable), written by the tasks through the API server.
        airflow.create_connection("constant_contact_v3_default", json.loads(emulator.v3_connection))
        # In the metadata DB, not the environment (which a task reads first), so a test can move it.
        airflow.set_variable("constant_contact_output_root", f"file://{output}/")
        yield airflow, emulator, output, credentials
    finally:
        processes.stop_all()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
