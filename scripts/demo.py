"""The main job: the daily example pipeline, with real Airflow, against the emulator, leaving real files.

Run it through ``python3 scripts/run.py demo`` (which installs what it needs), or directly with a Python
that has Airflow and the provider. It starts the emulator (enforcing Constant Contact's 4 requests/s),
defines ``constant_contact_default`` for it, makes a fresh SQLite Airflow home under ``.airflow/``, creates
the ``constant_contact`` pool, runs ``constant_contact_daily`` for one fixed data interval with
``dag.test()`` and prints what it wrote under ``output/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = {"campaigns": 3, "contacts": 2000, "activities": 5000}


def _airflow(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "airflow", *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def table(output: Path) -> list[tuple[str, str, int, str]]:
    """(report, campaign, records, file) for every file written."""
    rows = []
    for path in sorted(output.rglob("*.jsonl")):
        parts = path.relative_to(output).parts  # campaign/<report>/campaign_id=<id>/<window>.jsonl
        with path.open("rb") as f:
            count = sum(1 for _ in f)
        rows.append((parts[1], parts[2].split("=", 1)[1], count, str(path.relative_to(ROOT) if path.is_relative_to(
            ROOT) else path)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=ROOT / "output", help="where the files go")
    parser.add_argument("--airflow-home", type=Path, default=None, help="default: .airflow/airflow-<major>")
    parser.add_argument("--logical-date", default="2024-01-02T03:00:00+00:00",
                        help="the run's logical date; its data interval is the day before it")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    args = parser.parse_args(argv)

    from importlib.metadata import version

    major = version("apache-airflow").split(".")[0]
    home = (args.airflow_home or ROOT / ".airflow" / f"airflow-{major}").resolve()
    output = args.output.resolve()
    shutil.rmtree(home, ignore_errors=True)  # a fresh metadata DB each run keeps reruns simple on Airflow 2
    home.mkdir(parents=True)
    shutil.rmtree(output, ignore_errors=True)
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO" if args.verbose else "WARNING",
        "AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT": f"file://{output}/",
    })

    from airflow_provider_cc.emulator import DataConfig, Emulator, FaultConfig

    emulator = Emulator(DataConfig(**DEMO_DATA), FaultConfig(qps=4)).start()

    def interrupted(signum: int, frame: object) -> None:
        # dag.test runs tasks in this process and would carry on past a KeyboardInterrupt: stop here.
        print("\ninterrupted: stopping the emulator; run the command again to start over", flush=True)
        emulator.stop()
        os._exit(130)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = emulator.connection_json()
    print(f"emulator: {emulator.url} (4 requests/s per key, like Constant Contact)\nairflow home: {home}", flush=True)
    try:
        _airflow("db", "migrate")
        _airflow("pools", "set", "constant_contact", "1", "Constant Contact API key: 4 requests/s")
        import pendulum

        sys.path.insert(0, str(ROOT))
        from airflow_provider_cc._compat import AIRFLOW_V_3
        from example_dags.constant_contact_daily import dag

        logical_date = pendulum.parse(args.logical_date)
        print(f"running {dag.dag_id} for logical date {logical_date} ...", flush=True)
        run = dag.test(logical_date=logical_date) if AIRFLOW_V_3 else dag.test(execution_date=logical_date)
    finally:
        emulator.stop()

    rows = table(output)
    widths = [max(len(str(r[i])) for r in [("report", "campaign", "records", "file"), *rows]) for i in range(4)]
    print(f"\nDAG run {run.state}: data interval {run.data_interval_start} to {run.data_interval_end}\n")
    for row in [("report", "campaign", "records", "file"), *rows]:
        print("  ".join(str(v).rjust(w) if i == 2 else str(v).ljust(w) for i, (v, w) in enumerate(
            zip(row, widths, strict=True))).rstrip())
    print(f"\n{len(rows)} files, {sum(r[2] for r in rows)} records; "
          f"API answers: {emulator.statuses} (403 = throttled)")
    return 0 if str(run.state) in ("success", "DagRunState.SUCCESS") and rows else 1


if __name__ == "__main__":
    sys.exit(main())
