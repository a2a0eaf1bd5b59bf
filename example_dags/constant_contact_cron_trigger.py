"""A plain cron string schedule. On Airflow 3 that is a CronTriggerTimetable, whose runs have a
zero-width data interval: the operators then continue from the previous successful run's interval end,
and the very first run fails asking for ``created_since`` (or a data-interval timetable). On Airflow 2 a
cron string already gives data intervals.
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
        pool="constant_contact",
    )
