"""Asset (Dataset) events carrying the manifest of written files, and the producer/consumer example DAGs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pendulum

from airflow_provider_cc._compat import AIRFLOW_V_3, PARTITIONED_ASSET_EVENTS, Asset
from airflow_provider_cc.assets import MAX_EXTRA_FILES, announce_files, manifest_extra, partition_keys
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES
from tests import airflow_cli
from tests.conftest import dag_test, load_dags

if AIRFLOW_V_3:
    from airflow.sdk import AssetAlias
    from airflow.sdk.execution_time.context import OutletEventAccessors
else:
    from airflow.datasets import DatasetAlias as AssetAlias
    from airflow.utils.context import OutletEventAccessors

PRODUCER, CONSUMER = "constant_contact_assets_producer", "constant_contact_assets_consumer"
ASSET_URI = "constant_contact_tracking_files"


def entry(i: int, report: str = "opens", records: int = 10) -> dict[str, Any]:
    return {"uri": f"s3://lake/cc/campaign/{report}/campaign_id={i}/20240101T000000Z_20240102T000000Z.jsonl",
            "storage_conn_id": "aws_default", "records": records, "bytes": 100 + i, "report": report,
            "campaign_id": str(i), "window": {"created_since": f"2024-01-0{1 + i % 2}T00:00:00.000Z",
                                              "created_before": f"2024-01-0{2 + i % 2}T00:00:00.000Z"}}


def test_manifest_extra_counts_everything_and_lists_a_capped_few():
    files = [entry(i, report="opens" if i % 2 else "clicks", records=i) for i in range(7)]
    extra = manifest_extra(files, max_files=3)
    assert extra == {
        "files": [{"uri": f["uri"], "records": f["records"], "bytes": f["bytes"]} for f in files[:3]],
        "file_count": 7, "records": sum(range(7)), "reports": ["clicks", "opens"],
        "window": {"created_since": "2024-01-01T00:00:00.000Z", "created_before": "2024-01-03T00:00:00.000Z"},
    }
    assert "storage_conn_id" not in json.dumps(extra), "no connection ids in events"
    assert len(manifest_extra([entry(i) for i in range(MAX_EXTRA_FILES + 5)])["files"]) == MAX_EXTRA_FILES


def test_announce_fills_asset_outlets_only_and_nothing_without_files():
    asset, alias = Asset("s3://lake/cc/"), AssetAlias("cc_alias")
    events = OutletEventAccessors()
    assert announce_files([asset, alias], events, [entry(1), entry(2)]) == 1
    assert events[asset].extra == manifest_extra([entry(1), entry(2)])
    assert events[alias].extra == {}

    quiet = OutletEventAccessors()
    assert announce_files([asset], quiet, []) == 0, "XCom mode writes no file: nothing to announce"
    assert quiet[asset].extra == {}


def test_events_carry_the_partitions_the_files_hold_where_airflow_has_partitioned_events():
    asset = Asset("s3://lake/cc/")
    events = OutletEventAccessors()
    dimension = {**entry(3), "report": None, "dimension": "campaigns"}
    files = [entry(1), entry(2), entry(3), dimension]
    assert partition_keys(files) == ["2024-01-01T00:00:00", "2024-01-02T00:00:00"]
    announce_files([asset], events, files)
    assert not getattr(events[asset], "partition_keys", None), "not asked: a plain event, which queues every DAG"
    if PARTITIONED_ASSET_EVENTS:  # Airflow 3.3+
        announce_files([asset], events, files, partitions=True)
        assert events[asset].partition_keys == {"2024-01-01T00:00:00", "2024-01-02T00:00:00"}


# ---- the example pair through real Airflow -------------------------------------------------------------------


def _events(dag_id: str, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """``(asset uri, extra)`` of the asset events a DAG run recorded in the metadata database."""
    from airflow.utils.session import create_session

    if AIRFLOW_V_3:
        from airflow.models.asset import AssetEvent as Event
    else:
        from airflow.models.dataset import DatasetEvent as Event
    with create_session() as session:
        rows = session.query(Event).filter(Event.source_dag_id == dag_id, Event.source_run_id == run_id).all()
        return [((row.asset if AIRFLOW_V_3 else row.dataset).uri, dict(row.extra or {})) for row in rows]


def _queued(dag_id: str) -> int:
    """Asset-triggered runs the scheduler would create for ``dag_id``."""
    from airflow.utils.session import create_session

    if AIRFLOW_V_3:
        from airflow.models.asset import AssetDagRunQueue as Queue
    else:
        from airflow.models.dataset import DatasetDagRunQueue as Queue
    with create_session() as session:
        return session.query(Queue).filter(Queue.target_dag_id == dag_id).count()


def test_producer_announces_its_files_and_the_consumer_loads_them_into_duckdb(airflow_db, emulator, tmp_path,
                                                                                monkeypatch):
    lake, database = tmp_path / "lake", tmp_path / "cc.duckdb"
    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT", f"file://{lake}/")
    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_DUCKDB", str(database))
    # What a deployment does first: the DAG processor registers both DAGs, the user unpauses the consumer.
    airflow_cli.run_each(["dags", "reserialize"], ["dags", "unpause", CONSUMER], env=os.environ.copy(), timeout=900)
    dags = load_dags()[0]

    run = dag_test(dags[PRODUCER], pendulum.datetime(2024, 1, 2, 3, tz="UTC"))
    assert run.state == "success"
    since, before = "2024-01-01T03:00:00Z", "2024-01-02T03:00:00Z"
    expected = {(report, cid): len(emulator.records(cid, report, created_since=since, created_before=before))
                for report in CAMPAIGN_REPORT_NAMES for cid in emulator.campaign_ids()}
    written = {p for p in lake.rglob("*.jsonl")}
    assert len(written) == len(expected) and sum(expected.values()) > 0

    events = _events(PRODUCER, run.run_id)
    assert len(events) == len(expected), "one event per mapped task that wrote a file"
    assert {uri for uri, _ in events} == {ASSET_URI}
    announced = {}
    for _, extra in events:
        (file,) = extra["files"]
        path = Path(file["uri"].removeprefix("file://"))
        assert file["records"] == len(path.read_bytes().splitlines()) == extra["records"]
        assert file["bytes"] == path.stat().st_size and extra["file_count"] == 1
        assert extra["window"] == {"created_since": "2024-01-01T03:00:00.000Z",
                                   "created_before": "2024-01-02T03:00:00.000Z"}
        announced[path] = file["records"]
    assert set(announced) == written
    assert sum(announced.values()) == sum(expected.values())
    assert _queued(CONSUMER) >= 1, "the consumer is queued for an asset-triggered run"

    done = dag_test(dags[CONSUMER], pendulum.datetime(2024, 1, 2, 4, tz="UTC"))
    assert done.state == "success"
    with duckdb.connect(str(database), read_only=True) as con:
        for report in CAMPAIGN_REPORT_NAMES:
            rows = con.execute(f"SELECT count(*) FROM cc_{report}").fetchone()[0]
            assert rows == sum(n for (r, _), n in expected.items() if r == report), report
        date_type = con.execute("SELECT data_type FROM information_schema.columns "
                                "WHERE table_name = 'cc_opens' AND column_name = 'open_date'").fetchone()[0]
        assert date_type.startswith("TIMESTAMP")
        ids = {cid for (cid,) in con.execute("SELECT DISTINCT campaign_id FROM cc_sends").fetchall()}
        assert ids == set(emulator.campaign_ids())
