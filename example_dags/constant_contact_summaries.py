"""Campaign summaries into XCom: one small dict per SENT campaign, refreshed (``update_summary``)."""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 2 and 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_cc.operators.tracking import (
    ConstantContactCampaignSummaryOperator,
    ConstantContactListCampaignsOperator,
)

with DAG(
    dag_id="constant_contact_summaries",
    schedule=CronDataIntervalTimetable("0 4 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["constant-contact", "example"],
    doc_md=__doc__,
) as dag:
    campaigns = ConstantContactListCampaignsOperator(task_id="list_sent_campaigns", pool="constant_contact")
    ConstantContactCampaignSummaryOperator.partial(
        task_id="campaign_summary", update_summary=True, pool="constant_contact"
    ).expand(campaign_id=campaigns.output)
