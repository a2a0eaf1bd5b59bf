"""The main job: the daily example pipeline, with real Airflow, against the emulator, leaving real files.

Run it through ``python3 scripts/run.py demo [--api v3]`` (which installs what it needs), or directly with a
Python that has Airflow and the provider. It starts the emulator (enforcing Constant Contact's 4 requests/s),
makes a fresh SQLite Airflow home (``.airflow/airflow-<major>``, made afresh on every run: its metadata DB a
copy of an empty one migrated by the first run and kept as ``.airflow/migrated-<Airflow version>.db``), empties
the output folder (``output/``) it made before, creates the ``constant_contact`` pool, runs the daily example
DAG for one fixed data interval with ``dag.test()`` and prints what it wrote (the event files, then the
dimension files).

* ``--api v2`` (default): ``constant_contact_default`` points at the emulator's v2 API (its key and token);
  the DAG is ``constant_contact_daily``.
* ``--api v3``: the emulator's OAuth2 server issues rotating refresh tokens; the demo runs the login command
  (``python -m airflow_provider_cc.auth login``, the device flow) against it, approves the code itself on the
  emulator's approval page, as a person would in a browser, and defines ``constant_contact_v3_default`` from
  the connection the login prints (no token in it: the tokens are in an Airflow Variable). The DAG is
  ``constant_contact_v3_daily``.

``dag.test()`` runs in a child process whose output (Airflow's own) goes to a log file in the home, so
the terminal shows the table only (``--verbose``: everything, at INFO). Ctrl-C (or SIGTERM) kills the child
at once, and the demo then deletes the hidden temporary file a write cut short leaves, so no ``.*.tmp``
stays behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = {"campaigns": 3, "contacts": 2000, "activities": 5000}
# What differs between the APIs: the example DAG, its connection and the Airflow Variable naming its output root.
APIS = {
    "v2": {"dag": "constant_contact_daily", "conn": "AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT",
           "output_var": "AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT", "throttled": 403},
    "v3": {"dag": "constant_contact_v3_daily", "conn": "AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT",
           "output_var": "AIRFLOW_VAR_CONSTANT_CONTACT_V3_OUTPUT_ROOT", "throttled": 429},
}
DEVICE_INTERVAL = 1.0  # seconds between the login's polls (Constant Contact asks for 5; the demo need not wait)
LOGIN_DEADLINE = 300.0  # the login must have printed its connection by then
POOL = ("constant_contact", 1, "Constant Contact API key: 4 requests/s")
# Marks an output folder as the demo's own, so it may empty it; the layout's top folders are accepted too.
MARKER = ".constant-contact-demo"
LAYOUT_TOPS = {"campaign", "contact", "dimension", "_state", MARKER}
# The atomic writer's temporary files: ".{name}.{uuid4 hex}.tmp" beside the target.
TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")
# Airflow logs "Connection schemes (type: constant_contact) shall not contain '_'" each time it reads the
# connection (Connection.get_uri, called to fill its secrets cache). The type name is the provider's
# public name, and nothing is wrong: this logger says nothing else below ERROR. Airflow 3.1+ reads the
# setting; on 2.11 and 3.0, _run_dag lowers the logger itself.
SCHEME_LOGGER = "airflow.models.connection.Connection"


def shown(path: Path, folder: bool = False) -> str:
    """``path`` relative to the checkout when inside it; a folder ends with ``/``."""
    text = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    return text + "/" if folder else text


def table(output: Path) -> list[tuple[str, ...]]:
    """(report, campaign, records, file) for every file written; on v3 (report, campaign, activity, records,
    file), a campaign's folder holding one folder per activity (primary email, resend), the UUIDs shortened to
    their first 8 characters (the file's path has them whole)."""
    rows: list[tuple[str, ...]] = []
    for path in sorted((output / "campaign").rglob("*.jsonl")):
        parts = path.relative_to(output).parts  # campaign/<report>/campaign_id=<id>/[campaign_activity_id=<a>/]...
        with path.open("rb") as f:
            count = str(sum(1 for _ in f))
        ids = [part.split("=", 1)[1] for part in parts[2:-1]]
        ids = [f"{i[:8]}…" if len(ids) > 1 else i for i in ids]
        rows.append((parts[1], *ids, count, shown(path)))
    return rows


def dimension_table(output: Path) -> list[tuple[str, ...]]:
    """(dimension, rows, file) for every dimension file written (``dimensions=True``: campaigns, links; on v3
    campaign activities too)."""
    rows: list[tuple[str, ...]] = []
    for path in sorted((output / "dimension").rglob("*.jsonl")):
        with path.open("rb") as f:
            rows.append((path.parent.name, str(sum(1 for _ in f)), shown(path)))
    return rows


def print_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Columns padded to their widest value, the count (the column before the file) right-aligned."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(v.rjust(w) if i == len(head) - 2 else v.ljust(w) for i, (v, w) in enumerate(
            zip(row, widths, strict=True))).rstrip())


def empty_output(output: Path) -> None:
    """Empty the demo's output folder; refuse a non-empty folder the demo did not make."""
    if output.is_dir() and not {p.name for p in output.iterdir()} <= LAYOUT_TOPS:
        sys.exit(f"{output} holds files the demo did not write; pass --output with an empty or new folder")
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    (output / MARKER).write_text("made by scripts/demo.py, which empties this folder on every run\n")


def remove_temporaries(output: Path) -> int:
    """Delete the temporary files of writes cut short; call it only once nothing writes any more."""
    leftovers = [p for p in output.rglob(".*.tmp") if TEMPORARY.fullmatch(p.name)]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


def migrated_db(home: Path, log: Path | None) -> bool:
    """Put an empty migrated metadata DB in ``home`` (:func:`kept_migrated_db`). False if migrating failed."""
    return kept_migrated_db(home / "airflow.db",
                            lambda: _child([sys.executable, "-m", "airflow", "db", "migrate"], log) == 0)


def kept_migrated_db(database: Path, migrate: Callable[[], bool]) -> bool:
    """Put an empty migrated metadata DB of this Airflow at ``database``: a copy of the one kept in ``.airflow/``
    for this Airflow version, else ``migrate()`` (which writes ``database``, about 15 CPU seconds), whose result is
    then kept. The demo and the tests share it (both migrate without examples or default connections). False if
    ``migrate()`` failed."""
    import fcntl
    from importlib.metadata import version

    kept = ROOT / ".airflow" / f"migrated-{version('apache-airflow')}.db"
    kept.parent.mkdir(parents=True, exist_ok=True)
    with kept.with_name(f".{kept.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two first runs at once: one migrates, the other copies its result
        if not kept.exists():
            if not migrate():
                return False
            partial = kept.with_name(f".{kept.name}.tmp")
            shutil.copyfile(database, partial)
            os.replace(partial, kept)  # whole or absent, whenever the run is stopped
            return True
    shutil.copyfile(kept, database)
    return True


def _run_dag(result: Path, logical_date: str, dag_id: str) -> None:
    """The child process: the pool, then ``dag.test`` for one logical date; the outcome as JSON in ``result``."""
    logging.getLogger(SCHEME_LOGGER).setLevel(logging.ERROR)  # see SCHEME_LOGGER
    import pendulum
    from airflow.models.pool import Pool

    sys.path.insert(0, str(ROOT))
    from importlib import import_module

    from airflow_provider_cc._compat import AIRFLOW_V_3

    dag = import_module(f"example_dags.{dag_id}").dag

    name, slots, description = POOL
    Pool.create_or_update_pool(name, slots, description, include_deferred=False)
    date = pendulum.parse(logical_date)
    run = dag.test(logical_date=date) if AIRFLOW_V_3 else dag.test(execution_date=date)
    state = getattr(run.state, "value", run.state)
    result.write_text(json.dumps({"state": str(state), "start": str(run.data_interval_start),
                                  "end": str(run.data_interval_end)}))


def _child(cmd: list[str], log: Path | None) -> int:
    """Run ``cmd`` in its own session (Ctrl-C reaches only the demo); SIGKILL it if the demo is interrupted."""
    out = log.open("ab") if log else None
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None, start_new_session=True)
    try:
        return proc.wait()
    except BaseException:
        _kill(proc)
        raise
    finally:
        if out:
            out.close()


def _kill(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):  # it may have ended on its own meanwhile
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _approve(link: str, user_code: str) -> None:
    """Press the Approve button of the emulator's device-approval page (what a person does in the browser)."""
    import requests

    page = link.split("?", 1)[0]
    answer = requests.post(page, data={"user_code": user_code, "decision": "approve"}, timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"the emulator's approval page answered {answer.status_code} for code {user_code}")


def log_in(emulator: Any, log: Path | None) -> str:
    """Run the login command against the emulator (device flow), approve its code, and return the connection
    (JSON) it prints; its lines are shown as it prints them. The tokens go to its default store, an Airflow
    Variable in the demo's metadata DB."""
    client_id = emulator.v3.options.client_id
    cmd = [sys.executable, "-m", "airflow_provider_cc.auth", "login", "--client-id", client_id,
           "--token-url", emulator.token_url, "--host", emulator.url]
    print(f"login: python -m airflow_provider_cc.auth login --client-id {client_id} --token-url "
          f"{emulator.token_url} --host {emulator.url}", flush=True)
    err = log.open("ab") if log else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    timer = threading.Timer(LOGIN_DEADLINE, _kill, (proc,))  # a login that never ends ends the demo
    timer.start()
    connection = None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("export AIRFLOW_CONN_"):
                connection = shlex.split(line.partition("=")[2])[0]
                print("login: printed the connection to create; the demo defines constant_contact_v3_default "
                      "from it (no token in it: the tokens are in an Airflow Variable)", flush=True)
                continue
            if line.strip():
                print(f"login: {line}", flush=True)
            found = re.search(r"(https?://\S+).*\(code ([A-Z0-9-]+)\)", line)
            if found:
                print(f"demo: approving code {found[2]} itself, as you would on that page (its Approve button)",
                      flush=True)
                _approve(found[1], found[2])
        code = proc.wait()
    except BaseException:
        _kill(proc)
        raise
    finally:
        timer.cancel()
        if err:
            err.close()
    if code or connection is None:
        raise RuntimeError(f"the login command failed (exit code {code}){_tail(log)}")
    return connection


def _tail(log: Path | None, lines: int = 40) -> str:
    """The end of Airflow's log, to show when something failed."""
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; the end of {shown(log)}:\n" + "\n".join(text)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", choices=sorted(APIS), default="v2",
                        help="v2 (default) or v3: v3 logs in to the emulator's OAuth2 server first (device flow)")
    parser.add_argument("--output", type=Path, default=ROOT / "output",
                        help="where the files go (default output/); emptied first")
    parser.add_argument("--airflow-home", type=Path, default=None,
                        help="default: .airflow/airflow-<Airflow major version>; made afresh on every run")
    parser.add_argument("--logical-date", default="2024-01-02T03:00:00+00:00",
                        help="the run's logical date; its data interval is the day before it")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    parser.add_argument("--run-dag", type=Path, help=argparse.SUPPRESS)  # the child process's entry
    args = parser.parse_args(argv)
    api = APIS[args.api]
    if args.run_dag:
        _run_dag(args.run_dag, args.logical_date, api["dag"])
        return 0

    from importlib.metadata import version

    major = version("apache-airflow").split(".")[0]
    home = (args.airflow_home or ROOT / ".airflow" / f"airflow-{major}").resolve()
    output = args.output.resolve()
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO" if args.verbose else "WARNING",
        "AIRFLOW__LOGGING__NAMESPACE_LEVELS": f"{SCHEME_LOGGER}=ERROR",  # see SCHEME_LOGGER
        # Airflow 2.11 warns at import unless timers are in milliseconds, as Airflow 3 always does.
        "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",
        # Airflow 2's migrate would add its example connections, encrypted with this run's Fernet key.
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        api["output_var"]: f"file://{output}/",
    })
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", _fernet_key())  # Airflow 2 warns when it has none
    for signum in (signal.SIGINT, signal.SIGTERM):  # also where SIGINT was inherited ignored (a `cmd &` job)
        signal.signal(signum, _interrupt)

    print(f"airflow home: {shown(home, folder=True)} (made afresh on every run)", flush=True)
    shutil.rmtree(home, ignore_errors=True)  # a fresh metadata DB each run keeps reruns simple on Airflow 2
    home.mkdir(parents=True)
    print(f"output: {shown(output, folder=True)} (emptied first, so the table below lists this run's files)",
          flush=True)
    empty_output(output)

    from airflow_provider_cc.emulator import DataConfig, Emulator, FaultConfig, V3Options

    emulator = Emulator(DataConfig(**DEMO_DATA), FaultConfig(qps=4),
                        v3=V3Options(mode="rotating", device_interval=DEVICE_INTERVAL)).start()
    if args.api == "v2":
        os.environ[api["conn"]] = emulator.connection_json()
        print(f"emulator: {emulator.url} (v2 API; 4 requests/s per key, like Constant Contact)", flush=True)
    else:
        print(f"emulator: {emulator.url} (v3 API and its OAuth2 server, rotating refresh tokens; 4 requests/s "
              "per application, like Constant Contact)", flush=True)
    log = None if args.verbose else home / "airflow.log"
    result = home / "demo-run.json"
    try:
        if not migrated_db(home, log):
            sys.exit(f"airflow db migrate failed{_tail(log)}")
        if args.api == "v3":
            try:
                os.environ[api["conn"]] = log_in(emulator, log)
            except RuntimeError as exc:
                print(f"\n{exc}", flush=True)
                return 1
        print(f"running {api['dag']} for logical date {args.logical_date} ...", flush=True)
        code = _child([sys.executable, __file__, "--api", args.api, "--run-dag", str(result), "--logical-date",
                       args.logical_date], log)
    except KeyboardInterrupt:
        removed = remove_temporaries(output)
        print(f"\ninterrupted: stopped the run and the emulator; removed {removed} unfinished temporary "
              f"file(s); run the command again to start over", flush=True)
        return 130
    finally:
        emulator.stop()
    if code or not result.exists():
        print(f"\nthe DAG run did not complete (exit code {code}){_tail(log)}", flush=True)
        return 1

    run = json.loads(result.read_text())
    rows, dimensions = table(output), dimension_table(output)
    print(f"\nDAG run {run['state']}: data interval {run['start']} to {run['end']}\n")
    print_table(("report", "campaign", *(("activity",) if args.api == "v3" else ()), "records", "file"), rows)
    if dimensions:
        print()
        print_table(("dimension", "rows", "file"), dimensions)
    print(f"\n{len(rows)} files, {sum(int(r[-2]) for r in rows)} records; {len(dimensions)} dimension files, "
          f"{sum(int(r[-2]) for r in dimensions)} rows; API answers: {emulator.statuses} "
          f"({api['throttled']} = throttled)", flush=True)
    if args.api == "v3":
        grants = Counter(grant.rsplit(":", 1)[-1] for _, grant, outcome in emulator.v3.oauth.token_calls
                         if outcome == "ok")
        print(f"token endpoint: {dict(grants)} (one device-code login; a refresh only when an access token "
              "expires, each one rotating the refresh token)", flush=True)
    if log:
        print(f"Airflow's log: {shown(log)}", flush=True)
    return 0 if run["state"] == "success" and rows else 1


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before the emulator started: nothing to clean up
        sys.exit(130)
