"""Load a long range of history in one pass, into the daily DAG's partitions.

Trigger it with ``{"start": "2023-01-01T03:00:00Z", "end": "2024-01-01T03:00:00Z"}``. Each (campaign,
report) is fetched once from ``start`` (the API returns everything newer, newest first) and cut into one
file per day, byte-identical to the files ``constant_contact_daily`` writes for those days: a year costs
about one pass over the account's data instead of a pass per day. ``start`` and ``end`` must fall on the
daily DAG's 03:00 UTC boundaries.

The key's quota is 10,000 requests a day: ``max_requests`` (default 8,000, leaving room for the daily DAG)
stops the task cleanly at its budget, keeping every file written. The task then fails saying what is done
and left, and its retry the next day resumes from the checkpoint under the root without fetching a
finished (campaign, report) again. Run it in the ``constant_contact`` pool (1 slot), like the daily DAG.
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
    dag_id="constant_contact_history",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={"start": "2024-01-01T03:00:00Z", "end": "2024-01-04T03:00:00Z", "max_requests": 8000},
    # A stop at the budget fails the try; the next try, a day later, resumes with a fresh day of quota.
    default_args={"retries": 14, "retry_delay": timedelta(days=1)},
    tags=["constant-contact", "example"],
    doc_md=__doc__,
) as dag:
    ConstantContactAccountTrackingOperator(
        task_id="load_history",
        destination="{{ var.value.get('constant_contact_output_root', 'file:///tmp/constant_contact/') }}",
        storage_conn_id="{{ var.value.get('constant_contact_storage_conn_id', '') }}",
        created_since="{{ params.start }}",
        created_before="{{ params.end }}",
        partition=timedelta(days=1),
        partition_anchor="2024-01-01T03:00:00Z",  # the daily DAG's interval boundaries
        max_requests="{{ params.max_requests }}",
        pool="constant_contact",
    )
