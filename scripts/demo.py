"""The main job: the daily example pipeline, with real Airflow, against the emulator, leaving real files.

Run it through ``python3 scripts/run.py demo`` (which installs what it needs), or directly with a Python
that has Airflow and the provider. It starts the emulator (enforcing Constant Contact's 4 requests/s),
defines ``constant_contact_default`` for it, makes a fresh SQLite Airflow home (``.airflow/airflow-<major>``,
made afresh on every run), empties the output folder (``output/``) it made before, creates the
``constant_contact`` pool, runs ``constant_contact_daily`` for one fixed data interval with ``dag.test()``
and prints what it wrote.

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
import shutil
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = {"campaigns": 3, "contacts": 2000, "activities": 5000}
POOL = ("constant_contact", 1, "Constant Contact API key: 4 requests/s")
# Marks an output folder as the demo's own, so it may empty it; the layout's top folders are accepted too.
MARKER = ".constant-contact-demo"
LAYOUT_TOPS = {"campaign", "contact", "_state", MARKER}
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


def table(output: Path) -> list[tuple[str, str, int, str]]:
    """(report, campaign, records, file) for every file written."""
    rows = []
    for path in sorted(output.rglob("*.jsonl")):
        parts = path.relative_to(output).parts  # campaign/<report>/campaign_id=<id>/<window>.jsonl
        with path.open("rb") as f:
            count = sum(1 for _ in f)
        rows.append((parts[1], parts[2].split("=", 1)[1], count, shown(path)))
    return rows


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


def _run_dag(result: Path, logical_date: str) -> None:
    """The child process: the pool, then ``dag.test`` for one logical date; the outcome as JSON in ``result``."""
    logging.getLogger(SCHEME_LOGGER).setLevel(logging.ERROR)  # see SCHEME_LOGGER
    import pendulum
    from airflow.models.pool import Pool

    sys.path.insert(0, str(ROOT))
    from airflow_provider_cc._compat import AIRFLOW_V_3
    from example_dags.constant_contact_daily import dag

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
        with suppress(ProcessLookupError):  # it may have ended on its own meanwhile
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        if out:
            out.close()


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
    parser.add_argument("--output", type=Path, default=ROOT / "output",
                        help="where the files go (default output/); emptied first")
    parser.add_argument("--airflow-home", type=Path, default=None,
                        help="default: .airflow/airflow-<Airflow major version>; made afresh on every run")
    parser.add_argument("--logical-date", default="2024-01-02T03:00:00+00:00",
                        help="the run's logical date; its data interval is the day before it")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    parser.add_argument("--run-dag", type=Path, help=argparse.SUPPRESS)  # the child process's entry
    args = parser.parse_args(argv)
    if args.run_dag:
        _run_dag(args.run_dag, args.logical_date)
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
        "AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT": f"file://{output}/",
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

    from airflow_provider_cc.emulator import DataConfig, Emulator, FaultConfig

    emulator = Emulator(DataConfig(**DEMO_DATA), FaultConfig(qps=4)).start()
    os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = emulator.connection_json()
    print(f"emulator: {emulator.url} (4 requests/s per key, like Constant Contact)", flush=True)
    log = None if args.verbose else home / "airflow.log"
    result = home / "demo-run.json"
    try:
        if _child([sys.executable, "-m", "airflow", "db", "migrate"], log):
            sys.exit(f"airflow db migrate failed{_tail(log)}")
        print(f"running constant_contact_daily for logical date {args.logical_date} ...", flush=True)
        code = _child([sys.executable, __file__, "--run-dag", str(result), "--logical-date", args.logical_date],
                      log)
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
    rows = table(output)
    widths = [max(len(str(r[i])) for r in [("report", "campaign", "records", "file"), *rows]) for i in range(4)]
    print(f"\nDAG run {run['state']}: data interval {run['start']} to {run['end']}\n")
    for row in [("report", "campaign", "records", "file"), *rows]:
        print("  ".join(str(v).rjust(w) if i == 2 else str(v).ljust(w) for i, (v, w) in enumerate(
            zip(row, widths, strict=True))).rstrip())
    print(f"\n{len(rows)} files, {sum(r[2] for r in rows)} records; "
          f"API answers: {emulator.statuses} (403 = throttled)" + (f"\nAirflow's log: {shown(log)}" if log else ""))
    return 0 if run["state"] == "success" and rows else 1


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before the emulator started: nothing to clean up
        sys.exit(130)
