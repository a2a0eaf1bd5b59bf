"""A manual pull of any window: trigger with params, e.g. ``{"created_since": "2024-01-01"}``.

Runs triggered without a logical date (Airflow 3) have no data interval: the window comes from the
params, and its end defaults to the moment the run was triggered.
"""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator

with DAG(
    dag_id="constant_contact_manual",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    params={"campaign_id": "1100394165000", "report": "opens", "created_since": "", "created_before": ""},
    tags=["constant-contact", "example"],
    doc_md=__doc__,
) as dag:
    ConstantContactCampaignTrackingOperator(
        task_id="pull",
        campaign_id="{{ params.campaign_id }}",
        report="{{ params.report }}",
        created_since="{{ params.created_since }}",
        created_before="{{ params.created_before }}",
        destination="{{ var.value.get('constant_contact_output_root', 'file:///tmp/constant_contact/') }}",
        storage_conn_id="{{ var.value.get('constant_contact_storage_conn_id', '') }}",
        pool="constant_contact",
    )
