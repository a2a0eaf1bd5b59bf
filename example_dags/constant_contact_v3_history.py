"""Load a long range of history on the v3 API in one pass, into ``constant_contact_v3_daily``'s partitions.

The same operator and arguments as ``constant_contact_history``, on a v3 connection. Trigger it with
``{"start": "2023-01-01T03:00:00Z", "end": "2024-01-01T03:00:00Z"}``. v3 reports have no time filter: each
(activity, report) is read newest first down to the first record older than ``start`` (every page newer than
``start``, plus one) and cut into one file per day, byte-identical to the daily DAG's files. Choosing the
campaigns costs ⌈sent campaigns / 500⌉ pages of the bulk summaries and one request per campaign for its
activities, once (cached under the root's ``_state/``).

v3's quota is per application (10,000 requests a day, 4 a second), shared by every account the app pulls:
``max_requests`` stops the task cleanly at its budget, keeping every file, and the retry a day later resumes
from the checkpoint. Run it in the ``constant_contact`` pool (1 slot), like the daily DAG.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

with DAG(
    dag_id="constant_contact_v3_history",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={"start": "2024-01-01T03:00:00Z", "end": "2024-01-04T03:00:00Z", "max_requests": 8000},
    default_args={"retries": 14, "retry_delay": timedelta(days=1)},
    tags=["constant-contact", "example", "v3"],
    doc_md=__doc__,
) as dag:
    ConstantContactAccountTrackingOperator(
        task_id="load_history",
        constant_contact_conn_id="constant_contact_v3_default",
        destination="{{ var.value.get('constant_contact_v3_output_root', 'file:///tmp/constant_contact_v3/') }}",
        storage_conn_id="{{ var.value.get('constant_contact_storage_conn_id', '') }}",
        created_since="{{ params.start }}",
        created_before="{{ params.end }}",
        partition=timedelta(days=1),
        partition_anchor="2024-01-01T03:00:00Z",  # the daily DAG's interval boundaries
        max_requests="{{ params.max_requests }}",
        pool="constant_contact",
    )
