"""Daily incremental pipeline: every tracking report of every SENT campaign, one file each, under one root.

- The schedule is a data-interval timetable, so each run covers [previous 03:00, this 03:00) UTC and
  consecutive runs neither overlap nor leave gaps (backfills too).
- Mapped over the SENT campaigns x the six reports; every task runs in the ``constant_contact`` pool.
  Size it to the API key's limit: 1 slot at the connection's default 4 requests/s, or N slots with
  ``requests_per_second`` = 4 / N in the connection's extras.
- Files land at ``{root}campaign/{report}/campaign_id={id}/{start}_{end}.jsonl``: deterministic, so a rerun
  of an interval replaces its files. Set the root with the Airflow Variable ``constant_contact_output_root``
  (``s3://bucket/prefix/`` with ``storage_conn_id`` on multi-machine deployments).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

# Your own DAGs import these from airflow.sdk (Airflow 3) or airflow / airflow.timetables (Airflow 2).
from airflow_provider_cc._compat import DAG, CronDataIntervalTimetable
from airflow_provider_cc.operators.tracking import (
    ConstantContactCampaignTrackingOperator,
    ConstantContactListCampaignsOperator,
)
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES

OUTPUT_ROOT = "{{ var.value.get('constant_contact_output_root', 'file:///tmp/constant_contact/') }}"
POOL = "constant_contact"

with DAG(
    dag_id="constant_contact_daily",
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
        file_format="jsonl",
        pool=POOL,
        map_index_template="{{ task.report }} {{ task.campaign_id }}",
    ).expand(campaign_id=campaigns.output, report=list(CAMPAIGN_REPORT_NAMES))
