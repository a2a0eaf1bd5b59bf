"""Call the hook from your own task: count a campaign's opens in each day's data interval.

The hook reports each report it reads to Airflow's hook lineage collector, so with the OpenLineage provider
installed this task's events carry the Constant Contact input dataset, named as the operators name it
(``{API host}/v2/emailmarketing/campaigns/{id}/tracking/opens``). One request per 500 opens.
"""

from __future__ import annotations

from typing import Any

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task
try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 2 and 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_cc.hooks.constant_contact import ConstantContactHook

with DAG(
    dag_id="constant_contact_hook_in_task",
    schedule=CronDataIntervalTimetable("0 5 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"campaign_id": "1100394165000"},
    tags=["constant-contact", "example"],
    doc_md=__doc__,
) as dag:

    @task(pool="constant_contact")
    def count_opens(*, params: Any = None, data_interval_start: Any = None, data_interval_end: Any = None) -> int:
        """The campaign's opens in ``[data_interval_start, data_interval_end)``."""
        hook = ConstantContactHook()
        try:
            return sum(1 for _ in hook.iter_campaign_tracking(params["campaign_id"], "opens",
                                                               created_since=data_interval_start,
                                                               created_before=data_interval_end))
        finally:
            hook.close()

    count_opens()
