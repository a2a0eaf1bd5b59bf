"""One task per campaign and report: the single-campaign operator, mapped over the SENT campaigns.

For small accounts, or to see each report as its own task instance. Every SENT campaign, however old, costs
6 task instances and at least 6 requests per run (an empty report costs 2: its page and a status check),
so on a real account prefer ``constant_contact_daily`` (one task for the whole account). Every task runs in
the ``constant_contact`` pool: 1 slot at the connection's default 4 requests/s, or N slots with
``requests_per_second`` = 4 / N in the connection's extras (or the connection's shared Redis limiter).
Mapped DAGs cannot be backfilled on Airflow 2 (``BackfillJob is deadlocked``), hence ``catchup=False``.
"""

from __future__ import annotations

from datetime import timedelta

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
    ConstantContactCampaignTrackingOperator,
    ConstantContactListCampaignsOperator,
)
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES

OUTPUT_ROOT = "{{ var.value.get('constant_contact_output_root', 'file:///tmp/constant_contact/') }}"
# The object store's Airflow connection (e.g. aws_default for an s3:// root); empty (the default) means none.
STORAGE_CONN_ID = "{{ var.value.get('constant_contact_storage_conn_id', '') }}"
POOL = "constant_contact"

with DAG(
    dag_id="constant_contact_per_campaign",
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["constant-contact", "example"],
    doc_md=__doc__,
) as dag:
    campaigns = ConstantContactListCampaignsOperator(task_id="list_sent_campaigns", status="SENT", pool=POOL)

    ConstantContactCampaignTrackingOperator.partial(
        task_id="pull_tracking",
        destination=OUTPUT_ROOT,
        storage_conn_id=STORAGE_CONN_ID,
        file_format="jsonl",
        pool=POOL,
        map_index_template="{{ task.report }} {{ task.campaign_id }}",
    ).expand(campaign_id=campaigns.output, report=list(CAMPAIGN_REPORT_NAMES))
