"""The same operators on a v3 connection, over real HTTP against the emulator's v3 API: a campaign's reports
per activity, windows cut on the client at the lowest request cost, snapshots, summaries, lists, contacts, and
what exists in one version only refused before any request."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_provider_cc.emulator import DataConfig, V3Options
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.operators.tracking import (
    ConstantContactCampaignSummaryOperator,
    ConstantContactCampaignTrackingOperator,
    ConstantContactContactSummaryOperator,
    ConstantContactContactTrackingOperator,
    ConstantContactListCampaignsOperator,
)
from airflow_provider_cc.window import record_instant, to_utc
from tests.conftest import start_emulator, start_v3

if TYPE_CHECKING:
    from pathlib import Path

WEEK = {"data_interval_start": "2022-03-01T03:00:00Z", "data_interval_end": "2022-03-08T03:00:00Z"}


@pytest.fixture
def v3acct(monkeypatch, tmp_path):
    """The realistic account through v3, behind ``constant_contact_default`` (a DAG's v2 connection id: moving
    to v3 is changing the connection, not the DAG)."""
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig.realistic(weeks=8, activities=300),
                   options=V3Options(resend_every=3))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.v3_connection_json(
        **{"requests_per_second": 0, "backoff": 0.01, "max_retries": 10, "oauth_store": str(tmp_path / "tokens")}))
    yield emu
    emu.stop()


def in_window(records: list[dict], campaign_id: str, start: str, end: str) -> list[dict]:
    low, high = to_utc(start, "s"), to_utc(end, "e")
    return [{**r, "campaign_id": campaign_id} for r in records if low <= record_instant(r["created_time"]) < high]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def v3_campaign_with_resend(emu) -> tuple[str, list[str]]:
    view = emu.v3.view
    campaign = next(c for c in view.campaigns.values() if c.resend is not None and c.status == "SENT")
    return campaign.id, [a.id for a in view.reported(campaign)]


def tracking_requests(emu, report: str) -> list[dict]:
    return [q for p, q in emu.requests if p.endswith(f"/tracking/{report}")]


def test_a_campaign_pulls_its_primary_email_and_resend_into_a_file_each(v3acct, tmp_path):
    cid, activities = v3_campaign_with_resend(v3acct)
    window = {"data_interval_start": "2022-02-21T03:00:00Z", "data_interval_end": "2022-03-08T03:00:00Z"}
    op = ConstantContactCampaignTrackingOperator(task_id="t", campaign_id=cid, report="opens",
                                                 destination=f"file://{tmp_path}/")
    result = op.execute(window)
    assert len(activities) == 2 and len(result["files"]) == 2
    for aid in activities:
        folder = tmp_path / f"campaign/opens/campaign_id={cid}/campaign_activity_id={aid}"
        want = in_window(v3acct.v3_records(aid, "opens"), cid, window["data_interval_start"],
                         window["data_interval_end"])
        assert read(folder / "20220221T030000Z_20220308T030000Z.jsonl") == want and want
    assert {e["campaign_activity_id"] for e in op.files_written} == set(activities)
    assert all(e["api"] == "v3" and e["campaign_id"] == cid for e in op.files_written)
    # The same pull to XCom: both activities, one list.
    records = ConstantContactCampaignTrackingOperator(task_id="x", campaign_id=cid, report="opens").execute(window)
    assert len(records) == result["records"] and {r["campaign_activity_id"] for r in records} == set(activities)


def test_an_activity_id_pulls_that_activity(v3acct):
    cid, activities = v3_campaign_with_resend(v3acct)
    records = ConstantContactCampaignTrackingOperator(task_id="t", campaign_id=activities[1], report="sends").execute(
        {"data_interval_start": "2022-01-01T00:00:00Z", "data_interval_end": "2023-01-01T00:00:00Z"})
    assert records == [{**r, "campaign_id": cid} for r in v3acct.v3_records(activities[1], "sends")]


@pytest.mark.parametrize("limit", [7, 50, 500])
def test_a_window_costs_the_pages_down_to_the_second_older_record_and_keeps_ties_at_its_start(v3acct, tmp_path,
                                                                                             limit):
    aid = v3acct.v3_activity_ids()[0]
    cid = v3acct.v3.view.activities[aid].campaign.id
    served = v3acct.v3_records(aid, "opens")
    # A window starting exactly at a record's time, with a record of the same time after it: both are kept.
    ties = [i for i in range(1, len(served)) if served[i]["created_time"] == served[i - 1]["created_time"]]
    start = served[ties[len(ties) // 2]]["created_time"]
    end = served[5]["created_time"]
    seen = len(v3acct.requests)
    records = ConstantContactCampaignTrackingOperator(task_id="t", campaign_id=aid, report="opens", limit=limit,
                                                      created_since=start, created_before=end).execute({})
    assert records == in_window(served, cid, start, end)
    first_older = next(i for i, r in enumerate(served) if record_instant(r["created_time"]) < to_utc(start, "s"))
    pages = [q for p, q in v3acct.requests[seen:] if p.endswith("/tracking/opens")]
    # The stream ends after the page that closes with two records in a row older than the start: the page of the
    # record after the first older one (index first_older + 1).
    assert len(pages) == (first_older + 1) // limit + 1, "the pages until the second older record in a row"


def test_snapshots_are_one_file_per_run_named_by_its_end_and_rewritten(v3acct, tmp_path):
    cid, activities = v3_campaign_with_resend(v3acct)
    op = ConstantContactCampaignTrackingOperator(task_id="t", campaign_id=cid, report="unique_opens",
                                                 destination=f"file://{tmp_path}/")
    op.execute(WEEK)
    op.execute(WEEK)
    for aid in activities:
        folder = tmp_path / f"campaign/unique_opens/campaign_id={cid}/campaign_activity_id={aid}"
        assert [p.name for p in folder.iterdir()] == ["20220308T030000Z.jsonl"]
        want = [{**r, "campaign_id": cid} for r in v3acct.v3_records(aid, "unique_opens")]
        assert read(folder / "20220308T030000Z.jsonl") == want, "the whole report, once (rewritten, not appended)"


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"report": "didnotopens"}, "'didnotopens' exists on the v3 API only"),
    ({"report": "opens", "bounce_codes": ["B"]}, "bounce_codes is a v3 filter"),
    ({"campaign_id": "9f7e6d5c-0000-4000-8000-000000000000", "report": "opens"}, "is not a numeric id"),
])
def test_what_exists_on_v3_only_is_refused_on_v2_before_any_request(monkeypatch, tmp_path, kwargs, words):
    emu = start_emulator(monkeypatch)
    try:
        with pytest.raises(ConstantContactInputError, match=words):
            ConstantContactCampaignTrackingOperator(task_id="t", **{"campaign_id": emu.campaign_ids()[0], **kwargs}
                                                    ).execute(WEEK)
        assert emu.requests == []
    finally:
        emu.stop()


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"campaign_id": "1100394165000", "report": "opens"}, "is not a v3 id"),
    ({"report": "views"}, "unknown campaign tracking report 'views' on the v3 API"),
    ({"report": "opens", "link_id": "x"}, "is not a numeric id"),
])
def test_bad_v3_arguments_are_refused_before_any_request(v3acct, kwargs, words):
    aid = v3acct.v3_activity_ids()[0]
    with pytest.raises(ConstantContactInputError, match=words):
        ConstantContactCampaignTrackingOperator(task_id="t", **{"campaign_id": aid, **kwargs}).execute(WEEK)
    assert not [p for p, _ in v3acct.requests if p.startswith("/v3/")]


def test_bounces_filtered_by_code_and_clicks_by_link(v3acct):
    aid = v3acct.v3_activity_ids()[0]
    everything = {"data_interval_start": "2022-01-01T00:00:00Z", "data_interval_end": "2025-01-01T00:00:00Z"}
    bounces = ConstantContactCampaignTrackingOperator(task_id="t", campaign_id=aid, report="bounces",
                                                      bounce_codes=["B", "Z"]).execute(everything)
    served = v3acct.v3_records(aid, "bounces")
    assert bounces and {r["bounce_code"] for r in bounces} <= {"B", "Z"}
    assert len(bounces) == sum(r["bounce_code"] in ("B", "Z") for r in served)
    url = v3acct.v3_records(aid, "clicks")[0]["url_id"]
    clicks = ConstantContactCampaignTrackingOperator(task_id="t", campaign_id=aid, report="clicks",
                                                     link_id=url).execute(everything)
    assert clicks and {r["url_id"] for r in clicks} == {url}


def test_summaries_lists_and_contacts_on_v3(v3acct):
    cid, activities = v3_campaign_with_resend(v3acct)
    summary = ConstantContactCampaignSummaryOperator(task_id="s", campaign_id=cid).execute({})
    assert summary["campaign_id"] == cid and summary["stats"]["em_sends"] > 0
    done = ConstantContactListCampaignsOperator(task_id="l").execute({})
    sent = {c.id for c in v3acct.v3.view.campaigns.values() if c.status == "SENT"}
    assert set(done) == sent and done == sorted(done)
    record = v3acct.v3_records(activities[0], "opens")[0]
    contact = record["contact_id"]
    around = {"data_interval_start": "2022-01-01T00:00:00Z", "data_interval_end": "2025-01-01T00:00:00Z"}
    rows = ConstantContactContactTrackingOperator(task_id="c", contact_id=contact).execute(around)
    assert rows and all(r["contact_id"] == contact for r in rows)
    assert any(r["campaign_activity_id"] == activities[0] and r["tracking_activity_type"] == "em_opens" for r in rows)
    per = ConstantContactContactSummaryOperator(task_id="c", contact_id=contact, by_campaign=True).execute(around)
    total = ConstantContactContactSummaryOperator(task_id="c", contact_id=contact).execute(around)
    assert per and total["em_opens"] == sum(int(r.get("em_opens") or 0) for r in per) > 0


def test_an_id_that_is_neither_campaign_nor_activity_fails_naming_the_campaign(v3, tmp_path):
    """The campaign look-up answered 404, then the activity look-up: the error names the campaign asked for."""
    from airflow_provider_cc.exceptions import ConstantContactNotFoundError

    unknown = "0badc0de-0000-4000-8000-000000000000"
    with pytest.raises(ConstantContactNotFoundError, match=f"campaign {unknown} not found: the id is neither a "
                                                           "campaign nor a campaign activity"):
        ConstantContactCampaignTrackingOperator(
            task_id="t", campaign_id=unknown, report="sends", destination=f"file://{tmp_path}/out/",
            constant_contact_conn_id="constant_contact_v3_default").execute(WEEK)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.jsonl"))
