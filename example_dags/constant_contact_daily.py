"""Daily incremental pipeline for a whole account: one task per interval pulls every tracking report of every
campaign that can have activity in it, into one root.

- The schedule is a data-interval timetable, so each run covers [previous 03:00, this 03:00) UTC and
  consecutive runs neither overlap nor leave gaps. ``catchup=True``: after downtime, or when the DAG is
  first enabled, Airflow runs every missed interval, one at a time (``max_active_runs=1``); on Airflow 2
  ``airflow dags backfill`` works too (no mapped tasks, so no backfill deadlock).
- One task, no mapping: the operator runs ``concurrency`` (default 4) requests in flight inside the task, on
  the API key's one rate limiter, which keeps a 4 requests/s key busy. Run it in the ``constant_contact``
  pool with **1 slot** (``airflow pools set constant_contact 1 "Constant Contact API key"``), so a second
  task on the same key (a backfill, the history DAG) waits instead of sharing the key's 4 requests/s.
- Campaigns sent in the 30 days before the interval (``sent_within``) are pulled every run: one request for
  their send time and totals, one page per report with activity (more above 500 new records). Older
  campaigns are checked once a week (``recheck_every``: one request each) and a report of theirs is pulled
  only when its total changed, from where its files end, into the same daily files: their late opens and
  clicks reach their day's file within 7 days, and the daily cost follows activity, not the account's age
  (about 640 requests a day for 2,000 campaigns sent over 4 years; docs/account-scale.md). Remove both
  arguments to pull every campaign every run (exact, but one request per campaign ever sent, and more).
  Clearing a finished run pulls its day completely.
- Files land at ``{root}campaign/{report}/campaign_id={id}/{start}_{end}.jsonl``, one per campaign and
  report with activity in the interval, and the run's ``campaigns`` and ``links`` dimensions at
  ``{root}dimension/v2/{name}/{start}_{end}.jsonl`` (docs/analytics.md); a rerun of an interval rewrites the
  same bytes. Set the root with the Airflow Variable ``constant_contact_output_root`` (an object store on
  multi-machine deployments, e.g. ``s3://bucket/prefix/``) and its connection with
  ``constant_contact_storage_conn_id`` (e.g. ``aws_default``; unset or empty: none, for local disk). Load
  years of history into the same files with ``constant_contact_history``.
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

from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

OUTPUT_ROOT = "{{ var.value.get('constant_contact_output_root', 'file:///tmp/constant_contact/') }}"
# The object store's Airflow connection (e.g. aws_default for an s3:// root); empty (the default) means none.
STORAGE_CONN_ID = "{{ var.value.get('constant_contact_storage_conn_id', '') }}"

with DAG(
    dag_id="constant_contact_daily",
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=True,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["constant-contact", "example"],
    doc_md=__doc__,
) as dag:
    ConstantContactAccountTrackingOperator(
        task_id="pull_account",
        destination=OUTPUT_ROOT,
        storage_conn_id=STORAGE_CONN_ID,
        sent_within=timedelta(days=30),
        recheck_every=timedelta(days=7),
        # Also writes dimension/v2/{campaigns,links}/ (names, subjects, send dates, URLs): no extra request.
        dimensions=True,
        pool="constant_contact",
    )
