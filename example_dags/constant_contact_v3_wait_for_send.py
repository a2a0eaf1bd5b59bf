"""Wait for a v3 campaign to be sent, then extract its reports from its send time onwards.

The same sensor and operator as ``constant_contact_wait_for_send``, on a v3 connection. On v3 a campaign is
sent once it is ``Done`` and its primary email (or resend) has a completed send: each check costs one request
while it is not ``Done``, then one per activity's send history. The sensor defers to the triggerer and checks
every 10 minutes. Its result names the activity that was sent and its ``last_run_date``. Trigger with
``{"campaign_id": "<the campaign's UUID>"}``. Then one task pulls every report of each of the campaign's
activities (the account operator with ``campaign_ids``), a folder per activity (primary email, resend); a
report with no activity costs no request and writes no file.
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

CONN_ID = "constant_contact_v3_default"

with DAG(
    dag_id="constant_contact_v3_wait_for_send",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    params={"campaign_id": "e4cf53f0-e37f-11e8-9f32-f2801f1b9fd1"},
    tags=["constant-contact", "example", "v3"],
    doc_md=__doc__,
) as dag:
    sent = ConstantContactCampaignSentSensor(
        task_id="wait_for_send",
        constant_contact_conn_id=CONN_ID,
        campaign_id="{{ params.campaign_id }}",
        deferrable=True,
        poke_interval=600,
        timeout=timedelta(days=7).total_seconds(),
    )
    pull = ConstantContactAccountTrackingOperator(
        task_id="pull",
        constant_contact_conn_id=CONN_ID,
        campaign_ids="{{ params.campaign_id }}",
        created_since="{{ ti.xcom_pull(task_ids='wait_for_send')['last_run_date'] }}",
        destination="{{ var.value.get('constant_contact_v3_output_root', 'file:///tmp/constant_contact_v3/') }}",
        storage_conn_id="{{ var.value.get('constant_contact_storage_conn_id', '') }}",
        pool="constant_contact",
    )
    sent >> pull
