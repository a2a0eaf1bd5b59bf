"""A plain cron string schedule. On Airflow 3 that is a CronTriggerTimetable, whose runs have a
zero-width data interval: each run, the first one included, then pulls from the timetable's previous
scheduled time up to its own (the run at 2024-01-02 03:00 pulls [2024-01-01 03:00, 2024-01-02 03:00)), so a
rerun pulls the same window. On Airflow 2 a cron string already gives data intervals.
"""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator

with DAG(
    dag_id="constant_contact_cron_trigger",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["constant-contact", "example"],
    doc_md=__doc__,
) as dag:
    ConstantContactCampaignTrackingOperator(
        task_id="pull_opens",
        campaign_id="1100394165000",
        report="opens",
        destination="{{ var.value.get('constant_contact_output_root', 'file:///tmp/constant_contact/') }}",
        storage_conn_id="{{ var.value.get('constant_contact_storage_conn_id', '') }}",
        pool="constant_contact",
    )
