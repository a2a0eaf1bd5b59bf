"""Operators against the emulator over HTTP: XCom and files, formats, atomicity, reruns, windows."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pendulum
import pytest

from airflow_provider_cc._compat import AirflowSkipException
from airflow_provider_cc.emulator import DataConfig, FaultConfig
from airflow_provider_cc.exceptions import (
    ConstantContactInputError,
    ConstantContactNotFoundError,
    ConstantContactQuotaExceededError,
)
from airflow_provider_cc.operators.tracking import (
    ConstantContactCampaignSummaryOperator,
    ConstantContactCampaignTrackingOperator,
    ConstantContactContactSummaryOperator,
    ConstantContactContactTrackingOperator,
    ConstantContactListCampaignsOperator,
)
from airflow_provider_cc.reports import ALL_COLUMNS, REPORTS
from tests import warm
from tests.conftest import ROOT, as_output, start_emulator

DAY1, DAY2, DAY3 = (pendulum.datetime(2024, 1, d) for d in (1, 2, 3))


def ctx(start=DAY1, end=DAY2) -> dict:
    return {"data_interval_start": start, "data_interval_end": end}


def pull(**kwargs):
    kwargs.setdefault("task_id", "pull")
    return ConstantContactCampaignTrackingOperator(**kwargs)


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f]


def test_records_to_xcom_for_the_data_interval(emulator):
    cid = emulator.campaign_ids()[0]
    got = pull(campaign_id=cid, report="opens").execute(ctx())
    expected = emulator.records(cid, "opens", created_since="2024-01-01T00:00:00Z",
                                created_before="2024-01-02T00:00:00Z")
    assert got == as_output(expected) and 0 < len(got) < len(emulator.records(cid, "opens"))


def test_xcom_cap_stops_early_and_points_to_destination(emulator):
    cid = emulator.campaign_ids()[0]
    op = pull(campaign_id=cid, report="sends", max_xcom_records=10, limit=5,
              created_since="2023-01-01", created_before="2025-01-01")
    with pytest.raises(ConstantContactInputError, match="max_xcom_records=10.*destination="):
        op.execute({})
    assert len(emulator.requests) == 3, "stopped fetching once past the cap"


def test_jsonl_file_under_the_default_layout_and_manifest(emulator, tmp_path):
    cid = emulator.campaign_ids()[1]
    manifest = pull(campaign_id=cid, report="clicks", destination=f"file://{tmp_path}/").execute(ctx())
    path = tmp_path / f"campaign/clicks/campaign_id={cid}/20240101T000000Z_20240102T000000Z.jsonl"
    expected = as_output(emulator.records(cid, "clicks", created_since="2024-01-01T00:00:00Z",
                                          created_before="2024-01-02T00:00:00Z"))
    assert read_jsonl(path) == expected
    assert manifest == {"uri": f"file://{path}", "storage_conn_id": None, "records": len(expected),
                        "bytes": path.stat().st_size, "pages": 1, "report": "clicks",
                        "campaign_id": cid, "created_since": "2024-01-01T00:00:00.000Z",
                        "created_before": "2024-01-02T00:00:00.000Z", "format": "jsonl", "compression": None}
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left behind"


@pytest.mark.parametrize("report", ["clicks", "bounces", "unsubscribes", "sends"])
def test_csv_has_a_fixed_column_order_per_report(emulator, tmp_path, report):
    cid = emulator.campaign_ids()[0]
    target = tmp_path / f"{report}.csv"
    pull(campaign_id=cid, report=report, destination=str(target), file_format="csv").execute(ctx(DAY1, DAY3))
    with target.open(newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == REPORTS[report].columns
    expected = as_output(emulator.records(cid, report, created_since="2024-01-01T00:00:00Z",
                                          created_before="2024-01-03T00:00:00Z"))
    assert [dict(zip(rows[0], r, strict=True)) for r in rows[1:]] == [
        {c: str(e.get(c, "")) for c in rows[0]} for e in expected]
    if report == "clicks":
        assert rows[0][-2:] == ["link_id", "link_uri"]
    if report == "bounces":
        assert {"bounce_code", "bounce_description", "bounce_message"} <= set(rows[0])


@pytest.mark.parametrize(("file_format", "compression"),
                         [("jsonl", "gzip"), ("csv", "gzip"), ("jsonl", None), ("parquet", None)])
def test_rerun_of_an_interval_gives_identical_bytes(emulator, tmp_path, file_format, compression):
    cid = emulator.campaign_ids()[0]
    op = pull(campaign_id=cid, report="sends", destination=f"file://{tmp_path}/", file_format=file_format,
              compression=compression, limit=17)
    first = op.execute(ctx())
    path = Path(first["uri"].removeprefix("file://"))
    first_bytes = path.read_bytes()
    second = op.execute(ctx())
    assert second == first and path.read_bytes() == first_bytes
    if compression:
        assert path.name.endswith(".gz") and gzip.decompress(first_bytes)
        assert first_bytes[4:8] == bytes(4), "no modification time in the gzip header (MTIME = 0)"
        assert not first_bytes[3] & 0x08, "no file name in the gzip header (FNAME unset)"


def test_two_consecutive_intervals_equal_one_double_interval(emulator, tmp_path):
    cid = emulator.campaign_ids()[0]
    op = pull(campaign_id=cid, report="opens", destination=f"file://{tmp_path}/", limit=7)
    parts = [op.execute(ctx(DAY1, DAY2)), op.execute(ctx(DAY2, DAY3))]
    whole = op.execute(ctx(DAY1, DAY3))
    records = [read_jsonl(Path(m["uri"].removeprefix("file://"))) for m in (*parts, whole)]
    assert records[1] + records[0] == records[2] and len(records[2]) == whole["records"] > 0
    assert parts[0]["records"] + parts[1]["records"] == whole["records"]


def test_a_failure_mid_write_leaves_nothing_at_the_final_path(monkeypatch, tmp_path):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=1, activities=200), FaultConfig(daily_quota=3))
    try:
        op = pull(campaign_id=emu.campaign_ids()[0], report="sends", destination=f"file://{tmp_path}/", limit=10,
                  created_since="2023-01-01", created_before="2025-01-01")
        with pytest.raises(ConstantContactQuotaExceededError):
            op.execute({})
    finally:
        emu.stop()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [], "no partial file, no temporary file"


def test_a_killed_task_leaves_nothing_at_the_final_path(monkeypatch, tmp_path):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=1, activities=3000), FaultConfig(latency=0.02))
    final = tmp_path / "out.jsonl"
    script = textwrap.dedent(f"""
        from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator as Op
        Op(task_id="t", campaign_id="{emu.campaign_ids()[0]}", report="sends", destination="file://{final}",
           limit=10, created_since="2023-01-01", created_before="2025-01-01").execute({{}})
    """)
    proc = warm.start(script, cwd=str(ROOT))  # a process of its own, forked warm
    try:
        deadline = time.monotonic() + 600
        while not any(p.name.endswith(".tmp") and p.stat().st_size > 0 for p in tmp_path.iterdir()):
            assert time.monotonic() < deadline and proc.poll() is None, "the writer never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        emu.stop()
        proc.close()
    assert not final.exists(), "a killed writer never leaves a partial file at the final path"
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert all(name.startswith(".out.jsonl.") and name.endswith(".tmp") for name in leftovers)


def test_unsent_campaigns_are_skipped_and_deleted_ones_fail(emulator, tmp_path):
    draft = emulator.campaign_ids("DRAFT")[0]
    with pytest.raises(AirflowSkipException, match=f"campaign {draft} is DRAFT.*SENT"):
        pull(campaign_id=draft, report="opens", destination=f"file://{tmp_path}/").execute(ctx())
    with pytest.raises(AirflowSkipException, match="SCHEDULED"):
        pull(campaign_id=emulator.campaign_ids("SCHEDULED")[0], report="opens").execute(ctx())
    with pytest.raises(ConstantContactNotFoundError, match="not found"):
        pull(campaign_id=emulator.campaign_ids("DELETED")[0], report="opens").execute(ctx())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_sent_campaign_with_nothing_in_the_window_writes_an_empty_file(emulator, tmp_path):
    cid = emulator.campaign_ids()[0]
    manifest = pull(campaign_id=cid, report="opens", destination=f"file://{tmp_path}/",
                    file_format="csv").execute(ctx(pendulum.datetime(2025, 1, 1), pendulum.datetime(2025, 1, 2)))
    assert manifest["records"] == 0
    assert Path(manifest["uri"].removeprefix("file://")).read_text().strip() == ",".join(REPORTS["opens"].columns)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"file_format": "xml"}, "file_format='xml'"),
        ({"file_format": "parquet", "compression": "gzip"}, "does not apply to Parquet"),
        ({"compression": "zip"}, "compression='zip'"),
        ({"max_xcom_records": -1}, "max_xcom_records=-1"),
        ({"campaign_id": "abc"}, "campaign_id='abc' is not a numeric id"),
        ({"report": "views"}, "unknown campaign tracking report"),
        ({"limit": 1000}, "limit=1000"),
        ({"created_since": "2024-02-01"}, "empty or inverted window"),
        ({"created_since": "soon"}, "created_since='soon'"),
    ],
)
def test_bad_arguments_fail_before_any_request(emulator, kwargs, words):
    args = {"campaign_id": emulator.campaign_ids()[0], "report": "sends", **kwargs}
    with pytest.raises(ConstantContactInputError, match=words):
        pull(**args).execute(ctx())
    assert emulator.requests == []


def test_contact_activity_to_csv(emulator, tmp_path):
    cid = emulator.campaign_ids()[0]
    opened = {r["contact_id"] for r in emulator.records(cid, "opens")}
    contact = next(r["contact_id"] for r in emulator.records(cid, "sends") if r["contact_id"] in opened)
    manifest = ConstantContactContactTrackingOperator(
        task_id="contact", contact_id=contact, destination=f"file://{tmp_path}/", file_format="csv",
    ).execute(ctx(DAY1, pendulum.datetime(2024, 1, 5)))
    assert manifest["uri"].endswith(f"contact/all/contact_id={contact}/20240101T000000Z_20240105T000000Z.csv")
    rows = list(csv.DictReader(io.StringIO(Path(manifest["uri"][7:]).read_text())))
    assert len(rows) == manifest["records"] > 0 and tuple(rows[0]) == ALL_COLUMNS
    assert {r["contact_id"] for r in rows} == {contact} and len({r["activity_type"] for r in rows}) > 1


def test_summary_and_list_operators(emulator):
    cid = emulator.campaign_ids()[0]
    summary = ConstantContactCampaignSummaryOperator(task_id="s", campaign_id=cid).execute({})
    assert summary["campaign_id"] == cid and summary["sends"] == 150
    by_campaign = ConstantContactContactSummaryOperator(task_id="c", contact_id=3, by_campaign=True).execute({})
    assert {row["campaign_id"] for row in by_campaign} <= set(emulator.campaign_ids())
    assert ConstantContactContactSummaryOperator(task_id="c2", contact_id=3).execute({})["contact_id"] == "3"
    assert ConstantContactListCampaignsOperator(task_id="l").execute({}) == sorted(emulator.campaign_ids())
    assert ConstantContactListCampaignsOperator(task_id="d", status="DRAFT").execute({}) == emulator.campaign_ids(
        "DRAFT")


def test_templated_fields_and_no_work_in_init(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", raising=False)
    op = pull(campaign_id="{{ params.cid }}", report="opens")
    assert {"campaign_id", "report", "link_id", "created_since", "created_before", "destination",
            "storage_conn_id", "constant_contact_conn_id"} <= set(op.template_fields)
    assert "hook" not in op.__dict__
