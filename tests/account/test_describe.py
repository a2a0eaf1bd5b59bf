"""The account run's dimension files (campaigns; v3 campaign activities; links), over real HTTP against the
emulator: rows equal the emulator's objects, every format, typed Parquet, rows valid under the shipped JSON
Schemas, a rerun writes the same bytes, and their requests are counted (none on v2)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import timedelta
from typing import TYPE_CHECKING

import jsonschema
import pytest

from airflow_provider_cc.dimensions import DIMENSIONS
from airflow_provider_cc.emulator import DataConfig, V3Options
from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from airflow_provider_cc.schemas import load_dimension
from airflow_provider_cc.window import format_api, record_instant
from tests.conftest import start_emulator, start_v3
from tests.operators.test_account import BEFORE, WEEK

if TYPE_CHECKING:
    from pathlib import Path

V3_WINDOW = {"data_interval_start": "2022-02-14T00:00:00Z", "data_interval_end": "2022-03-14T00:00:00Z"}


def dimension_files(root: Path) -> dict[str, bytes]:
    """The dimension files under a root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "dimension").rglob("*")) if p.is_file()}


def rows(root: Path, api: str, name: str) -> list[dict]:
    (path,) = (root / "dimension" / api / name).iterdir()
    data = path.read_bytes()
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pylist()
    text = (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()
    if ".csv" in path.name:
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


def canonical(value):
    moment = record_instant(value) if isinstance(value, str) else None
    return format_api(moment) if moment is not None else value


@pytest.fixture
def account(monkeypatch):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300))
    yield emu
    emu.stop()


def pull(root: Path, **kwargs) -> dict:
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{root}/", dimensions=True, **kwargs)
    return op.execute({"data_interval_start": WEEK[0], "data_interval_end": WEEK[1]})


def test_v2_campaigns_and_links_come_from_the_answers_the_selection_reads_at_no_request(account, tmp_path):
    manifest = pull(tmp_path / "a")
    requests = [p for p, _ in account.requests]
    assert not [p for p in requests if "/v2/emailmarketing/campaigns/" in p and "/tracking/" not in p
                and p.count("/") != 4], "no request beyond the campaign's own"
    sent = account.campaign_ids()[:BEFORE]
    objects = {c: account.dataset.campaign_object(account.dataset.campaigns[c]) for c in sent}
    campaigns = rows(tmp_path / "a", "v2", "campaigns")
    assert [r["campaign_id"] for r in campaigns] == sorted(sent)
    for row in campaigns:
        obj = objects[row["campaign_id"]]
        assert row == {"campaign_id": str(obj["id"]), **{k: canonical(obj.get(k)) for k in (
            "name", "subject", "from_name", "from_email", "status", "created_date", "modified_date", "last_run_date")}}
    links = rows(tmp_path / "a", "v2", "links")
    assert links == sorted(({"campaign_id": c, "link_id": str(link["url_uid"]), "link_uri": link["url"],
                             "click_count": link["click_count"]}
                            for c in sent for link in objects[c]["click_through_details"]),
                           key=lambda r: (r["campaign_id"], r["link_id"]))
    assert manifest["dimensions"] == {"campaigns": len(sent), "links": len(links)}
    for name in ("campaigns", "links"):
        for row in rows(tmp_path / "a", "v2", name):
            jsonschema.validate(row, load_dimension(name, "v2"))
    # A rerun of the window writes the same bytes.
    first = dimension_files(tmp_path / "a")
    pull(tmp_path / "a")
    assert dimension_files(tmp_path / "a") == first and len(first) == 2


@pytest.mark.parametrize(("file_format", "compression"), [("csv", "gzip"), ("parquet", None)])
def test_v2_dimensions_in_every_format_hold_the_same_rows_typed(account, tmp_path, file_format, compression):
    pull(tmp_path / "jsonl", reports=["clicks"])
    pull(tmp_path / "other", reports=["clicks"], file_format=file_format, compression=compression)
    for name in ("campaigns", "links"):
        want = rows(tmp_path / "jsonl", "v2", name)
        got = rows(tmp_path / "other", "v2", name)
        if file_format == "csv":
            want = [{k: "" if v is None else str(v) for k, v in r.items()} for r in want]
        else:
            got = [{k: format_api(v) if hasattr(v, "tzinfo") else v for k, v in r.items()} for r in got]
        assert got == want
    if file_format == "parquet":
        import pyarrow.parquet as pq

        (path,) = (tmp_path / "other" / "dimension" / "v2" / "links").iterdir()
        schema = pq.read_schema(path)
        assert str(schema.field("click_count").type) == "int64"
        (path,) = (tmp_path / "other" / "dimension" / "v2" / "campaigns").iterdir()
        assert str(pq.read_schema(path).field("last_run_date").type) == "timestamp[ms, tz=UTC]"


@pytest.fixture
def v3acct(monkeypatch, tmp_path):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig.realistic(weeks=8, activities=200),
                   options=V3Options(resend_every=3))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.v3_connection_json(
        **{"requests_per_second": 0, "backoff": 0.01, "max_retries": 10, "oauth_store": str(tmp_path / "tokens")}))
    yield emu
    emu.stop()


def test_v3_campaigns_activities_and_links_cost_the_requests_the_estimate_counts(v3acct, tmp_path):
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/out/",
                                                partition=timedelta(days=7), dimensions=True)
    manifest = op.execute(V3_WINDOW)
    root = tmp_path / "out"
    view = v3acct.v3.view
    pulled = {f["campaign_activity_id"] for f in manifest["files"] if f.get("campaign_activity_id")}
    campaigns = sorted({c.id for c in view.campaigns.values() for a in c.activities if a.id in pulled})
    got = rows(root, "v3", "campaigns")
    assert [r["campaign_id"] for r in got] == campaigns
    for row in got:
        item = view.campaign_item(view.campaigns[row["campaign_id"]])
        assert row == {k: canonical(item[k]) for k in row}
    activities = rows(root, "v3", "campaign_activities")
    assert {r["campaign_activity_id"] for r in activities} >= pulled
    for row in activities:
        activity = next(a for c in view.campaigns.values() for a in c.activities if a.id == row["campaign_activity_id"])
        obj = view.activity_object(activity)
        sends = [canonical(h["run_date"]) for h in view.send_history(activity)]
        assert row == {**{k: canonical(obj[k]) for k in ("campaign_activity_id", "campaign_id", "role", "subject",
                                                          "preheader", "from_name", "from_email", "reply_to_email",
                                                          "current_status")},
                       "contact_list_ids": ",".join(obj["contact_list_ids"]),
                       "first_sent": min(sends, default=None), "last_sent": max(sends, default=None)}
    links = rows(root, "v3", "links")
    clicked = {f["campaign_activity_id"] for f in manifest["files"] if f.get("report") == "clicks"}
    assert clicked and {r["campaign_activity_id"] for r in links} == clicked
    for aid in clicked:
        activity = next(a for c in view.campaigns.values() for a in c.activities if a.id == aid)
        served = view.links(activity, True)
        assert [{k: r[k] for k in ("url_id", "link_url", "unique_clicks")} for r in links
                if r["campaign_activity_id"] == aid] == sorted(served, key=lambda r: r["url_id"])
    for name in DIMENSIONS["v3"]:
        for row in rows(root, "v3", name):
            jsonschema.validate(row, load_dimension(name, "v3"))
    paths = [p for p, _ in v3acct.requests if p.startswith("/v3/")]
    assert paths.count("/v3/emails") == 1 and sum(p.endswith("/links") for p in paths) == len(clicked)
    assert sum(p.startswith("/v3/emails/activities/") and not p.endswith("/send_history") for p in paths) == len(
        activities)
    assert manifest["requests"] <= manifest["requests_estimate"]

    # A rerun: the same bytes; the activities come from what the first run kept.
    first = dimension_files(root)
    seen = len(v3acct.requests)
    op.execute(V3_WINDOW)
    assert dimension_files(root) == first
    again = [p for p, _ in v3acct.requests[seen:]]
    assert not [p for p in again if p.startswith("/v3/emails/activities/")], "activities kept, not asked again"


def test_without_the_option_no_dimension_file_and_no_request_for_one(v3acct, tmp_path):
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/out/")
    manifest = op.execute(V3_WINDOW)
    assert not (tmp_path / "out" / "dimension").exists() and manifest["dimensions"] == {}
    paths = [p for p, _ in v3acct.requests]
    assert "/v3/emails" not in paths and not [p for p in paths if p.endswith("/links")]


def test_a_retry_after_a_budget_stop_writes_the_dimensions_of_one_run(account, tmp_path):
    from airflow_provider_cc.exceptions import ConstantContactError

    with pytest.raises(ConstantContactError, match="Stopped at the request budget"):
        pull(tmp_path / "retried", max_requests=16, limit=25)
    assert not (tmp_path / "retried" / "dimension").exists(), "no dimension file before the window is complete"
    seen = len(account.requests)
    pull(tmp_path / "retried", limit=25)
    again = [p for p, _ in account.requests[seen:]]
    assert not [p for p in again if "/tracking/" not in p], "the carried selection: no campaign asked again"
    pull(tmp_path / "once", limit=25)
    assert dimension_files(tmp_path / "retried") == dimension_files(tmp_path / "once") != {}
