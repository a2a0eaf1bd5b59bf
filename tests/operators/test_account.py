"""The account operator over HTTP against a realistic emulator account: files, one pass, skips, budget, rate."""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pendulum
import pytest

from airflow_provider_cc._compat import AirflowTaskTerminated, ObjectStoragePath
from airflow_provider_cc.account import AccountEngine, outcome
from airflow_provider_cc.budget import BudgetSpent
from airflow_provider_cc.emulator import DataConfig, Emulator, FaultConfig
from airflow_provider_cc.exceptions import (
    ConstantContactError,
    ConstantContactInputError,
    ConstantContactNotFoundError,
)
from airflow_provider_cc.operators import output as output_module
from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES
from tests.conftest import as_output, start_emulator

DAY = timedelta(days=1)
# Weekly sends on Mondays at 15:00 from 2022-02-07: five campaigns are sent before this week ends, three after.
WEEK = ("2022-03-01T03:00:00Z", "2022-03-08T03:00:00Z")
BEFORE, AFTER = 5, 3


@pytest.fixture
def emu(monkeypatch):
    emulator = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300))
    yield emulator
    emulator.stop()


def pull(root: Path, *, start: str = WEEK[0], end: str = WEEK[1], **kwargs):
    kwargs.setdefault("task_id", "account")
    op = ConstantContactAccountTrackingOperator(destination=f"file://{root}/", **kwargs)
    return op, op.execute({"data_interval_start": start, "data_interval_end": end})


def days(start: str, count: int) -> list[tuple[str, str]]:
    first = pendulum.parse(start)
    return [((first + DAY * k).strftime("%Y-%m-%dT%H:%M:%SZ"), (first + DAY * (k + 1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for k in range(count)]


def stamp(text: str) -> str:
    return pendulum.parse(text).strftime("%Y%m%dT%H%M%SZ")


def data_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not str(p.relative_to(root)).startswith("_state")}


def rows(data: bytes, name: str) -> list[dict]:
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pylist()
    text = (gzip.decompress(data) if name.endswith(".gz") else data).decode()
    if ".csv" in name:
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


def expected(emu: Emulator, windows: list[tuple[str, str]], campaigns: list[str]) -> dict[str, list[dict]]:
    """Every non-empty (campaign, report, partition) file the account should hold, with its records."""
    out = {}
    for cid in campaigns:
        for report in CAMPAIGN_REPORT_NAMES:
            for since, before in windows:
                records = emu.records(cid, report, created_since=since, created_before=before)
                name = f"campaign/{report}/campaign_id={cid}/{stamp(since)}_{stamp(before)}.jsonl"
                if records:
                    out[name] = as_output(records)
    return out


def tracking_requests(emu: Emulator, since: int = 0) -> list[str]:
    return [path for path, _ in emu.requests[since:] if "/tracking/" in path]


def test_files_equal_the_emulators_records_for_every_partition(emu, tmp_path):
    op, manifest = pull(tmp_path, partition=DAY)
    sent = emu.campaign_ids()[:BEFORE]
    want = expected(emu, days(WEEK[0], 7), sent)
    got = data_files(tmp_path)
    assert set(got) == set(want), "one file per partition with records, none for empty partitions"
    for name, data in got.items():
        assert rows(data, name) == want[name], name
    assert manifest["files_count"] == len(got) and manifest["records"] == sum(map(len, want.values()))
    assert manifest["units"]["left"] == 0 and manifest["requests"] == len(emu.requests)
    entry = op.files_written[0]
    assert set(entry) == {"uri", "storage_conn_id", "records", "bytes", "report", "campaign_id", "window"}
    assert entry["uri"].startswith(f"file://{tmp_path}/campaign/") and entry["bytes"] == len(
        (tmp_path / entry["uri"].removeprefix(f"file://{tmp_path}/")).read_bytes())
    pulled = set(tracking_requests(emu))
    assert pulled <= {f"/v2/emailmarketing/campaigns/{c}/tracking/{r}" for c in sent for r in CAMPAIGN_REPORT_NAMES}
    assert {i["name"] for i in op.lineage_inputs} == pulled, "one lineage input per report pulled, no other"
    assert len(op.lineage_inputs) == manifest["units"]["pulled"] == len(pulled)
    full = json.loads(Path(manifest["manifest_uri"].removeprefix("file://")).read_text())
    assert full["files"] == sorted(op.files_written, key=lambda f: f["uri"])


@pytest.mark.parametrize(("file_format", "compression"), [("jsonl", None), ("csv", "gzip"), ("parquet", None)])
def test_one_pass_over_a_week_writes_the_bytes_of_the_daily_runs(emu, tmp_path, file_format, compression):
    fmt = {"file_format": file_format, "compression": compression}
    _, once = pull(tmp_path / "once", partition=DAY, partition_anchor="2022-01-01T03:00:00Z", **fmt)
    for since, before in days(WEEK[0], 7):
        pull(tmp_path / "daily", start=since, end=before, **fmt)
    one_pass, daily = data_files(tmp_path / "once"), data_files(tmp_path / "daily")
    assert one_pass == daily and len(one_pass) == once["files_count"] > 7
    # ... and the per-campaign operator's files for the same days, byte for byte.
    cid = emu.campaign_ids()[BEFORE - 1]
    for since, before in days(WEEK[0], 7):
        for report in ("opens", "bounces"):
            ConstantContactCampaignTrackingOperator(
                task_id="one", campaign_id=cid, report=report, destination=f"file://{tmp_path}/single/", **fmt,
            ).execute({"data_interval_start": since, "data_interval_end": before})
    single = data_files(tmp_path / "single")
    assert {n: d for n, d in single.items() if n in one_pass} == {n: d for n, d in one_pass.items() if n in single}
    assert {n for n in single if n not in one_pass} == {n for n, d in single.items() if not rows(d, n)}, \
        "the account writes every non-empty file the per-campaign operator writes"

    # A rerun of the long window rewrites the same bytes.
    pull(tmp_path / "once", partition=DAY, **fmt)
    assert data_files(tmp_path / "once") == one_pass


def test_campaigns_sent_after_the_window_cost_no_tracking_request(emu, tmp_path):
    _, manifest = pull(tmp_path)
    later = emu.campaign_ids()[BEFORE:]
    assert len(later) == AFTER
    assert not [p for p in tracking_requests(emu) if any(c in p for c in later)]
    skipped = {(s["campaign_id"], s["reason"], s.get("report")) for s in manifest["skipped"]}
    assert {(c, "sent after the window", None) for c in later} <= skipped
    # A total of 0 is believed for campaigns sent a day or more before the window's end (the last one, sent
    # 12 hours before it, is pulled: its summary may lag the send).
    settled, fresh = emu.campaign_ids()[:BEFORE - 1], emu.campaign_ids()[BEFORE - 1]
    no_forwards = [c for c in settled if not emu.records(c, "forwards")]
    assert no_forwards and {(c, "no activity", "forwards") for c in no_forwards} <= skipped
    assert all(s["basis"] == "summary" for s in manifest["skipped"] if s["reason"] == "no activity")
    assert not [p for p in tracking_requests(emu) if p.endswith("/forwards") and p.split("/")[4] in no_forwards]
    assert not emu.records(fresh, "forwards") and f"/v2/emailmarketing/campaigns/{fresh}/tracking/forwards" in \
        tracking_requests(emu), "a 0 of a campaign sent just before the window's end is not believed"

    # The send times are cached under the root: the next window's run asks nothing about later campaigns.
    seen = len(emu.requests)
    pull(tmp_path, start="2022-02-22T03:00:00Z", end="2022-03-01T03:00:00Z")
    asked = {path.split("/")[4] for path, _ in emu.requests[seen:] if path.count("/") == 4}
    assert asked == set(emu.campaign_ids()[:4]), "one campaign request per campaign sent before the end only"


def test_the_horizon_leaves_older_campaigns_out_and_stops_the_listing(monkeypatch, tmp_path):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=60, activities=20))
    try:
        window = {"start": "2023-02-27T03:00:00Z", "end": "2023-03-06T03:00:00Z"}  # the 56th campaign's week
        _, manifest = pull(tmp_path, sent_within=timedelta(days=20), concurrency=1, **window)
        ids = emu.campaign_ids()
        kept = {u.split("/")[4] for u in tracking_requests(emu)}
        assert kept == set(ids[53:56]), "sent within 20 days before the window, or during it"
        pages = [q for p, q in emu.requests if p == "/v2/emailmarketing/campaigns" and q.get("status") == "SENT"]
        assert len(pages) == 1, "60 SENT campaigns make two list pages; the horizon is passed on the first"
        asked = [p.split("/")[4] for p, _ in emu.requests if p.count("/") == 4]
        assert asked == ids[59:55:-1] + ids[55:52:-1] + ids[52:49:-1], "after the window, in it, then three older"
        horizon = [s for s in manifest["skipped"] if s["reason"] == "sent before the horizon"]
        assert [s["campaign_id"] for s in horizon] == ids[52:49:-1] and "not looked at" in horizon[2]["detail"]

        # With the send times cached, a run asks about the campaigns it pulls; cached send times never end the
        # listing, so it reads on to three older campaigns that answer for themselves.
        seen = len(emu.requests)
        pull(tmp_path, sent_within=timedelta(days=20), concurrency=1, **window)
        asked = {p.split("/")[4] for p, _ in emu.requests[seen:] if p.count("/") == 4}
        assert asked == set(ids[53:56]) | set(ids[47:50])
    finally:
        emu.stop()


def test_a_list_out_of_order_does_not_stop_the_listing_early(monkeypatch, tmp_path):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=20))
    try:
        ids = emu.campaign_ids()
        item = emu.dataset.campaign_summary_item
        # The list sorts on modified_date: move an old campaign to the top, ahead of the ones after the window.
        monkeypatch.setattr(emu.dataset, "campaign_summary_item", lambda c: {
            **item(c), **({"modified_date": "2030-01-01T00:00:00.000Z"} if c.id == ids[1] else {})})
        _, manifest = pull(tmp_path, sent_within=timedelta(days=3), concurrency=1,
                           start="2022-03-07T03:00:00Z", end="2022-03-14T03:00:00Z")
        assert {u.split("/")[4] for u in tracking_requests(emu)} == {ids[4]}
        assert {s["campaign_id"] for s in manifest["skipped"] if s["reason"] == "sent before the horizon"} == set(
            ids[:4]), "the first older campaign came before later ones: every campaign was looked at"
    finally:
        emu.stop()


def test_the_budget_stops_cleanly_and_a_retry_resumes_without_refetching(emu, tmp_path):
    budget = 40
    with pytest.raises(ConstantContactError) as stopped:
        pull(tmp_path, partition=DAY, max_requests=budget, limit=25, concurrency=3)
    message = str(stopped.value)
    assert "max_requests=40" in message and "units are done" in message and "units are left" in message
    assert "Run the task again to go on" in message and "checkpoint" in message
    assert len(emu.requests) == budget, "not one request past the budget"
    want = expected(emu, days(WEEK[0], 7), emu.campaign_ids()[:BEFORE])
    partial = data_files(tmp_path)
    assert 0 < len(partial) < len(want)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")], "no temporary object left"
    assert all(rows(data, name) == want[name] for name, data in partial.items()), "committed files are complete"
    checkpoint = json.loads(next((tmp_path / "_state/account/checkpoints").iterdir()).read_text())
    assert checkpoint["complete"] is False and checkpoint["done"]
    done_units = set(checkpoint["done"])

    seen = len(emu.requests)
    op, manifest = pull(tmp_path, partition=DAY, limit=25)
    fetched = {"/".join(p.split("/")[4:7:2]) for p in tracking_requests(emu, seen)}
    assert fetched and not fetched & done_units, "no committed unit fetched again"
    assert manifest["units"]["resumed"] == len(done_units)
    complete = data_files(tmp_path)
    assert {n: rows(d, n) for n, d in complete.items()} == want
    # The resumed run reports every file of the window, the earlier try's included.
    listed = {f["uri"].removeprefix(f"file://{tmp_path}/") for f in op.files_written}
    assert manifest["files_count"] == len(complete) == len(op.files_written) and listed == set(complete)
    assert manifest["records"] == sum(map(len, want.values())) == sum(f["records"] for f in op.files_written)

    # The window completed: clearing the task later (late data) pulls every unit again, same bytes.
    seen = len(emu.requests)
    _, again = pull(tmp_path, partition=DAY, limit=25)
    assert again["units"]["resumed"] == 0 and {"/".join(p.split("/")[4:7:2]) for p in
                                               tracking_requests(emu, seen)} >= done_units
    assert data_files(tmp_path) == complete


def test_a_budget_spent_on_choosing_campaigns_says_so(emu, tmp_path):
    with pytest.raises(ConstantContactError, match="max_requests=3, while choosing the campaigns"):
        pull(tmp_path, max_requests=3)
    assert len(emu.requests) == 3 and not tracking_requests(emu)


def test_resume_false_pulls_everything_again(emu, tmp_path):
    with pytest.raises(ConstantContactError, match="max_requests=20"):
        pull(tmp_path, max_requests=20)
    _, manifest = pull(tmp_path, resume=False)
    assert manifest["units"]["resumed"] == 0


def test_units_in_flight_never_exceed_the_keys_rate(monkeypatch, tmp_path):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=3, activities=40), FaultConfig(qps=4, latency=0.05),
                         requests_per_second=4)
    try:
        _, manifest = pull(tmp_path, concurrency=8, start="2022-02-07T03:00:00Z", end="2022-02-21T03:00:00Z")
        assert manifest["requests"] >= 12 and manifest["files_count"] > 0
        assert emu.statuses == {200: manifest["requests"]}, "no 403 over-qps from the emulator enforcing 4/s"
    finally:
        emu.stop()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"start": "2022-03-01T00:00:00Z", "partition": DAY, "partition_anchor": "2022-03-01T03:00:00Z"},
     "not aligned to partition=1 day"),
    ({"reports": ["opens", "views"]}, "unknown campaign tracking report 'views'"),
    ({"reports": ""}, "reports is empty"),
    ({"campaign_ids": ["12a"]}, "campaign_ids='12a' is not a numeric id"),
    ({"concurrency": 0}, "concurrency=0"),
    ({"max_requests": "many"}, "max_requests='many'"),
    ({"sent_within": -DAY}, "sent_within="),
    ({"partition": 3600}, "partition=3600"),
    ({"limit": 501}, "limit=501"),
    ({"file_format": "xml"}, "file_format='xml'"),
])
def test_bad_input_fails_before_any_request(emu, tmp_path, kwargs, message):
    with pytest.raises(ConstantContactInputError, match=message):
        pull(tmp_path, **kwargs)
    assert emu.requests == [] and list(tmp_path.iterdir()) == []


def test_a_destination_must_be_a_root(emu, tmp_path):
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/out.jsonl")
    with pytest.raises(ConstantContactInputError, match="must be a root ending in '/'"):
        op.execute({"data_interval_start": WEEK[0], "data_interval_end": WEEK[1]})
    assert emu.requests == []
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=ObjectStoragePath(f"file://{tmp_path}/"),
                                                campaign_ids=[emu.campaign_ids()[0]], reports=["sends"])
    assert op.execute({"data_interval_start": "2022-02-07T03:00:00Z", "data_interval_end": "2022-02-08T03:00:00Z"}
                      )["files"][0]["uri"].startswith(f"file://{tmp_path}/campaign/sends/")


def test_explicit_campaign_ids_from_text_or_a_list(emu, tmp_path):
    ids = emu.campaign_ids()
    draft = emu.campaign_ids("DRAFT")[0]
    _, manifest = pull(tmp_path, campaign_ids=f"{ids[0]}, {ids[6]} {draft}", reports="opens,clicks")
    assert {p.split("/")[4] for p in tracking_requests(emu)} == {ids[0]}
    assert not [p for p, _ in emu.requests if p == "/v2/emailmarketing/campaigns"], "no listing"
    reasons = {s["campaign_id"]: s["reason"] for s in manifest["skipped"]}
    assert reasons == {ids[6]: "sent after the window", draft: "not sent"}
    assert {name.split("/")[1] for name in data_files(tmp_path)} == {"opens", "clicks"}

    deleted = emu.campaign_ids("DELETED")[0]
    seen = len(emu.requests)
    with pytest.raises(ConstantContactNotFoundError, match=f"campaign {deleted} of campaign_ids was not found"):
        pull(tmp_path / "x", campaign_ids=[ids[1], deleted])
    assert tracking_requests(emu, seen) == [], "refused before any tracking request"


def test_runs_of_other_campaigns_in_the_same_window_keep_their_own_checkpoint_and_manifest(emu, tmp_path):
    """Mapped over campaigns (the event-driven example), tasks share a root and may share a window: each keeps
    its own state, so one's manifest never describes another's files, nor does one resume from another's."""
    first, second = emu.campaign_ids()[:2]
    _, one = pull(tmp_path, campaign_ids=[first], reports=["opens"])
    _, two = pull(tmp_path, campaign_ids=[second], reports=["opens"])
    assert one["manifest_uri"] != two["manifest_uri"] and one["checkpoint_uri"] != two["checkpoint_uri"]
    for manifest, cid in ((one, first), (two, second)):
        full = json.loads(Path(manifest["manifest_uri"].removeprefix("file://")).read_text())
        assert full["campaign_ids"] == [cid]
        assert full["files"] and all(f"campaign_id={cid}/" in f["uri"] for f in full["files"])
    _, again = pull(tmp_path, campaign_ids=[first], reports=["opens"])  # the same selection: the same state
    assert again["manifest_uri"] == one["manifest_uri"]


def test_xcom_lists_are_capped_and_the_full_manifest_is_under_the_root(emu, tmp_path, monkeypatch):
    monkeypatch.setattr(outcome, "MAX_LISTED", 3)
    op, manifest = pull(tmp_path, partition=DAY)
    assert len(manifest["files"]) == 3 < manifest["files_count"] == len(op.files_written)
    assert len(manifest["skipped"]) == 3 < manifest["skipped_count"]
    full = json.loads(Path(manifest["manifest_uri"].removeprefix("file://")).read_text())
    assert len(full["files"]) == manifest["files_count"] and len(full["skipped"]) == manifest["skipped_count"]
    assert len(json.dumps(manifest)) < 4000


def test_on_kill_stops_the_run_without_committing_more(monkeypatch, tmp_path):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300), FaultConfig(latency=0.05))
    try:
        op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", partition=DAY,
                                                    limit=10)

        def kill_after_the_first_file() -> None:  # as Airflow's SIGTERM handler would, from elsewhere
            deadline = time.monotonic() + 600
            while not list(tmp_path.glob("campaign/*/*/*.jsonl")) and time.monotonic() < deadline:
                time.sleep(0.02)
            op.on_kill()

        real_write = output_module.write_records
        commits: list[bool] = []  # per committed file: was the stop already asked for before its last check?

        def write_records(*args, before_commit, **kwargs):
            def check() -> None:
                stopped_before = op.stopper.stopped
                before_commit()
                commits.append(stopped_before)
            return real_write(*args, before_commit=check, **kwargs)

        monkeypatch.setattr(output_module, "write_records", write_records)
        killer = threading.Thread(target=kill_after_the_first_file)
        killer.start()
        with pytest.raises(AirflowTaskTerminated, match="Stopped on request") as stopped:
            op.execute({"data_interval_start": WEEK[0], "data_interval_end": WEEK[1]})
        killer.join(60)
        assert "units are done" in str(stopped.value) and "resumes from the checkpoint" in str(stopped.value)
        files = data_files(tmp_path)
        assert commits and not any(commits), "no file committed once the stop was asked for"
        assert len(commits) == len(files) and not list(tmp_path.rglob("*.tmp")), "no partial file left"
        want = expected(emu, days(WEEK[0], 7), emu.campaign_ids()[:BEFORE])
        assert files and all(rows(d, n) == want[n] for n, d in files.items())
    finally:
        emu.stop()


class UnitBroke(RuntimeError):
    """A real failure of one unit (not a budget stop, not a stop on request)."""


def test_a_real_unit_failure_wins_over_a_budget_stop_seen_first(emu, tmp_path, monkeypatch):
    real = AccountEngine._pull_unit
    budget_seen = threading.Event()
    calls = []

    def pull_unit(self, run, unit):
        calls.append(unit)
        if len(calls) == 1:  # the first unit fails for real, after another one met the budget
            budget_seen.wait(10)
            raise UnitBroke("a real failure")
        if len(calls) == 2:
            budget_seen.set()
            raise BudgetSpent()
        return real(self, run, unit)

    monkeypatch.setattr(AccountEngine, "_pull_unit", pull_unit)
    with pytest.raises(UnitBroke, match="a real failure"):
        pull(tmp_path, concurrency=2)


def test_after_a_unit_fails_the_units_in_flight_stop_at_their_next_request(monkeypatch, tmp_path):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300), FaultConfig(latency=0.02))
    real = AccountEngine._pull_unit
    first = threading.Lock()
    at_failure: list[int] = []
    concurrency = 3

    def pull_unit(self, run, unit):
        if first.acquire(blocking=False):  # one unit fails once the others have pages in flight
            deadline = time.monotonic() + 120
            while len(tracking_requests(emu)) < 2 * concurrency and time.monotonic() < deadline:
                time.sleep(0.01)
            at_failure.append(len(emu.requests))
            raise UnitBroke("a real failure")
        return real(self, run, unit)

    monkeypatch.setattr(AccountEngine, "_pull_unit", pull_unit)
    try:
        with pytest.raises(UnitBroke):
            pull(tmp_path, partition=DAY, limit=5, concurrency=concurrency, reports=["opens", "sends"])
        # Each other unit had at most one request under way; none goes on to its last page.
        assert len(emu.requests) - at_failure[0] <= concurrency - 1
        assert not list(tmp_path.rglob("*.tmp")), "no temporary object left"
    finally:
        emu.stop()


def test_progress_is_logged_per_unit_and_periodically(monkeypatch, tmp_path, caplog, capsys):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300), FaultConfig(latency=0.05))
    monkeypatch.setattr(outcome, "SUMMARY_EVERY", 0.2)
    try:
        with caplog.at_level("INFO"):
            pull(tmp_path, partition=DAY, limit=50)
        text = caplog.text + "".join(capsys.readouterr())  # Airflow 3 logs operators through structlog
        assert "Selection: 8 campaigns looked at" in text and "spent on selection + at most" in text
        assert "records/s" in text and "Progress: " in text and "units, " in text and " s left at most" in text
        assert "opens: " in text and " pages, " in text and " files (" in text
    finally:
        emu.stop()
