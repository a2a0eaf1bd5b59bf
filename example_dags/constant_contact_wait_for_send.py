"""Wait for a campaign to be SENT, then extract its reports from its send time onwards.

The sensor defers to the triggerer (no worker slot held) and checks every 10 minutes: each check is one of
the API key's 10,000 requests a day. Then one task pulls every report of the campaign (the account operator
with ``campaign_ids``): one campaign request, then the pages of the reports that have activity; a report with
none costs no request and writes no file. Trigger with ``{"campaign_id": "..."}``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from airflow_provider_cc.sensors.campaign import ConstantContactCampaignSentSensor

with DAG(
    dag_id="constant_contact_wait_for_send",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    params={"campaign_id": "1100394165000"},
    tags=["constant-contact", "example"],
    doc_md=__doc__,
) as dag:
    sent = ConstantContactCampaignSentSensor(
        task_id="wait_for_send",
        campaign_id="{{ params.campaign_id }}",
        deferrable=True,
        poke_interval=600,
        timeout=timedelta(days=7).total_seconds(),
    )
    pull = ConstantContactAccountTrackingOperator(
        task_id="pull",
        campaign_ids="{{ params.campaign_id }}",
        created_since="{{ ti.xcom_pull(task_ids='wait_for_send')['last_run_date'] }}",
        destination="{{ var.value.get('constant_contact_output_root', 'file:///tmp/constant_contact/') }}",
        storage_conn_id="{{ var.value.get('constant_contact_storage_conn_id', '') }}",
        pool="constant_contact",
    )
    sent >> pull
