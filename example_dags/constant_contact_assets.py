"""Producer and consumer of Constant Contact data, joined by an asset (a dataset on Airflow 2).

``constant_contact_assets_producer`` pulls every tracking report of every SENT campaign for its interval into
files under one root. Its tracking tasks name the asset as an outlet, so each successful task records an
asset event whose ``extra`` is the manifest of what it wrote:
``{"files": [{"uri", "records", "bytes"}], "file_count", "records", "reports", "window"}``.

``constant_contact_assets_consumer`` is scheduled on that asset: Airflow starts it once new events arrive,
however many tasks produced them. It logs the manifests that triggered it and (re)builds one DuckDB table
per report from every file under the root, typed by the provider's schema. Rebuilding from the files makes
each run idempotent: a rerun of an interval replaces files, never duplicates rows.

Set the root with the Airflow Variable ``constant_contact_output_root`` (a local ``file://`` root here; DuckDB
reads ``s3://`` with its httpfs extension) and the database with ``constant_contact_duckdb``.
"""

from __future__ import annotations

import logging

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG, Asset, task
except ImportError:  # Airflow 2: an asset is a Dataset
    from airflow import DAG
    from airflow.datasets import Dataset as Asset
    from airflow.decorators import task
try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 2 and 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_cc.operators.tracking import (
    ConstantContactCampaignTrackingOperator,
    ConstantContactListCampaignsOperator,
)
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES, REPORTS
from airflow_provider_cc.schemas import duckdb_columns

OUTPUT_ROOT = "{{ var.value.get('constant_contact_output_root', 'file:///tmp/constant_contact/') }}"
# The object store's Airflow connection (e.g. aws_default for an s3:// root); empty (the default) means none.
STORAGE_CONN_ID = "{{ var.value.get('constant_contact_storage_conn_id', '') }}"
DUCKDB_PATH = "{{ var.value.get('constant_contact_duckdb', '/tmp/constant_contact.duckdb') }}"
POOL = "constant_contact"
# A logical name: the asset stands for "new Constant Contact tracking files", wherever the root is.
TRACKING_FILES = Asset("constant_contact_tracking_files")

log = logging.getLogger(__name__)

with DAG(
    dag_id="constant_contact_assets_producer",
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["constant-contact", "example", "assets"],
    doc_md=__doc__,
):
    campaigns = ConstantContactListCampaignsOperator(task_id="list_sent_campaigns", status="SENT", pool=POOL)
    ConstantContactCampaignTrackingOperator.partial(
        task_id="pull_tracking",
        destination=OUTPUT_ROOT,
        storage_conn_id=STORAGE_CONN_ID,
        outlets=[TRACKING_FILES],
        pool=POOL,
        map_index_template="{{ task.report }} {{ task.campaign_id }}",
    ).expand(campaign_id=campaigns.output, report=list(CAMPAIGN_REPORT_NAMES))


@task
def load_into_duckdb(root: str, database: str, **context) -> dict[str, int]:
    """Rebuild ``cc_<report>`` tables from every JSON-lines file under ``root``; return their row counts."""
    import glob

    import duckdb

    # Airflow 3 names them asset events, Airflow 2 dataset events; both map an asset to its new events.
    triggering = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
    for events in triggering.values():
        for event in events:
            extra = event.extra or {}
            log.info("New files: %s files, %s records, window %s", extra.get("file_count"), extra.get("records"),
                     extra.get("window"))
    if not root.startswith(("file://", "/")):
        raise ValueError(f"this example loads a local root; for {root!r} use DuckDB's httpfs extension")
    folder = root.removeprefix("file://").rstrip("/")
    counts: dict[str, int] = {}
    with duckdb.connect(database) as con:
        con.execute("SET TimeZone = 'UTC'")
        for name in CAMPAIGN_REPORT_NAMES:
            files = f"{folder}/campaign/{name}/campaign_id=*/*.jsonl"
            if not glob.glob(files):
                continue
            columns = ", ".join(f"'{column}': '{kind}'" for column, kind in duckdb_columns(REPORTS[name]).items())
            # Every record carries its campaign_id: the folder names need not be read as hive partitions.
            con.execute(f"CREATE OR REPLACE TABLE cc_{name} AS SELECT * FROM read_json($files, "
                        f"format = 'newline_delimited', hive_partitioning = false, columns = {{{columns}}})",
                        {"files": files})
            counts[name] = con.execute(f"SELECT count(*) FROM cc_{name}").fetchone()[0]
    log.info("DuckDB %s: %s", database, counts)
    return counts


with DAG(
    dag_id="constant_contact_assets_consumer",
    schedule=[TRACKING_FILES],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["constant-contact", "example", "assets"],
    doc_md=__doc__,
):
    load_into_duckdb(root=OUTPUT_ROOT, database=DUCKDB_PATH)
