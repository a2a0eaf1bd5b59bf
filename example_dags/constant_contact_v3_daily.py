"""The daily account pipeline on the Constant Contact v3 API: the same operator and arguments as
``constant_contact_daily``; only the connection differs (type ``constant_contact_v3``, OAuth2; set it up with
``python -m airflow_provider_cc.auth login``, docs/v3.md). A DAG moves from v2 to v3 by pointing its
``constant_contact_conn_id`` at a v3 connection (or by giving its v2 connection id a v3 connection).

- What it costs on v3, per run: ⌈sent campaigns / 500⌉ pages of the bulk campaign summaries (every campaign's
  last send and report totals: no request per campaign); for the older campaigns due for their weekly
  re-check, ⌈their activities / 10⌉ requests of activity stats (record counts, which prove them unchanged); one
  request per new campaign for its activities (cached under ``{root}_state/``); then, per activity (primary
  email, resend) and report with activity, the pages newer than the interval's start plus one (v3 reports
  have no time filter: they are read newest first, down to the first older record).
- Files land at ``{root}campaign/{report}/campaign_id={id}/campaign_activity_id={activity}/{start}_{end}.jsonl``
  with v3's columns (``created_time``, ``campaign_activity_id``...), and the ``campaigns``,
  ``campaign_activities`` and ``links`` dimensions at ``{root}dimension/v3/{name}/{start}_{end}.jsonl``.
  Moving from the v2 daily DAG: stop it after day D-1, start this one at D on the same root, and read both
  through the views of docs/switch-over.md.
- Schedule, pool and retries as in ``constant_contact_daily``: one task per interval, in the
  ``constant_contact`` pool of 1 slot, since v3's 4 requests/s are per application, shared by every account
  it pulls.
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

OUTPUT_ROOT = "{{ var.value.get('constant_contact_v3_output_root', 'file:///tmp/constant_contact_v3/') }}"
STORAGE_CONN_ID = "{{ var.value.get('constant_contact_storage_conn_id', '') }}"

with DAG(
    dag_id="constant_contact_v3_daily",
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=True,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["constant-contact", "example", "v3"],
    doc_md=__doc__,
) as dag:
    ConstantContactAccountTrackingOperator(
        task_id="pull_account",
        constant_contact_conn_id="constant_contact_v3_default",
        destination=OUTPUT_ROOT,
        storage_conn_id=STORAGE_CONN_ID,
        sent_within=timedelta(days=30),
        recheck_every=timedelta(days=7),
        # Also writes dimension/v3/{campaigns,campaign_activities,links}/: a campaign-list page, 2 requests per new
        # activity (once), 1 per activity with clicks in the run.
        dimensions=True,
        pool="constant_contact",
    )
