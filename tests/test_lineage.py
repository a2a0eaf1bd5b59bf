"""OpenLineage: dataset naming and facets, and the events a real task run emits through the provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_cc import reports
from airflow_provider_cc.lineage import (
    OpenLineageMixin,
    api_dataset_name,
    api_input,
    file_dataset_name,
    operator_lineage,
    schema_fields,
)
from tests.conftest import ROOT, copy_migrated_db

if TYPE_CHECKING:
    from pathlib import Path

S3_FILE = {"uri": "s3://lake/cc/campaign/clicks/campaign_id=11/20240101T000000Z_20240102T000000Z.parquet",
           "storage_conn_id": "aws_default", "records": 42, "bytes": 4096, "report": "clicks", "campaign_id": "11",
           "window": {"created_since": "2024-01-01T00:00:00.000Z", "created_before": "2024-01-02T00:00:00.000Z"}}
API = {"namespace": "https://api.constantcontact.com", "name": "/v2/emailmarketing/campaigns/11/tracking/clicks"}


@pytest.mark.parametrize(("uri", "expected"), [
    ("s3://lake/cc/a=1/f.jsonl", ("s3://lake", "cc/a=1/f.jsonl")),
    ("s3a://lake/f.csv", ("s3://lake", "f.csv")),
    ("gs://bucket/k/f.jsonl.gz", ("gs://bucket", "k/f.jsonl.gz")),
    ("gcs://bucket/k/f.jsonl", ("gs://bucket", "k/f.jsonl")),
    ("file:///data/cc/f.jsonl", ("file", "/data/cc/f.jsonl")),
    ("/data/cc/f.jsonl", ("file", "/data/cc/f.jsonl")),
    ("file://nas:2049/share/f.jsonl", ("file://nas:2049", "/share/f.jsonl")),
    ("hdfs://namenode:8020/cc/f.jsonl", ("hdfs://namenode:8020", "/cc/f.jsonl")),
    ("s3://aws_default@lake/cc/f.jsonl", ("s3://lake", "cc/f.jsonl")),
    # Plain URIs are not URL-encoded: '#' and '?' belong to the key, not to a fragment or a query.
    ("s3://lake/cc/a#b/f?x=1.jsonl", ("s3://lake", "cc/a#b/f?x=1.jsonl")),
    ("file:///data/#1/f?.jsonl", ("file", "/data/#1/f?.jsonl")),
    ("hdfs://namenode:8020/cc/#f.jsonl", ("hdfs://namenode:8020", "/cc/#f.jsonl")),
])
def test_file_datasets_follow_the_naming_spec(uri, expected):
    assert file_dataset_name(uri) == expected


def test_api_dataset_is_the_origin_and_the_path_without_query_or_credentials():
    assert api_dataset_name("https://api.constantcontact.com", "/v2/x") == ("https://api.constantcontact.com", "/v2/x")
    assert api_dataset_name("https://user:secret@API.example.com:8443/base/", "v2/x?api_key=k") == (
        "https://api.example.com:8443", "/base/v2/x")
    assert api_input("http://127.0.0.1:5000/v2/contacts/7/tracking") == {"namespace": "http://127.0.0.1:5000",
                                                                         "name": "/v2/contacts/7/tracking"}


def test_schema_fields_are_the_typed_catalogue_schema():
    assert schema_fields("clicks") == tuple((c.name, c.type) for c in reports.schema_of(reports.REPORTS["clicks"]))
    assert schema_fields("all") == tuple((c.name, c.type) for c in reports.schema_of(None))
    assert dict(schema_fields("opens"))["open_date"] == "timestamp"
    assert schema_fields("summary") == ()


def test_facets_of_an_s3_file_and_the_api_input():
    lineage = operator_lineage([API, API], [S3_FILE])
    (source,) = lineage.inputs  # the same report read twice is one input
    assert (source.namespace, source.name) == (API["namespace"], API["name"])
    (output,) = lineage.outputs
    assert (output.namespace, output.name) == ("s3://lake", S3_FILE["uri"].removeprefix("s3://lake/"))
    assert [(f.name, f.type) for f in output.facets["schema"].fields] == list(schema_fields("clicks"))
    stats = output.outputFacets["outputStatistics"]
    assert (stats.rowCount, stats.size) == (42, 4096)


def test_a_history_loads_thousands_of_files_are_one_output_per_report_folder():
    """A year of daily files for 16 campaigns and 6 reports: 5,952 files, 6 outputs with the summed counts."""
    from openlineage.client.serde import Serde

    names = ("sends", "opens", "clicks", "forwards", "unsubscribes", "bounces")
    files = [{**S3_FILE, "uri": f"s3://lake/cc/campaign/{report}/campaign_id={cid}/2024{day:04d}T000000Z.jsonl",
              "report": report, "records": day % 7, "bytes": 100 + day}
             for report in names for cid in range(16) for day in range(62)]
    lineage = operator_lineage([API], files)
    assert [(o.namespace, o.name) for o in lineage.outputs] == [("s3://lake", f"cc/campaign/{r}") for r in names]
    for output, report in zip(lineage.outputs, names, strict=True):
        stats = output.outputFacets["outputStatistics"]
        mine = [f for f in files if f["report"] == report]
        assert (stats.rowCount, stats.size) == (sum(f["records"] for f in mine), sum(f["bytes"] for f in mine))
        assert [(f.name, f.type) for f in output.facets["schema"].fields] == list(schema_fields(report))
    assert sum(len(Serde.to_json(o)) for o in lineage.outputs) < 20_000, "kilobytes, not megabytes"
    assert len(operator_lineage([API], files[:100]).outputs) == 100, "up to the cap, one dataset per file"


def test_the_account_operator_aggregates_past_the_cap(emulator, tmp_path, monkeypatch):
    from airflow_provider_cc import lineage
    from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

    monkeypatch.setattr(lineage, "MAX_LINEAGE_FILES", 3)
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/")
    op.execute({"data_interval_start": "2024-01-01T00:00:00Z", "data_interval_end": "2024-01-03T00:00:00Z"})
    assert len(op.files_written) > 3
    outputs = op.get_openlineage_facets_on_complete(None).outputs
    folders = sorted({f"{tmp_path}/campaign/{f['report']}" for f in op.files_written})
    assert sorted(o.name for o in outputs) == folders
    assert sum(o.outputFacets["outputStatistics"].rowCount for o in outputs) == sum(
        f["records"] for f in op.files_written)


V3_AID = "8c45c8c0-dba6-4068-8625-c77de12e5ee1"
V3_FILE = {**S3_FILE, "uri": f"s3://lake/cc/campaign/unsubscribes/campaign_id=c/campaign_activity_id={V3_AID}/f.jsonl",
           "report": "unsubscribes", "campaign_id": "c", "api": "v3", "campaign_activity_id": V3_AID}


def test_a_v3_file_gets_the_v3_report_s_fields():
    contact = {**S3_FILE, "uri": "s3://lake/cc/contact/opens/contact_id=p/f.jsonl", "report": "opens",
               "contact_id": "p", "api": "v3"}
    one_file = {**S3_FILE, "uri": "s3://lake/cc/opens.parquet", "report": "optouts", "campaign_id": "c", "api": "v3"}
    lineage = operator_lineage([API], [V3_FILE, contact, one_file, S3_FILE])
    fields = [[(f.name, f.type) for f in o.facets["schema"].fields] for o in lineage.outputs]
    v3_optouts = [(c.name, c.type) for c in reports.schema_of(reports.report_of("unsubscribes", "v3"))]
    assert fields == [v3_optouts, list(schema_fields("activity", "v3")), v3_optouts, list(schema_fields("clicks"))]
    assert ("created_time", "timestamp") in fields[0] and ("opt_out_reason", "string") in fields[0]
    assert schema_fields("unsubscribes", "v3") != schema_fields("unsubscribes"), "not v2's"
    assert schema_fields("didnotopens") == () and schema_fields("all", "v3") == ()
    # Past the cap, a v3 report folder keeps the v3 fields.
    many = [{**V3_FILE, "uri": V3_FILE["uri"].replace("f.jsonl", f"{i}.jsonl")} for i in range(5)]
    (folder,) = operator_lineage([API], many, max_files=3).outputs
    assert folder.name == "cc/campaign/unsubscribes"
    assert [(f.name, f.type) for f in folder.facets["schema"].fields] == v3_optouts


def test_a_v3_task_s_files_are_datasets_with_the_v3_fields(v3, tmp_path):
    from airflow_provider_cc.operators.tracking import (
        ConstantContactCampaignTrackingOperator,
        ConstantContactContactTrackingOperator,
    )

    aid = v3.v3_activity_ids()[0]
    window = {"data_interval_start": "2000-01-01T00:00:00Z", "data_interval_end": "2100-01-01T00:00:00Z"}
    conn = {"constant_contact_conn_id": "constant_contact_v3_default", "destination": f"file://{tmp_path}/"}
    op = ConstantContactCampaignTrackingOperator(task_id="t", campaign_id=aid, report="clicks", **conn)
    op.execute(window)
    (output,) = op.get_openlineage_facets_on_complete(None).outputs
    (written,) = tmp_path.rglob("*.jsonl")
    assert (output.namespace, output.name) == ("file", str(written))
    assert [(f.name, f.type) for f in output.facets["schema"].fields] == list(schema_fields("clicks", "v3"))
    contact = v3.v3_records(aid, "clicks")[0]["contact_id"]
    op = ConstantContactContactTrackingOperator(task_id="c", contact_id=contact, report="clicks", **conn)
    op.execute(window)
    (output,) = op.get_openlineage_facets_on_complete(None).outputs
    assert [(f.name, f.type) for f in output.facets["schema"].fields] == list(schema_fields("activity", "v3"))
    assert output.outputFacets["outputStatistics"].rowCount == op.files_written[0]["records"] > 0


def test_operator_methods_report_what_execute_recorded():
    class Recorder(OpenLineageMixin):
        pass

    op = Recorder()
    assert operator_lineage([], []).inputs == [] and op.get_openlineage_facets_on_start().outputs == []
    op.lineage_inputs, op.files_written = [API], []  # XCom mode: the input only
    assert [d.name for d in op.get_openlineage_facets_on_complete(None).inputs] == [API["name"]]
    assert op.get_openlineage_facets_on_complete(None).outputs == []
    op.files_written = [S3_FILE]
    assert [d.namespace for d in op.get_openlineage_facets_on_failure(None).outputs] == ["s3://lake"]


def test_importing_the_operators_does_not_import_openlineage():
    # Airflow's providers manager reads every provider's info; the client and the provider's code stay out.
    code = ("import sys, airflow_provider_cc.operators.tracking, airflow_provider_cc.lineage; print(sorted(m for m in "
            "sys.modules if m.startswith(('openlineage', 'airflow.providers.common.compat.openlineage', "
            "'airflow.providers.openlineage.')) and not m.endswith('get_provider_info')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---- a real task run with the OpenLineage provider and its file transport --------------------------------------

DAG_FILE = '''
from __future__ import annotations

import os

import pendulum

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator

WINDOW = {"created_since": "2024-01-01T00:00:00Z", "created_before": "2024-01-03T00:00:00Z"}

with DAG("cc_lineage", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False):
    ConstantContactCampaignTrackingOperator(task_id="to_file", campaign_id=os.environ["CC_CAMPAIGN"],
                                            report="clicks", destination=os.environ["CC_ROOT"], **WINDOW)
    ConstantContactCampaignTrackingOperator(task_id="to_xcom", campaign_id=os.environ["CC_CAMPAIGN"],
                                            report="opens", **WINDOW)
    ConstantContactCampaignTrackingOperator(task_id="missing", campaign_id="999999999", report="sends",
                                            destination=os.environ["CC_ROOT"], **WINDOW)
'''

RUN_DAG = '''
import inspect, sys
import pendulum
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
from airflow_provider_cc._compat import AIRFLOW_V_3
options = {"include_examples": False} if "include_examples" in inspect.signature(DagBag).parameters else {}
dag = DagBag(dag_folder=sys.argv[1], **options).dags["cc_lineage"]
when = pendulum.datetime(2024, 1, 3, tz="UTC")
run = dag.test(logical_date=when) if AIRFLOW_V_3 else dag.test(execution_date=when)
# One write: a log line another thread prints cannot land inside it.
print(f"STATES {({ti.task_id: str(ti.state) for ti in run.get_task_instances()})}", flush=True)
'''


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(path.iterdir()) for line in f.read_text().splitlines() if line.strip()]


def test_a_task_run_emits_the_report_and_its_file_as_datasets(emulator, tmp_path, migrated_db):
    home, dags, events_dir, root = (tmp_path / d for d in ("home", "dags", "ol", "lake"))
    for d in (home, dags, events_dir):
        d.mkdir()
    (dags / "cc_lineage.py").write_text(DAG_FILE)
    (tmp_path / "run_dag.py").write_text(RUN_DAG)
    cid = emulator.campaign_ids()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "OPENLINEAGE"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events_dir / "events"),
                                                      "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "cc-tests", "CC_CAMPAIGN": cid, "CC_ROOT": f"file://{root}/",
    })
    copy_migrated_db(migrated_db, home / "airflow.db")  # as `airflow db migrate` leaves it
    proc = subprocess.run([sys.executable, str(tmp_path / "run_dag.py"), str(dags)], env=env, capture_output=True,
                          text=True, timeout=900, cwd=ROOT)
    states = next((line for line in proc.stdout.splitlines() if "STATES {" in line), proc.stderr[-3000:])
    assert "'to_file': 'success'" in states and "'to_xcom': 'success'" in states and "'missing': 'failed'" in states

    events = _events(events_dir)
    text = json.dumps(events)
    assert emulator.api_key not in text and emulator.token not in text, "no secret in any event"
    by_task = {(e["job"]["name"].split(".")[-1], e["eventType"]): e for e in events if e.get("eventType")}
    window = {"created_since": "2024-01-01T00:00:00Z", "created_before": "2024-01-03T00:00:00Z"}

    done = by_task[("to_file", "COMPLETE")]
    assert [(d["namespace"], d["name"]) for d in done["inputs"]] == [
        (emulator.url, f"/v2/emailmarketing/campaigns/{cid}/tracking/clicks")]
    (written,) = root.rglob("*.jsonl")
    (output,) = done["outputs"]
    assert (output["namespace"], output["name"]) == ("file", str(written))
    assert [(f["name"], f["type"]) for f in output["facets"]["schema"]["fields"]] == list(schema_fields("clicks"))
    stats = output["outputFacets"]["outputStatistics"]
    records = len(emulator.records(cid, "clicks", **window))
    assert stats["rowCount"] == records == len(written.read_bytes().splitlines()) > 0
    assert stats["size"] == written.stat().st_size

    xcom = by_task[("to_xcom", "COMPLETE")]
    assert [d["name"] for d in xcom["inputs"]] == [f"/v2/emailmarketing/campaigns/{cid}/tracking/opens"]
    assert xcom["outputs"] == [], "without destination only the input is reported"

    failed = by_task[("missing", "FAIL")]
    assert [d["name"] for d in failed["inputs"]] == ["/v2/emailmarketing/campaigns/999999999/tracking/sends"]
    assert failed["outputs"] == [], "a failed task committed no file"


# ---- hook-level lineage: a @task calling the hooks -----------------------------------------------------------
@pytest.fixture
def collector(monkeypatch):
    """Airflow's real hook lineage collector, as it is when a lineage reader (the OpenLineage provider's plugin)
    is installed; the no-op one again afterwards."""
    from airflow_provider_cc._compat import AIRFLOW_V_3

    if AIRFLOW_V_3:
        from airflow.sdk import lineage, plugins_manager

        monkeypatch.setattr(plugins_manager, "get_hook_lineage_readers_plugins", lambda: [lineage.HookLineageReader])
        lineage.get_hook_lineage_collector.cache_clear()
        yield lineage.get_hook_lineage_collector()
        lineage.get_hook_lineage_collector.cache_clear()
    else:
        from airflow.lineage import hook

        monkeypatch.setattr(hook, "_hook_lineage_collector", hook.HookLineageCollector())
        yield hook.get_hook_lineage_collector()


def collected_inputs(collector) -> list[tuple[str, Any]]:
    """``(uri, context)`` of each input the collector holds (an asset on Airflow 3, a dataset on 2.x)."""
    lineage = getattr(collector, "collected_assets", None) or collector.collected_datasets
    return [(getattr(i, "asset", None) or i.dataset).uri for i in lineage.inputs], [i.context for i in lineage.inputs]


def test_a_task_calling_the_hook_reports_the_report_it_read_as_the_operators_name_it(airflow_db, emulator, collector):
    import pendulum

    from tests.conftest import dag_test, load_dags

    cid = emulator.campaign_ids()[0]
    dag = load_dags()[0]["constant_contact_hook_in_task"]  # its @task reads the campaign's opens with the hook
    run = dag_test(dag, pendulum.datetime(2024, 1, 2, 5, tz="UTC"), run_conf={"campaign_id": cid})
    assert run.state == "success"
    url = f"{emulator.url}/v2/emailmarketing/campaigns/{cid}/tracking/opens"
    (source,) = operator_lineage([api_input(url)], []).inputs  # what the operators' OpenLineage events name
    uris, contexts = collected_inputs(collector)
    assert uris == [f"{source.namespace}{source.name}"] == [url]
    assert [type(c).__name__ for c in contexts] == ["ConstantContactHook"]
    assert emulator.api_key not in str(uris) and emulator.token not in str(uris)


def test_a_v3_hook_reports_the_activity_report_and_the_summaries_it_read(v3, collector):
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

    hook = ConstantContactV3Hook()
    campaign = next(c for c in v3.v3.view.campaigns.values() if c.primary.status == "SENT")
    activity = v3.v3.view.reported(campaign)[0].id
    list(hook.iter_activity_tracking(activity, "opens"))
    list(hook.iter_campaign_summaries())
    uris, _ = collected_inputs(collector)
    assert uris == [f"{v3.url}/v3/reports/email_reports/{activity}/tracking/opens",
                    f"{v3.url}/v3/reports/summary_reports/email_campaign_summaries"]


def test_a_collector_that_fails_never_fails_the_read(emulator, monkeypatch):
    from airflow_provider_cc import lineage
    from airflow_provider_cc.hooks.constant_contact import ConstantContactHook

    def refuse(context, uri):
        raise ValueError("an asset URI this Airflow refuses")

    monkeypatch.setattr(lineage, "add_hook_input", refuse)
    cid = emulator.campaign_ids()[0]
    assert list(ConstantContactHook().iter_campaign_tracking(cid, "sends", created_since="2024-01-01T00:00:00Z",
                                                             created_before="2024-01-08T00:00:00Z"))
