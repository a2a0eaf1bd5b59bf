"""The v3 hook and transport over real HTTP against the emulator: endpoints, paging, 429 throttled and
quota_exceeded, 401 then refresh, 403 causes, Content-Type, same-origin links, the limiter per client id,
and no secret in any captured output."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pytest
import requests

from airflow_provider_cc._compat import AirflowFailException
from airflow_provider_cc.emulator import DataConfig, FaultConfig, V3Options
from airflow_provider_cc.exceptions import (
    ConstantContactAuthError,
    ConstantContactError,
    ConstantContactInputError,
    ConstantContactQuotaExceededError,
    ConstantContactQuotaSpentError,
)
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
from airflow_provider_cc.hooks.factory import hook_for
from tests.conftest import V3_CONN_ENV, run_threads, start_v3

V3_CONN = "constant_contact_v3_default"


def first_activity(emu: Any) -> str:
    return emu.v3_activity_ids()[0]


def test_tracking_streams_every_record_newest_first_across_pages_with_ties_at_the_boundaries(v3):
    """Every seventh record ties its predecessor; pages of 6 put each tie across a page boundary."""
    aid = first_activity(v3)
    stream = ConstantContactV3Hook().iter_activity_tracking(aid, "sends", limit=6)
    got = list(stream)
    expected = v3.v3_records(aid, "sends")
    assert got == expected and len(got) == 50 and stream.pages == 9
    times = [r["created_time"] for r in got]
    assert times == sorted(times, reverse=True)
    assert any(times[i] == times[i + 1] for i in range(5, len(times) - 1, 6)), "a tie straddles a boundary"
    later = [q for p, q in v3.requests if p.endswith("/tracking/sends")][1:]
    assert later and all(set(q) == {"next"} for q in later), "next pages send only the cursor"


@pytest.mark.parametrize("report", ["sends", "opens", "unique_opens", "clicks", "forwards", "optouts", "bounces",
                                    "didnotopens"])
def test_every_report_has_the_reference_fields(v3, report):
    from airflow_provider_cc.reports import V3_REPORTS

    records = list(ConstantContactV3Hook().iter_activity_tracking(first_activity(v3), report))
    assert records, report
    allowed = set(V3_REPORTS[report].api_fields)
    required = {"contact_id", "campaign_activity_id", "tracking_activity_type", "email_address", "created_time"}
    for record in records:
        assert required <= set(record) <= allowed, record
        assert record["tracking_activity_type"] == V3_REPORTS[report].activity_type
    if report == "clicks":
        assert all(isinstance(r["url_id"], str) and r["link_url"].startswith("https://") for r in records)


def test_snapshots_are_consistent_with_the_event_reports(v3):
    hook = ConstantContactV3Hook()
    aid = first_activity(v3)
    opens = list(hook.iter_activity_tracking(aid, "opens"))
    unique = list(hook.iter_activity_tracking(aid, "unique_opens"))
    sends = list(hook.iter_activity_tracking(aid, "sends"))
    didnot = list(hook.iter_activity_tracking(aid, "didnotopens"))
    openers = {r["contact_id"] for r in opens}
    assert len(unique) == len(openers) and {r["contact_id"] for r in unique} == openers
    newest = {}
    for r in opens:
        newest.setdefault(r["contact_id"], r["created_time"])
    assert all(newest[r["contact_id"]] == r["created_time"] for r in unique), "the last open per contact"
    assert {r["contact_id"] for r in didnot} == {r["contact_id"] for r in sends} - openers
    stats = hook.get_activity_stats([aid])["results"][0]["stats"]
    assert (stats["em_sends"], stats["em_opens"], stats["em_opens_all"]) == (len(sends), len(unique), len(opens))


def test_filters_and_unknown_parameters(v3):
    hook = ConstantContactV3Hook()
    aid = first_activity(v3)
    clicks = v3.v3_records(aid, "clicks")
    url_id = clicks[0]["url_id"]
    assert list(hook.iter_activity_tracking(aid, "clicks", url_id=url_id, limit=3)) == [
        r for r in clicks if r["url_id"] == url_id]
    bounces = v3.v3_records(aid, "bounces")
    codes = {bounces[0]["bounce_code"]}
    assert list(hook.iter_activity_tracking(aid, "bounces", bounce_codes=sorted(codes))) == [
        r for r in bounces if r["bounce_code"] in codes]
    token = hook.tokens.access_token()
    answer = requests.get(f"{v3.url}/v3/reports/email_reports/{aid}/tracking/sends", timeout=10,
                          params={"created_since": "2099-01-01", "limit": 500},
                          headers={"Authorization": f"Bearer {token}"})
    assert len(answer.json()["tracking_activities"]) == 50, "no time filter: unknown parameters are ignored"
    with pytest.raises(ConstantContactInputError, match="url_id only applies"):
        hook.iter_activity_tracking(aid, "opens", url_id=1)
    with pytest.raises(ConstantContactInputError, match="not a v3 id"):
        hook.iter_activity_tracking("1100394165000", "sends")


def test_campaigns_activities_summaries_and_xrefs(monkeypatch, tmp_path):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig(campaigns=5, contacts=30, activities=20),
                   options=V3Options(resend_every=3, string_counts=True, dotted_stats=True))
    try:
        hook = ConstantContactV3Hook()
        listed = list(hook.iter_campaigns(limit=2))
        assert len(listed) == len(emu.v3.view.campaigns) == 7, "5 sent (one as a resend), draft, scheduled, deleted"
        assert {c["current_status"] for c in listed} == {"Done", "Draft", "Scheduled", "Removed"}
        with_resend = next(c for c in emu.v3.view.campaigns.values() if c.resend is not None)
        roles = [a["role"] for a in hook.get_campaign(with_resend.id)["campaign_activities"]]
        assert roles == ["primary_email", "permalink", "resend"]
        summaries = list(hook.iter_campaign_summaries())
        assert len(summaries) == 4 and all(isinstance(v, int) for s in summaries for v in s["unique_counts"].values())
        dates = [s["last_sent_date"] for s in summaries]
        assert dates == sorted(dates, reverse=True)
        stats = hook.get_activity_stats(emu.v3_activity_ids()[:2])["results"][0]["stats"]
        assert "em_opens_all_mobile" in stats, "dotted keys read as the spec's underscores"
        v2_ids = list(emu.dataset.campaigns)
        xrefs = {x["v2_email_campaign_id"]: x for x in hook.get_campaign_xrefs(v2_ids * 12)}  # 8 ids, once each
        assert set(xrefs) == set(v2_ids)
        resend = next(a for a in with_resend.activities if a.role == "resend")
        assert xrefs[resend.source.id]["campaign_activity_id"] == resend.id  # type: ignore[union-attr]
        assert len([p for p, _ in emu.requests if p.endswith("campaign_id_xrefs")]) == 1, "a repeated id is asked once"
        history = hook.get_send_history(emu.v3_activity_ids()[0])
        assert history[0]["send_status"] == "COMPLETED" and history[0]["count"] == 20
    finally:
        emu.stop()


def test_429_throttled_slows_the_application_s_limiter_and_retries(monkeypatch, tmp_path):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), faults=FaultConfig(qps=4), requests_per_second=8,
                   backoff=0.01, max_retries=10)
    try:
        hook = ConstantContactV3Hook()
        records = list(hook.iter_activity_tracking(first_activity(emu), "sends", limit=2))
        assert len(records) == 50
        assert emu.statuses.get(429, 0) > 0
        assert hook.transport.limiter.effective_rate() < 8, "the key's limiter slowed down"  # type: ignore[union-attr]
    finally:
        emu.stop()


def test_429_quota_exceeded_fails_at_once_without_task_retries_saying_when_it_resets(monkeypatch, tmp_path):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), faults=FaultConfig(daily_quota=2))
    try:
        hook = ConstantContactV3Hook()
        hook.get_campaign(next(iter(emu.v3.view.campaigns)))
        hook.get_campaign(next(iter(emu.v3.view.campaigns)))
        before = len(emu.requests)
        with pytest.raises(ConstantContactQuotaSpentError, match="resets at 00:00 UTC") as info:
            hook.get_campaign(next(iter(emu.v3.view.campaigns)))
        assert len(emu.requests) == before + 1, "no retry"
        assert isinstance(info.value, (AirflowFailException)) and isinstance(info.value,
                                                                             ConstantContactQuotaExceededError)
    finally:
        emu.stop()


def test_a_401_mid_run_refreshes_once_and_a_second_401_names_the_cause(v3):
    hook = ConstantContactV3Hook()
    cid = next(iter(v3.v3.view.campaigns))
    hook.get_campaign(cid)
    requests.post(f"{v3.url}/_emulator/oauth/settings", json={"expire_access_tokens": True}, timeout=10)
    import time

    time.sleep(1.0)
    assert hook.get_campaign(cid)["campaign_id"] == cid
    refreshes = [c for c in v3.v3.oauth.token_calls if c[1] == "refresh_token"]
    assert len(refreshes) == 2, "one refresh after the 401"
    requests.post(f"{v3.url}/_emulator/oauth/settings", json={"reject_access_tokens": True}, timeout=10)
    time.sleep(1.0)
    with pytest.raises(ConstantContactAuthError, match="freshly refreshed access token was refused too"):
        hook.get_campaign(cid)
    assert len([c for c in v3.v3.oauth.token_calls if c[1] == "refresh_token"]) == 3, "refreshed once, not again"


def test_403_names_the_missing_scope_privilege_or_deactivated_app(monkeypatch, tmp_path):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"))
    try:
        monkeypatch.setenv(V3_CONN_ENV, emu.v3_connection_json(scope="campaign_data offline_access",
                                                               oauth_store=str(tmp_path / "t2")))
        hook = ConstantContactV3Hook()
        contact = next(iter(emu.v3.view.contact_ids.values()))
        with pytest.raises(ConstantContactAuthError, match="missing scope") as info:
            list(hook.iter_contact_activity(contact))
        assert "campaign_data offline_access" in str(info.value) and "contact_data" in str(info.value)
        requests.post(f"{emu.url}/_emulator/oauth/settings", json={"deactivated": True}, timeout=10)
        with pytest.raises(ConstantContactAuthError, match="application is deactivated"):
            hook.get_campaign(next(iter(emu.v3.view.campaigns)))
    finally:
        emu.stop()


def test_content_type_is_sent(monkeypatch, tmp_path):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), options=V3Options(require_content_type=True))
    try:
        assert ConstantContactV3Hook().get_campaign(next(iter(emu.v3.view.campaigns)))
    finally:
        emu.stop()


def test_next_links_to_another_host_are_refused_and_links_are_joined_to_the_host(v3, monkeypatch):
    hook = ConstantContactV3Hook()
    url = hook.transport.resolve("/v3/emails?next=abc", what="x")
    assert url == f"{v3.url}/v3/emails?next=abc", "rooted at /v3, joined to the host"
    with pytest.raises(ConstantContactError, match="another host"):
        hook.transport.resolve("https://evil.example.com/v3/emails?next=abc", what="campaigns")


def test_two_connections_on_one_application_share_its_limiter_and_its_4_a_second(monkeypatch, tmp_path):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig(campaigns=2, contacts=60, activities=60),
                   faults=FaultConfig(qps=4), requests_per_second=4, max_retries=0)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_CC_V3_OTHER_ACCOUNT", emu.v3_connection_json(
            requests_per_second=4, max_retries=0, oauth_store=str(tmp_path / "other")))
        one, two = ConstantContactV3Hook(), ConstantContactV3Hook("cc_v3_other_account")
        assert one.transport.limiter is two.transport.limiter, "named by the client id, not the connection"
        one.tokens.access_token()
        import time

        time.sleep(1.1)
        two.tokens.access_token()
        errors: list[Exception] = []

        def pull(hook: ConstantContactV3Hook, aid: str) -> None:
            try:
                assert len(list(hook.iter_activity_tracking(aid, "sends", limit=5))) == 60
            except Exception as exc:
                errors.append(exc)

        run_threads([(pull, (h, a)) for h, a in zip((one, two), emu.v3_activity_ids(), strict=True)])
    finally:
        emu.stop()
    assert errors == [] and emu.statuses.get(429, 0) == 0, (errors, emu.statuses)


def test_hook_for_picks_the_hook_of_the_connection_type(v3, emulator):
    assert isinstance(hook_for(V3_CONN), ConstantContactV3Hook)
    assert type(hook_for("constant_contact_default")) is ConstantContactHook
    os.environ["AIRFLOW_CONN_CC_HTTP"] = json.dumps({"conn_type": "http", "host": "x"})
    try:
        with pytest.raises(ConstantContactInputError, match="constant_contact_v3"):
            hook_for("cc_http")
    finally:
        del os.environ["AIRFLOW_CONN_CC_HTTP"]


def test_test_connection_succeeds_and_fails_clearly(v3, monkeypatch, tmp_path):
    assert ConstantContactV3Hook().test_connection() == (True, "Connection to Constant Contact (v3) succeeded.")
    conn = json.loads(os.environ[V3_CONN_ENV])
    conn["password"] = "wrong-secret"
    conn["extra"]["oauth_store"] = str(tmp_path / "fresh")  # no cached access token to fall back on
    monkeypatch.setenv(V3_CONN_ENV, json.dumps(conn))
    ok, message = ConstantContactV3Hook().test_connection()
    assert not ok and "client id, client secret" in message and "wrong-secret" not in message


def test_no_secret_reaches_logs_errors_or_reprs(monkeypatch, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), faults=FaultConfig(qps=4), requests_per_second=8)
    texts: list[str] = []
    try:
        hook = ConstantContactV3Hook()
        aid = first_activity(emu)
        for _ in range(2):
            stream = hook.iter_activity_tracking(aid, "opens", limit=5)
            first = next(stream)
            # The access token stops working after the first page: refreshed (rotating) mid-run, whatever the
            # machine's speed (a short token lifetime raced the pages on a busy machine).
            requests.post(f"{emu.url}/_emulator/oauth/settings", json={"expire_access_tokens": True}, timeout=10)
            texts.append(repr([first, *stream][:1]))
            assert stream.pages >= 2, "the run went on after the token expired"
        requests.post(f"{emu.url}/_emulator/oauth/settings", json={"reject_access_tokens": True}, timeout=10)
        with pytest.raises(ConstantContactAuthError) as info:
            hook.get_campaign(next(iter(emu.v3.view.campaigns)))
        texts += [str(info.value), repr(info.value), repr(hook.settings), repr(hook.tokens.state())]
        secrets = emu.v3.oauth.refresh_tokens() | emu.v3.oauth.seen_tokens | {emu.v3.options.client_secret}
    finally:
        emu.stop()
    out = capsys.readouterr()
    everything = "\n".join([*texts, caplog.text, out.out, out.err, json.dumps(emu.requests)])
    assert len(emu.v3.oauth.refresh_tokens()) >= 3, "rotated at least twice"
    leaked = [s for s in secrets if s in everything]
    assert leaked == []
