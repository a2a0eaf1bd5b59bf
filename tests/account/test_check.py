"""The completeness check over real HTTP against the emulator: a record the tracking pages leave out while the
counts include it is reported as exactly that (campaign, report), in the log, the manifest, XCom and lineage
(and fails the task with on_incomplete="fail"); a clean account is all exact, records after the window's end
included; the counts cost no request on v2 and one per 10 activities on v3."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from airflow_provider_cc.emulator import DataConfig, V3Options
from airflow_provider_cc.exceptions import ConstantContactIncompleteError, ConstantContactInputError
from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from tests.conftest import start_emulator, start_v3

ALL_OF_IT = {"data_interval_start": "2022-01-01T00:00:00Z", "data_interval_end": "2023-01-01T00:00:00Z"}
# Campaigns sent in this week keep getting activity after it: records after the window's end.
WEEK = {"data_interval_start": "2022-03-01T03:00:00Z", "data_interval_end": "2022-03-08T03:00:00Z"}


@pytest.fixture
def account(monkeypatch):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300))
    yield emu
    emu.stop()


@pytest.fixture
def v3acct(monkeypatch, tmp_path):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig.realistic(weeks=8, activities=200),
                   options=V3Options(resend_every=3))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.v3_connection_json(
        **{"requests_per_second": 0, "backoff": 0.01, "max_retries": 10, "oauth_store": str(tmp_path / "tokens")}))
    yield emu
    emu.stop()


def run(root: Path, window: dict, **kwargs) -> tuple[ConstantContactAccountTrackingOperator, dict]:
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{root}/", **kwargs)
    return op, op.execute(window)


def test_a_clean_v2_account_is_all_exact_at_no_request(account, tmp_path):
    _, manifest = run(tmp_path, ALL_OF_IT)
    check = manifest["completeness"]
    sent = account.campaign_ids()
    assert check["mismatch_count"] == 0 and check["checked"] == check["exact"] == 3 * len(sent)
    assert not [p for p, _ in account.requests if "/summary" in p], "the selection's answers are the counts"


def test_records_after_the_windows_end_are_no_mismatch(account, tmp_path):
    _, manifest = run(tmp_path, WEEK)
    check = manifest["completeness"]
    assert check["checked"] > 0 and check["mismatch_count"] == 0
    full = json.loads(Path(manifest["manifest_uri"].removeprefix("file://")).read_text())["completeness"]
    assert full == check and check["not_checked"].get("sent before the coverage of the files began")


def test_a_record_the_pages_leave_out_is_reported_as_that_campaign_and_report(account, tmp_path, caplog, capsys):
    victim = account.campaign_ids()[2]
    account.dataset.hidden.add((victim, "bounces"))
    with caplog.at_level("WARNING"):
        op, manifest = run(tmp_path, ALL_OF_IT)
    check = manifest["completeness"]
    want = account.dataset.summary(account.dataset.campaigns[victim])["bounces"]
    assert check["mismatches"] == [{"campaign_id": victim, "report": "bounces", "written": want - 1, "counted": want,
                                    "later": 0, "exact": False}]
    text = caplog.text + "".join(capsys.readouterr())
    assert f"Completeness: campaign {victim} bounces: {want - 1} records written, {want} counted" in text
    lineage = op.get_openlineage_facets_on_complete(None)
    failed = [(d.name, a.column) for d in lineage.outputs for a in
              getattr(d.facets.get("dataQualityAssertions"), "assertions", []) if not a.success]
    assert failed and all(column == f"campaign_id={victim}/bounces" and f"campaign_id={victim}" in name
                          for name, column in failed)

    with pytest.raises(ConstantContactIncompleteError, match=f"campaign {victim} bounces: {want - 1} written, "
                                                             f"{want} counted"):
        run(tmp_path / "strict", ALL_OF_IT, on_incomplete="fail")


def test_on_incomplete_is_checked_before_any_request(account, tmp_path):
    with pytest.raises(ConstantContactInputError, match="on_incomplete='ignore' must be 'warn'"):
        run(tmp_path, ALL_OF_IT, on_incomplete="ignore")
    assert account.requests == []


def test_v3_counts_cost_one_request_per_ten_activities_and_find_the_planted_gap(v3acct, tmp_path):
    _, clean = run(tmp_path / "clean", ALL_OF_IT)
    check = clean["completeness"]
    assert check["checked"] > 0 and check["mismatch_count"] == 0
    stats = [p for p, _ in v3acct.requests if "/reports/stats/email_campaign_activities/" in p]
    activities = {f["campaign_activity_id"] for f in clean["files"]}
    assert len(stats) == math.ceil(len(activities) / 10)

    campaign = next(c for c in v3acct.v3.view.campaigns.values() if c.status == "SENT" and c.resend is None)
    v3acct.dataset.hidden.add((campaign.primary.id, "opens"))
    _, manifest = run(tmp_path / "gap", ALL_OF_IT)
    (mismatch,) = manifest["completeness"]["mismatches"]
    assert (mismatch["campaign_id"], mismatch["report"]) == (campaign.id, "opens")
    assert mismatch["written"] == mismatch["counted"] - 1
