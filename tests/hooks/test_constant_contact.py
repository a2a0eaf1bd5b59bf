"""The hook against the emulator over real HTTP: every endpoint, paging, windows, faults, errors, secrets."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from airflow_provider_cc.emulator import DataConfig, FaultConfig
from airflow_provider_cc.exceptions import (
    ConstantContactAuthError,
    ConstantContactError,
    ConstantContactInputError,
    ConstantContactNotFoundError,
    ConstantContactQuotaExceededError,
)
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.reports import ACTIVITY_REPORTS, BY_ACTIVITY_TYPE, REPORTS
from tests.conftest import FIXTURES, as_output, start_emulator


@pytest.mark.parametrize("report", [r.name for r in ACTIVITY_REPORTS])
def test_every_campaign_report_matches_the_emulator(emulator, report):
    cid = emulator.campaign_ids()[0]
    stream = ConstantContactHook().iter_campaign_tracking(cid, report, limit=20)
    got = list(stream)
    expected = as_output(emulator.records(cid, report))
    assert got == expected
    assert stream.records == len(expected) and stream.pages == max(1, -(-len(expected) // 20))
    assert all(r["activity_type"] == REPORTS[report].activity_type for r in got)


def test_clicks_of_one_link(emulator):
    cid = emulator.campaign_ids()[1]
    link = emulator.dataset.link_id(emulator.dataset.campaigns[cid], 2)
    got = list(ConstantContactHook().iter_campaign_tracking(cid, "clicks", link_id=link))
    assert got and {r["link_id"] for r in got} == {link}
    assert got == as_output(emulator.records(cid, "clicks", link_id=link))


def test_contact_tracking_all_and_each_type_agree_with_the_contact_summary(emulator):
    hook = ConstantContactHook()
    everything = list(hook.iter_contact_tracking(7, "all", limit=9))
    summary = hook.get_contact_summary(7)
    assert summary["contact_id"] == "7"
    assert len(everything) == sum(summary[r.summary_key] for r in ACTIVITY_REPORTS)
    assert {r["contact_id"] for r in everything} == {"7"}
    dates = [r[BY_ACTIVITY_TYPE[r["activity_type"]].date_field] for r in everything]
    assert dates == sorted(dates, reverse=True), "newest first"
    for report in ACTIVITY_REPORTS:
        typed = list(hook.iter_contact_tracking(7, report.name))
        assert len(typed) == summary[report.summary_key]
        assert typed == [r for r in everything if r["activity_type"] == report.activity_type]
    by_campaign = hook.get_contact_summary_by_campaign(7)
    assert isinstance(by_campaign, list) and all("unsubscribes" not in row for row in by_campaign)
    assert sum(row["opens"] for row in by_campaign) == summary["opens"]


def test_campaign_summary_campaign_and_list(emulator):
    hook = ConstantContactHook()
    cid = emulator.campaign_ids()[0]
    summary = hook.get_campaign_summary(cid, update_summary=True)
    assert summary["sends"] == len(emulator.records(cid, "sends"))
    assert emulator.requests[-1][1].get("updateSummary") == "true"
    campaign = hook.get_campaign(cid)
    assert campaign["status"] == "SENT" and campaign["tracking_summary"]["sends"] == summary["sends"]
    sent = [c["id"] for c in hook.iter_campaigns(status="SENT")]
    assert sorted(sent) == sorted(emulator.campaign_ids("SENT"))
    listed = {c["status"] for c in hook.iter_campaigns(limit=1)}
    assert listed == {"SENT", "DRAFT", "SCHEDULED"}, "DELETED is listed only when asked for"
    assert [c["status"] for c in hook.iter_campaigns(status="deleted")] == ["DELETED"]


def test_pages_follow_next_link_without_resending_params(emulator):
    cid = emulator.campaign_ids()[0]
    stream = ConstantContactHook().iter_campaign_tracking(cid, "sends", created_since="2023-12-01", limit=7)
    got = list(stream)
    assert len(got) == 150 and len({json.dumps(r, sort_keys=True) for r in got}) == 150
    assert stream.pages == 22
    first, *rest = [q for p, q in emulator.requests if p.endswith("/sends")]
    assert first["limit"] == "7" and first["created_since"] == "2023-12-01T00:00:00.000Z"
    assert all(set(q) == {"api_key", "next"} for q in rest)


def test_window_edges_are_half_open(emulator):
    cid = emulator.campaign_ids()[0]
    everything = emulator.records(cid, "opens")
    edge_low, edge_high = everything[60]["open_date"], everything[20]["open_date"]
    hook = ConstantContactHook()
    inside = list(hook.iter_campaign_tracking(cid, "opens", created_since=edge_low, created_before=edge_high))
    dates = [r["open_date"] for r in inside]
    assert edge_low in dates, "a record exactly at created_since is kept"
    assert edge_high not in dates, "a record exactly at created_before is dropped"
    newer = list(hook.iter_campaign_tracking(cid, "opens", created_since=edge_high))
    older = list(hook.iter_campaign_tracking(cid, "opens", created_before=edge_low))
    assert newer + inside + older == as_output(everything), "adjacent windows neither share nor drop a record"


def test_a_fault_run_equals_the_fault_free_run(monkeypatch):
    data = DataConfig(campaigns=1, contacts=300, activities=400)
    clean = start_emulator(monkeypatch, data)
    cid = clean.campaign_ids()[0]
    expected = list(ConstantContactHook().iter_campaign_tracking(cid, "sends", limit=10))
    clean.stop()
    faults = FaultConfig(error_rate=0.2, drop_rate=0.05, malformed_rate=0.05, qps=30, seed=3)
    faulty = start_emulator(monkeypatch, data, faults)
    try:
        got = list(ConstantContactHook().iter_campaign_tracking(cid, "sends", limit=10))
    finally:
        faulty.stop()
    assert got == expected and len(got) == 400
    statuses = faulty.statuses
    assert statuses.get(500, 0) > 0 and statuses.get(403, 0) > 0, statuses
    tokens = [q.get("next") for p, q in faulty.requests]
    resumed = [t for i, t in enumerate(tokens[1:], 1) if t is not None and t == tokens[i - 1]]
    assert resumed, "a failed page is retried with the same cursor"


@pytest.mark.parametrize(
    ("faults", "conn", "error", "words"),
    [
        (FaultConfig(), {"password": "wrong-token"}, ConstantContactAuthError, "access token"),
        (FaultConfig(), {"extra": {"api_key": "wrong-key"}}, ConstantContactAuthError, "api_key is inactive"),
        (FaultConfig(daily_quota=1), {}, ConstantContactQuotaExceededError, "daily request quota"),
    ],
)
def test_permanent_errors_fail_at_once(monkeypatch, faults, conn, error, words):
    emu = start_emulator(monkeypatch, faults=faults)
    try:
        settings = json.loads(emu.connection_json(requests_per_second=0, backoff=0.01))
        settings["extra"].update(conn.pop("extra", {}))
        monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps({**settings, **conn}))
        hook = ConstantContactHook()
        if faults.daily_quota:
            hook.get_campaign(emu.campaign_ids()[0])
        before = len(emu.requests)
        with pytest.raises(error, match=words) as info:
            list(hook.iter_campaign_tracking(emu.campaign_ids()[0], "sends"))
        assert len(emu.requests) == before + 1, "no retry loop on a permanent error"
        assert info.value.status in (401, 403) and info.value.error_key
    finally:
        emu.stop()


def test_not_found_names_the_campaign_and_contact(emulator):
    hook = ConstantContactHook()
    with pytest.raises(ConstantContactNotFoundError, match="campaign 999"):
        list(hook.iter_campaign_tracking(999, "opens"))
    deleted = emulator.campaign_ids("DELETED")[0]
    with pytest.raises(ConstantContactNotFoundError, match=f"campaign {deleted}"):
        hook.get_campaign(deleted)
    with pytest.raises(ConstantContactNotFoundError, match="contact 100000"):
        hook.get_contact_summary(100000)
    assert len(emulator.requests) == 3


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda h: h.iter_campaign_tracking(1, "views"), "unknown campaign tracking report 'views'"),
        (lambda h: h.iter_contact_tracking(1, "summary"), "unknown contact tracking report"),
        (lambda h: h.iter_campaign_tracking("12a", "sends"), "campaign_id='12a' is not a numeric id"),
        (lambda h: h.iter_campaign_tracking(True, "sends"), "is not a numeric id"),
        (lambda h: h.iter_contact_tracking("-3", "all"), "contact_id='-3' is not a numeric id"),
        (lambda h: h.iter_campaign_tracking(1, "sends", limit=0), "limit=0 is outside 1-500"),
        (lambda h: h.iter_campaign_tracking(1, "sends", limit=501), "limit=501 is outside 1-500"),
        (lambda h: h.iter_campaigns(limit=51), "limit=51 is outside 1-50"),
        (lambda h: h.iter_campaign_tracking(1, "sends", created_since="last tuesday"), "created_since='last tuesday'"),
        (lambda h: h.iter_campaign_tracking(1, "sends", created_since="2024-01-02", created_before="2024-01-01"),
         "empty or inverted window"),
        (lambda h: h.iter_campaign_tracking(1, "sends", created_since="2024-01-02", created_before="2024-01-02"),
         "empty or inverted window"),
        (lambda h: h.iter_campaign_tracking(1, "opens", link_id=5), "link_id only applies to the clicks report"),
        (lambda h: h.iter_campaigns(status="SENDING"), "unknown campaign status 'SENDING'"),
        (lambda h: h.get_campaign("1 OR 1=1"), "is not a numeric id"),
    ],
)
def test_bad_input_is_refused_before_any_request(emulator, call, words):
    with pytest.raises(ConstantContactInputError, match=words):
        call(ConstantContactHook())
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("conn", "words"),
    [
        ({"conn_type": "constant_contact", "password": "t"}, "has no API key"),
        ({"conn_type": "constant_contact", "extra": {"api_key": "k"}}, "no access token"),
        ({"conn_type": "constant_contact", "password": "t", "extra": {"api_key": "k", "timeout": "soon"}},
         "timeout='soon' is not a number"),
    ],
)
def test_missing_credentials_are_refused_before_any_request(emulator, monkeypatch, conn, words):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps({"host": emulator.url, **conn}))
    with pytest.raises(ConstantContactInputError, match=words):
        ConstantContactHook().iter_campaign_tracking(emulator.campaign_ids()[0], "sends")
    assert emulator.requests == []


def test_secrets_never_reach_logs_or_errors(monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    emu = start_emulator(monkeypatch, faults=FaultConfig(error_rate=0.3, drop_rate=0.1, seed=5), max_retries=1)
    texts: list[str] = []
    try:
        hook = ConstantContactHook()
        cid = emu.campaign_ids()[0]
        for _ in range(5):
            try:
                list(hook.iter_campaign_tracking(cid, "sends", limit=5))
            except ConstantContactError as exc:
                texts += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
        monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.connection_json(requests_per_second=0)
                           .replace(emu.token, "bad-" + emu.token))
        bad = ConstantContactHook()
        with pytest.raises(ConstantContactAuthError) as info:
            bad.get_campaign(cid)
        texts += [str(info.value), repr(bad.settings), repr(hook.settings), hook.test_connection()[1]]
    finally:
        emu.stop()
    assert texts and any("gave up" in t for t in texts), "the fault run must produce errors to inspect"
    captured = capsys.readouterr()
    everything = "\n".join([*texts, caplog.text, captured.out, captured.err])
    assert "GET /v2" in caplog.text or "page" in caplog.text, "logs were captured"
    assert emu.api_key not in everything and emu.token not in everything


def test_next_link_to_another_host_is_refused(scripted):
    scripted.add("/v2/emailmarketing/campaigns/1/tracking/sends", 200, {
        "meta": {"pagination": {"next_link": "https://evil.example.com/v2/steal?next=abc"}}, "results": []})
    with pytest.raises(ConstantContactError, match="another host .*evil.example.com.* refusing"):
        list(ConstantContactHook().iter_campaign_tracking(1, "sends"))
    assert len(scripted.seen) == 1


def test_retry_after_and_429_are_honoured(scripted):
    path = "/v2/emailmarketing/campaigns/1/tracking/reports/summary"
    scripted.add(path, 429, [{"error_key": "throttled", "error_message": "slow down"}], {"Retry-After": "0.05"})
    scripted.add(path, 503, b"<html>gateway</html>")
    summary = {"sends": 1, "opens": 0, "clicks": 0, "forwards": 0, "unsubscribes": 0, "bounces": 0}
    scripted.add(path, 200, summary)
    assert ConstantContactHook().get_campaign_summary(1) == summary
    assert len(scripted.seen) == 3


def test_a_400_shows_the_api_error(scripted):
    scripted.add("/v2/contacts/1/tracking/reports/summary", 400,
                 [{"error_key": "query.param.invalid", "error_message": "The date is wrong."}])
    with pytest.raises(ConstantContactError, match=r"HTTP 400 query.param.invalid: The date is wrong") as info:
        ConstantContactHook().get_contact_summary(1)
    assert info.value.status == 400 and len(scripted.seen) == 1


def _fixture(name: str) -> Any:
    return json.loads(next(FIXTURES.rglob(name)).read_text())


PAGED_FIXTURES = sorted(p.name for p in FIXTURES.rglob("*.json")
                        if '"results"' in p.read_text() and "contacts_no_next" not in p.name)


@pytest.mark.parametrize("name", PAGED_FIXTURES)
def test_every_sdk_fixture_parses(scripted, name):
    body = _fixture(name)
    link = body["meta"]["pagination"]["next_link"]
    path, _, token = link.partition("?")
    scripted.add("/v2/first", 200, body)
    scripted.add(link, 200, {"meta": {"pagination": {}}, "results": []})
    hook = ConstantContactHook()
    stream = hook._stream("/v2/first", {"limit": 500}, label="fixture", window=None, report=None)
    got = list(stream)
    assert stream.pages == 2 and len(got) == len(body["results"])
    assert scripted.seen[1].startswith(path + "?") and token in scripted.seen[1]
    for record in got:
        assert all(isinstance(record[k], str) for k in ("campaign_id", "contact_id", "link_id", "id") if k in record)


def test_summary_fixtures_parse(scripted):
    for name in ("get_summary.json", "campaign_tracking_summary_response.json",
                 "contact_tracking_summary_response.json"):
        scripted.add("/v2/emailmarketing/campaigns/5/tracking/reports/summary", 200, _fixture(name))
        assert ConstantContactHook().get_campaign_summary(5)["sends"] == 15
    campaign = _fixture("email_campaign_response.json")  # the campaign asked for is the fixture's
    scripted.add(f"/v2/emailmarketing/campaigns/{campaign['id']}", 200, campaign)
    assert ConstantContactHook().get_campaign(campaign["id"])["status"] == "SENT"


def test_the_empty_pagination_object_ends_paging(scripted):
    scripted.add("/v2/emailmarketing/campaigns", 200, _fixture("get_contacts_no_next.json"))
    stream = ConstantContactHook().iter_campaigns()
    assert [r["id"] for r in stream] == ["230", "231"] and stream.pages == 1


def test_test_connection(emulator, monkeypatch):
    assert ConstantContactHook().test_connection() == (True, "Connection to Constant Contact succeeded.")
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emulator.connection_json(requests_per_second=0)
                       .replace(emulator.token, "nope"))
    ok, message = ConstantContactHook().test_connection()
    assert not ok and "authentication failed" in message


def test_throttle_keeps_under_the_emulated_limit(monkeypatch):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=1, activities=60), FaultConfig(qps=4),
                         requests_per_second=4, max_retries=0)
    try:
        stream = ConstantContactHook().iter_campaign_tracking(emu.campaign_ids()[0], "sends", limit=6)
        assert len(list(stream)) == 60 and stream.pages == 10
    finally:
        emu.stop()
    assert emu.statuses == {200: 10}, "no request was throttled"


def test_hook_init_does_no_io(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", raising=False)
    hook = ConstantContactHook("missing_conn")
    assert hook.constant_contact_conn_id == "missing_conn" and "settings" not in hook.__dict__


def test_every_request_carries_the_credentials_and_identifies_the_provider(scripted):
    from airflow_provider_cc import __version__

    scripted.add("/v2/emailmarketing/campaigns/1/tracking/opens", 200, {
        "meta": {"pagination": {"next_link": "/v2/emailmarketing/campaigns/1/tracking/opens?next=abc"}},
        "results": []})
    scripted.add("/v2/emailmarketing/campaigns/1/tracking/opens?next=abc", 200,
                 {"meta": {"pagination": {}}, "results": []})
    list(ConstantContactHook().iter_campaign_tracking(1, "opens"))
    assert len(scripted.seen) == 2 and all("api_key=scripted-key" in path for path in scripted.seen)
    for headers in scripted.headers:
        assert headers["Authorization"] == "Bearer scripted-token"
        assert headers["Accept"] == "application/json"
        assert headers["User-Agent"] == f"airflow-provider-constant-contact/{__version__}"


def test_secrets_are_registered_with_airflow_s_masker(emulator):
    from importlib import import_module

    for where in ("airflow.sdk._shared.secrets_masker.secrets_masker", "airflow.sdk.execution_time.secrets_masker",
                  "airflow.utils.log.secrets_masker"):
        try:
            redact = import_module(where).redact
            break
        except ImportError:
            continue
    ConstantContactHook().settings  # noqa: B018  (reading the connection registers the masks)
    text = f"key={emulator.api_key} token={emulator.token}"
    assert emulator.api_key not in redact(text) and emulator.token not in redact(text)


def test_one_progress_line_per_page_at_debug(emulator, caplog):
    caplog.set_level(logging.DEBUG, logger="airflow_provider_cc.hooks.paging")
    stream = ConstantContactHook().iter_campaign_tracking(emulator.campaign_ids()[0], "sends", limit=40)
    list(stream)
    lines = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_cc.hooks.paging"]
    assert len(lines) == stream.pages == 4
    assert lines[-1].startswith(f"campaign {emulator.campaign_ids()[0]} sends: page 4, 150 records so far, ")
    assert lines[-1].endswith("records/s") and "contact" not in lines[-1]
    # Page lines are DEBUG: an account run of thousands of pages logs one INFO line per unit instead.
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "airflow_provider_cc.hooks.paging"
               and "records so far" in r.getMessage())
