"""The account operator on a v3 connection, over real HTTP against the emulator's v3 API: the bulk summaries
choose the campaigns (no request per campaign), a campaign's activities are asked once and cached, a unit per
(activity, report), files per activity and partition equal to what the API serves, at the lower bound of
tracking pages; a primary email sent inside the window whose resend went out after it is still pulled; a
retry resumes the activity units; what the account cannot pull on v3 is refused before any request."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from airflow_provider_cc._compat import AirflowFailException
from airflow_provider_cc.emulator import DataConfig, V3Options
from airflow_provider_cc.exceptions import (
    ConstantContactError,
    ConstantContactInputError,
    ConstantContactResponseError,
)
from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from airflow_provider_cc.reports import v3_report
from airflow_provider_cc.selection import SUMMARY_LAG
from airflow_provider_cc.window import record_instant, to_utc

if TYPE_CHECKING:
    from pathlib import Path

REPORTS = ("sends", "opens", "clicks", "forwards", "unsubscribes", "bounces")
# Weekly sends from 2022-02-07 15:00; every third SENT campaign is the previous one's resend: campaign 4's
# primary email goes out on 03-07, its resend on 03-14, after this window's end.
WINDOW = {"data_interval_start": "2022-02-14T00:00:00Z", "data_interval_end": "2022-03-14T00:00:00Z"}
NEXT = {"data_interval_start": "2022-03-14T00:00:00Z", "data_interval_end": "2022-03-21T00:00:00Z"}


@pytest.fixture
def v3acct(monkeypatch, tmp_path):
    """A realistic account on v3 behind the DAG's usual connection id (moving to v3 changes the connection)."""
    from tests.conftest import start_v3

    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig.realistic(weeks=8, activities=200),
                   options=V3Options(resend_every=3))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.v3_connection_json(
        **{"requests_per_second": 0, "backoff": 0.01, "max_retries": 10, "oauth_store": str(tmp_path / "tokens")}))
    yield emu
    emu.stop()


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def sent_campaigns(emu):
    return [c for c in emu.v3.view.campaigns.values() if c.status == "SENT"]


def first_send(emu, campaign):
    return min(to_utc(h["run_date"], "s") for a in emu.v3.view.reported(campaign) for h in emu.v3.view.send_history(a))


def expected(emu, window: dict, partition: timedelta):
    """Per file path below the root: the records the API serves for that activity, report and partition."""
    low, high = to_utc(window["data_interval_start"], "s"), to_utc(window["data_interval_end"], "e")
    files: dict[str, list[dict]] = {}
    for campaign in sent_campaigns(emu):
        for activity in emu.v3.view.reported(campaign):
            for report in REPORTS:
                for record in emu.v3_records(activity.id, v3_report(report).segment):
                    moment = record_instant(record["created_time"])
                    if not low <= moment < high:
                        continue
                    start = low + partition * ((moment - low) // partition)
                    name = f"{start:%Y%m%dT%H%M%SZ}_{start + partition:%Y%m%dT%H%M%SZ}.jsonl"
                    path = (f"campaign/{report}/campaign_id={campaign.id}/campaign_activity_id={activity.id}/"
                            f"{name}")
                    files.setdefault(path, []).append({**record, "campaign_id": campaign.id})
    return files


def lower_bound(emu, window: dict, limit: int) -> int:
    """Tracking pages a window needs at least, knowing only campaign totals (what the summaries give): per
    (activity, report) of a campaign first sent before the window's end whose total is not 0, the pages down
    to the first record older than the window's start (one for an empty report). A total of 0 is believed
    once the campaign's last send is a day older than the window's end (selection.SUMMARY_LAG)."""
    low, high = to_utc(window["data_interval_start"], "s"), to_utc(window["data_interval_end"], "e")
    pages = 0
    for campaign in sent_campaigns(emu):
        if first_send(emu, campaign) >= high:
            continue
        settled = to_utc(emu.v3.view.times(campaign)[1], "s") <= high - SUMMARY_LAG
        for report in REPORTS:
            if settled and not any(emu.v3_records(a.id, v3_report(report).segment)
                                   for a in emu.v3.view.reported(campaign)):
                continue  # the campaign's total is 0 (and old enough to believe): no page
            for activity in emu.v3.view.reported(campaign):
                served = emu.v3_records(activity.id, v3_report(report).segment)
                newer = sum(record_instant(r["created_time"]) >= low for r in served)
                pages += newer // limit + 1 if newer < len(served) else max(1, math.ceil(len(served) / limit))
    return pages


def v3_requests(emu, since: int = 0) -> list[str]:
    return [p for p, _ in emu.requests[since:] if p.startswith("/v3/")]


def test_an_account_on_v3_writes_every_activitys_records_per_partition_at_the_lower_bound(v3acct, tmp_path):
    limit = 20
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/out/",
                                                partition=timedelta(days=7), limit=limit)
    manifest = op.execute(WINDOW)
    want = expected(v3acct, WINDOW, timedelta(days=7))
    root = tmp_path / "out"
    got = {str(p.relative_to(root)): read(p) for p in root.glob("campaign/**/*.jsonl")}
    assert got == want and len(want) > 20
    assert {e["api"] for e in manifest["files"]} == {"v3"}
    paths = v3_requests(v3acct)
    assert paths.count("/v3/reports/summary_reports/email_campaign_summaries") == 1, "one page per 500 campaigns"
    end = to_utc(WINDOW["data_interval_end"], "e")
    asked = [p for p in paths if p.startswith("/v3/emails/") and "/activities/" not in p]
    # Every campaign once: those sent before the window's end for their activities, those last sent after it
    # to learn whether their first send (a primary email before a resend) was before it.
    assert sorted(asked) == sorted(f"/v3/emails/{c.id}" for c in sent_campaigns(v3acct))
    history = [p for p in paths if p.endswith("/send_history")]
    assert len(history) == sum(1 for c in sent_campaigns(v3acct)
                               if c.resend is not None and to_utc(v3acct.v3.view.times(c)[1], "s") >= end) >= 1
    tracking = [p for p in paths if "/tracking/" in p]
    assert len(tracking) == lower_bound(v3acct, WINDOW, limit)
    assert manifest["requests"] == len(paths) - sum("/oauth" in p for p in paths)

    # The next week: the campaigns' activities and first sends come from the cache.
    seen = len(v3acct.requests)
    op.execute(NEXT)
    again = v3_requests(v3acct, seen)
    assert not [p for p in again if p.startswith("/v3/emails/")], "nothing asked again"
    assert len([p for p in again if "/tracking/" in p]) == lower_bound(v3acct, NEXT, limit)


def test_a_primary_email_sent_in_the_window_is_pulled_though_its_resend_came_after(v3acct, tmp_path):
    end = to_utc(WINDOW["data_interval_end"], "e")
    late = next(c for c in sent_campaigns(v3acct) if c.resend is not None
                and first_send(v3acct, c) < end <= to_utc(v3acct.v3.view.times(c)[1], "s"))
    ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", reports=["sends"]
                                           ).execute(WINDOW)
    primary = late.activities[0].id if late.activities[0].role == "primary_email" else next(
        a.id for a in late.activities if a.role == "primary_email")
    files = list(tmp_path.glob(f"campaign/sends/campaign_id={late.id}/campaign_activity_id={primary}/*.jsonl"))
    assert files and read(files[0]), "its primary email's sends in the window are there"


def test_a_retry_resumes_the_activity_units_and_writes_the_bytes_of_one_run(v3acct, tmp_path):
    kwargs = {"task_id": "a", "partition": timedelta(days=7), "limit": 50}
    ConstantContactAccountTrackingOperator(destination=f"file://{tmp_path}/one/", **kwargs).execute(WINDOW)
    seen = len(v3acct.requests)
    with pytest.raises(ConstantContactError, match="request budget"):
        ConstantContactAccountTrackingOperator(destination=f"file://{tmp_path}/two/", max_requests=12,
                                               **kwargs).execute(WINDOW)
    manifest = ConstantContactAccountTrackingOperator(destination=f"file://{tmp_path}/two/", **kwargs
                                                      ).execute(WINDOW)
    assert manifest["units"]["resumed"] > 0
    asked = [p for p in v3_requests(v3acct, seen) if p.startswith("/v3/emails/")]
    assert asked and len(asked) == len(set(asked)), "each campaign's activities and first send asked once, cached"
    one = {str(p.relative_to(tmp_path / "one")): p.read_bytes() for p in (tmp_path / "one").glob("campaign/**/*.*")}
    two = {str(p.relative_to(tmp_path / "two")): p.read_bytes() for p in (tmp_path / "two").glob("campaign/**/*.*")}
    assert one == two and one


def test_explicit_v3_campaign_ids_are_read_from_the_summaries(v3acct, tmp_path):
    campaign = next(c for c in sent_campaigns(v3acct) if c.resend is None
                    and first_send(v3acct, c) < to_utc(WINDOW["data_interval_end"], "e"))
    manifest = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/",
                                                      campaign_ids=[campaign.id.upper()], reports="opens"
                                                      ).execute(WINDOW)
    assert manifest["files_count"] == 1 and manifest["files"][0]["campaign_id"] == campaign.id
    paths = v3_requests(v3acct)
    assert f"/v3/emails/{campaign.id}" in paths and not [p for p in paths if p.endswith("/send_history")]


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"reports": ["unique_opens"]}, "unique_opens is a snapshot"),
    ({"reports": ["views"]}, "unknown campaign tracking report 'views' on the v3 API"),
    ({"campaign_ids": ["1100394165000"]}, "is not a v3 id"),
])
def test_what_the_v3_account_cannot_pull_is_refused_before_any_request(v3acct, tmp_path, kwargs, words):
    with pytest.raises(ConstantContactInputError, match=words):
        ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", **kwargs
                                               ).execute(WINDOW)
    assert v3_requests(v3acct) == []


def test_daily_runs_with_rechecks_on_v3_skip_unchanged_campaigns_and_match_a_full_pull(v3acct, tmp_path):
    """Daily runs on the account's clock with ``sent_within`` and ``recheck_every``: a re-check of an old
    campaign whose totals did not move pulls nothing (the pull that read records after its window's end does
    not count as complete), and a day's files equal a full pull's of that day once the re-check period passed."""
    end = datetime.fromtimestamp(v3acct.dataset.end_ms / 1000, tz=timezone.utc).replace(
        hour=3, minute=0, second=0, microsecond=0)
    days = [end - timedelta(days=n) for n in range(12, 0, -1)]
    options = {"sent_within": timedelta(days=7), "recheck_every": timedelta(days=3)}
    reasons: list[str] = []
    for day in days:
        v3acct.set_now((day + timedelta(days=1, minutes=1)).isoformat())
        manifest = ConstantContactAccountTrackingOperator(
            task_id="a", destination=f"file://{tmp_path}/daily/", created_since=day,
            created_before=day + timedelta(days=1), **options).execute({})
        reasons += [s["reason"] for s in manifest["skipped"]]
    assert "no new activity" in reasons and "sent before the horizon" in reasons
    for day in days[:5]:  # more than recheck_every before the last run
        v3acct.set_now((days[-1] + timedelta(days=1, minutes=1)).isoformat())
        ConstantContactAccountTrackingOperator(task_id="f", destination=f"file://{tmp_path}/full/",
                                               created_since=day, created_before=day + timedelta(days=1)
                                               ).execute({})
        name = f"{day:%Y%m%dT%H%M%SZ}_"
        full = {str(p.relative_to(tmp_path / "full")): p.read_bytes()
                for p in (tmp_path / "full").glob(f"campaign/**/{name}*")}
        daily = {str(p.relative_to(tmp_path / "daily")): p.read_bytes()
                 for p in (tmp_path / "daily").glob(f"campaign/**/{name}*")}
        assert daily == full and full, day
    v3acct.set_now(None)


def test_a_later_run_that_cached_a_campaigns_activities_does_not_hide_its_primary_email_from_a_backfill(
        v3acct, tmp_path):
    end = to_utc(WINDOW["data_interval_end"], "e")
    late = next(c for c in sent_campaigns(v3acct) if c.resend is not None
                and first_send(v3acct, c) < end <= to_utc(v3acct.v3.view.times(c)[1], "s"))
    root = f"file://{tmp_path}/"
    # The next week first: the campaign was last sent before its end, so its activities are cached without
    # its first send.
    ConstantContactAccountTrackingOperator(task_id="a", destination=root, reports=["sends"]).execute(NEXT)
    seen = len(v3acct.requests)
    ConstantContactAccountTrackingOperator(task_id="a", destination=root, reports=["sends"]).execute(WINDOW)
    primary = next(a.id for a in late.activities if a.role == "primary_email")
    files = list(tmp_path.glob(f"campaign/sends/campaign_id={late.id}/campaign_activity_id={primary}/"
                               "20220214T000000Z_*.jsonl"))
    assert files and read(files[0]), "its primary email's sends in the window are there"
    assert [p for p, _ in v3acct.requests[seen:] if p.endswith("/send_history")], "its first send was asked"


# ---- one odd campaign answer ----------------------------------------------------------------------------------
def few_retries(monkeypatch, emu, tmp_path) -> None:
    """The connection with 2 retries a request: a malformed answer for good fails in a few requests."""
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.v3_connection_json(
        **{"requests_per_second": 0, "backoff": 0.01, "max_retries": 2, "oauth_store": str(tmp_path / "tokens")}))


def in_window(emu, window: dict = WINDOW):
    """A campaign first sent inside the window, without a resend."""
    low, high = to_utc(window["data_interval_start"], "s"), to_utc(window["data_interval_end"], "e")
    return next(c for c in sent_campaigns(emu) if c.resend is None and low <= first_send(emu, c) < high)


def written(root: Path) -> dict[str, list[dict]]:
    return {str(p.relative_to(root)): read(p) for p in root.glob("campaign/**/*.jsonl")}


PULLED = ["sends", "opens"]


def pulled(emu, window: dict) -> dict[str, list[dict]]:
    """What a run of ``window`` writes for the reports :data:`PULLED`, one partition (the window)."""
    length = to_utc(window["data_interval_end"], "e") - to_utc(window["data_interval_start"], "s")
    return {p: r for p, r in expected(emu, window, length).items() if p.split("/")[1] in PULLED}


def cached(root: Path) -> dict[str, list[str]]:
    """The campaign-activity cache: activity ids by campaign."""
    path = root / "_state" / "campaigns" / "activities.json"
    return {c: e["activities"] for c, e in json.loads(path.read_text())["campaigns"].items()} if path.exists() else {}


def without_activities(body):
    return {k: v for k, v in body.items() if k != "campaign_activities"}


def roleless(body):
    return {**body, "campaign_activities": [{k: v for k, v in a.items() if k != "role"}
                                            for a in body["campaign_activities"]]}


def bad_primary_id(body):
    return {**body, "campaign_activities": [{**a, "campaign_activity_id": "../../../x"} if a["role"] == "primary_email"
                                            else a for a in body["campaign_activities"]]}


@pytest.mark.parametrize("change", [without_activities, lambda b: {**b, "campaign_activities": []}, roleless,
                                    lambda b: None, lambda b: [], bad_primary_id],
                         ids=["missing", "empty", "roleless", "null", "array", "bad-id"])
def test_a_campaign_answer_without_its_primary_email_once_is_asked_again_and_nothing_is_lost(
        v3acct, tmp_path, monkeypatch, change):
    """h1, m5: such an answer is malformed (retried), never "no activity" for a campaign the summaries list as
    sent; the second, correct answer is the one used and cached."""
    from tests.v3_answers import Rewrite

    few_retries(monkeypatch, v3acct, tmp_path)
    victim = in_window(v3acct)
    odd = Rewrite(v3acct, "get_campaign", change, ids={victim.id})
    manifest = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/out/",
                                                      reports=PULLED).execute(WINDOW)
    assert odd.rewritten == 1 and v3_requests(v3acct).count(f"/v3/emails/{victim.id}") == 2, "asked again"
    assert written(tmp_path / "out") == pulled(v3acct, WINDOW)
    assert any(f"campaign_id={victim.id}/" in p for p in pulled(v3acct, WINDOW))
    assert not [s for s in manifest["skipped"] if s["campaign_id"] == victim.id]
    assert cached(tmp_path / "out")[victim.id] == [a.id for a in v3acct.v3.view.reported(victim)]


@pytest.mark.parametrize(("change", "words"), [
    (without_activities, "campaign_activities is null \\(missing\\)"),
    (lambda b: [], "expected a campaign object, got an array"),
    (bad_primary_id, "campaign_activities\\[1\\].campaign_activity_id is not a v3 id"),
], ids=["missing", "array", "bad-id"])
def test_a_campaign_answer_malformed_for_good_fails_naming_it_caches_nothing_and_a_correct_server_then_gives_all(
        v3acct, tmp_path, monkeypatch, change, words):
    """h1, m5: the task fails with a response error (Airflow retries it; never the user's input error, never a
    bare Python error) naming the campaign and the field; nothing of the answer is cached, so once the server
    answers correctly the rerun and the next window hold every record."""
    from tests.v3_answers import Rewrite

    few_retries(monkeypatch, v3acct, tmp_path)
    victim = in_window(v3acct)
    odd = Rewrite(v3acct, "get_campaign", change, times=-1, ids={victim.id})
    root = tmp_path / "out"
    with pytest.raises(ConstantContactResponseError, match=f"campaign {victim.id}: .*{words}") as info:
        ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{root}/", reports=PULLED
                                               ).execute(WINDOW)
    assert not isinstance(info.value, AirflowFailException), "a server's fault: Airflow's retries apply"
    assert victim.id not in cached(root)
    odd.stop()
    ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{root}/", reports=PULLED
                                           ).execute(WINDOW)
    ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{root}/", reports=PULLED).execute(NEXT)
    assert written(root) == {**pulled(v3acct, WINDOW), **pulled(v3acct, NEXT)}
    assert any(f"campaign_id={victim.id}/" in p for p in pulled(v3acct, NEXT)), "the next window has its records too"


def test_roles_and_statuses_in_any_letter_case_and_an_activity_listed_twice_are_read_once(v3acct, tmp_path):
    """h1, m5: live answers differ in case (``Draft`` and ``DRAFT``); an activity listed twice alike is one."""
    from tests.v3_answers import Rewrite

    def shouted(body):
        listed = [{**a, "role": a["role"].upper()} for a in body["campaign_activities"]]
        return {**body, "current_status": body["current_status"].upper(), "campaign_activities": listed + listed}

    Rewrite(v3acct, "get_campaign", shouted, times=-1)
    ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", reports=PULLED
                                           ).execute(WINDOW)
    assert written(tmp_path) == pulled(v3acct, WINDOW)


def test_an_activity_two_campaigns_list_is_read_once_under_the_campaign_it_names(v3acct, tmp_path):
    """l2: a campaign's answer lists another campaign's primary email as its resend: the activity's own answer
    names its campaign, its records are written once, there; the contradicted answer is not cached."""
    from tests.v3_answers import Rewrite

    victim = in_window(v3acct)
    other = next(c for c in sent_campaigns(v3acct) if c.id != victim.id and c.resend is None
                 and first_send(v3acct, c) < to_utc(WINDOW["data_interval_end"], "e"))
    stolen = other.activities[0].id
    assert other.activities[0].role == "primary_email"
    Rewrite(v3acct, "get_campaign", lambda b: {**b, "campaign_activities": [
        *b["campaign_activities"], {"campaign_activity_id": stolen, "role": "resend"}]}, times=-1, ids={victim.id})
    manifest = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", reports=PULLED
                                                      ).execute(WINDOW)
    assert written(tmp_path) == pulled(v3acct, WINDOW), "each record once, under its own campaign"
    assert {(s["campaign_id"], s["reason"]) for s in manifest["skipped"]} >= {
        (victim.id, "activity of another campaign")}
    assert v3_requests(v3acct).count(f"/v3/emails/activities/{stolen}") == 1
    assert victim.id not in cached(tmp_path) and other.id in cached(tmp_path)


def test_an_activity_two_campaigns_list_that_names_neither_fails_the_run_naming_the_conflict(v3acct, tmp_path):
    """l2: when the activity's own answer settles nothing, the run fails before pulling, naming the activity and
    both campaigns; neither answer is cached."""
    from tests.v3_answers import Rewrite

    victim = in_window(v3acct)
    other = next(c for c in sent_campaigns(v3acct) if c.id != victim.id and c.resend is None
                 and first_send(v3acct, c) < to_utc(WINDOW["data_interval_end"], "e"))
    third = next(c for c in sent_campaigns(v3acct) if c.id not in (victim.id, other.id))
    stolen = other.activities[0].id
    Rewrite(v3acct, "get_campaign", lambda b: {**b, "campaign_activities": [
        *b["campaign_activities"], {"campaign_activity_id": stolen, "role": "resend"}]}, times=-1, ids={victim.id})
    Rewrite(v3acct, "get_activity", lambda b: {**b, "campaign_id": third.id}, times=-1, ids={stolen})
    with pytest.raises(ConstantContactResponseError, match=f"campaign activity {stolen} is listed by campaigns .*"
                                                           f"names campaign {third.id}"):
        ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", reports=PULLED
                                               ).execute(WINDOW)
    assert not written(tmp_path)
    assert victim.id not in cached(tmp_path) and other.id not in cached(tmp_path)


def test_a_resends_campaign_whose_primary_email_shows_no_completed_send_once_is_asked_again_not_skipped(
        v3acct, tmp_path, monkeypatch):
    """h1: a campaign last sent after the window (its resend) whose primary email's send history comes back
    empty once is not taken as "first sent after the window": a sent campaign's primary email was sent, so the
    answer is malformed and asked again; its records in the window are written."""
    from tests.v3_answers import Rewrite

    few_retries(monkeypatch, v3acct, tmp_path)
    end = to_utc(WINDOW["data_interval_end"], "e")
    late = next(c for c in sent_campaigns(v3acct) if c.resend is not None
                and first_send(v3acct, c) < end <= to_utc(v3acct.v3.view.times(c)[1], "s"))
    primary = next(a.id for a in late.activities if a.role == "primary_email")
    odd = Rewrite(v3acct, "send_history", lambda b: [], ids={primary})
    manifest = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", reports=PULLED
                                                      ).execute(WINDOW)
    assert odd.rewritten == 1
    assert written(tmp_path) == pulled(v3acct, WINDOW)
    assert any(f"campaign_activity_id={primary}/" in p for p in pulled(v3acct, WINDOW))
    assert not [s for s in manifest["skipped"] if s["campaign_id"] == late.id]
