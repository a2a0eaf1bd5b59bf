"""Runs the cron-trigger example DAG's one task through ``dag.test`` in its own process, so that a test can
send it SIGTERM the way a worker or supervisor does. Takes its Airflow home, connection and output root from
the environment of the test that starts it. Usage: ``python -m tests.operators._stopping_runner LIMIT``."""

from __future__ import annotations

import inspect
import os
import sys

import pendulum

from airflow_provider_cc._compat import AIRFLOW_V_3


def main(limit: int) -> None:
    try:  # Airflow 3.1+
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # 2.x and 3.0
        from airflow.models.dagbag import DagBag

    options = {"include_examples": False} if "include_examples" in inspect.signature(DagBag).parameters else {}
    dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"], **options).dags["constant_contact_cron_trigger"]
    dag.get_task("pull_opens").limit = limit  # many small pages, so the signal lands mid-report
    when = pendulum.datetime(2024, 1, 2, 3, tz="UTC")
    try:
        run = dag.test(logical_date=when) if AIRFLOW_V_3 else dag.test(execution_date=when)
    except BaseException as exc:  # Airflow 2's SIGTERM handler raises AirflowTaskTerminated through dag.test
        print(f"RUNNER-RAISED {type(exc).__name__}", flush=True)
        from airflow.models.dagrun import DagRun

        run = DagRun.find(dag_id=dag.dag_id, **{"logical_date" if AIRFLOW_V_3 else "execution_date": when})[0]
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    print(f"RUNNER-STATES {states}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
