"""The paging loop against hostile servers over real HTTP: pagination loops, answers without the v2 page
shape, and ids of every JSON type."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from functools import partial
from itertools import islice
from typing import Any

import pytest

from airflow_provider_cc.exceptions import (
    ConstantContactDataError,
    ConstantContactPagingError,
    ConstantContactResponseError,
)
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.hooks.paging import RecordStream, v3_page_parts
from airflow_provider_cc.window import Window, format_api, to_utc
from tests.hooks.conftest import PAGE_PATH, page, record

FIRST = f"{PAGE_PATH}?limit=500"


def serve_pages(hostile, pages: dict[str, Any]) -> None:
    """Answer each path-and-query (api_key aside) with its page."""

    def respond(h, n):
        path, _, query = h.path.partition("?")
        query = "&".join(p for p in query.split("&") if not p.startswith("api_key="))
        h.answer(*(200, pages[f"{path}?{query}"]) if f"{path}?{query}" in pages else (404, []))

    hostile.respond = respond


def take(stream: RecordStream, bound: int = 200) -> tuple[list[dict], Exception | None]:
    """Records until the stream ends or fails; a bounded read, so a loop the code misses cannot hang the test."""
    got: list[dict] = []
    try:
        got.extend(islice(stream, bound))
    except Exception as exc:  # the test inspects it
        return got, exc
    return got, None


# ---- loops ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "links",
    [
        {"A": "B", "B": "A"},  # A -> B -> A
        {"A": "B", "B": "C", "C": "B"},
        {"A": "FIRST"},  # back to page 1, its parameters in another order and encoding
        {"A": "A"},
    ],
)
def test_a_next_link_loop_fails_before_any_record_repeats(hostile, links):
    def link(name: str) -> str:
        return f"{PAGE_PATH}?created_since=2024-01-01T00%3A00%3A00.000Z&limit=500" if name == "FIRST" else \
            f"{PAGE_PATH}?next={name}"

    first = f"{PAGE_PATH}?limit=500&created_since=2024-01-01T00:00:00.000Z"
    pages = {first: page([record(contact_id=f"first-{i}") for i in range(3)], link("A"))}
    for name, target in links.items():
        pages[link(name)] = page([record(contact_id=f"{name}-{i}") for i in range(3)], link(target))
    serve_pages(hostile, {k.replace(":", "%3A"): v for k, v in pages.items()})
    stream = ConstantContactHook().iter_campaign_tracking(1, "sends", created_since="2024-01-01")
    got, error = take(stream)
    assert isinstance(error, ConstantContactPagingError), error
    assert "points back to a page already read" in str(error)
    ids = [r["contact_id"] for r in got]
    assert len(ids) == len(set(ids)), "no record was yielded twice"


def test_endless_distinct_links_stop_at_max_pages(hostile):
    # Bounded: after 50 pages the server ends the chain, so code that misses the loop ends too.
    hostile.respond = lambda h, n: h.answer(200, page([record(contact_id=str(n))],
                                                      f"{PAGE_PATH}?next={n}" if n < 50 else None))
    hook = ConstantContactHook()
    stream = RecordStream(hook.transport, hook.transport.resolve(PAGE_PATH, what="x"), {}, label="sends",
                          max_pages=7)
    got, error = take(stream, 100)
    assert isinstance(error, ConstantContactPagingError) and "after 7 pages" in str(error)
    assert len(got) == 7 and len(hostile.seen) == 7


def test_empty_pages_that_keep_pointing_onwards_stop(hostile):
    hostile.respond = lambda h, n: h.answer(200, page([], f"{PAGE_PATH}?next={n}" if n < 50 else None))
    _, error = take(ConstantContactHook().iter_campaign_tracking(1, "sends"))
    assert isinstance(error, ConstantContactPagingError) and "5 pages in a row without records" in str(error)
    assert len(hostile.seen) == 5


# ---- the v2 page shape ---------------------------------------------------------------------------------------------
NOT_A_PAGE = [
    ({}, "it has no results"),
    ({"status": "maintenance"}, "it has no results"),
    ({"meta": None, "results": []}, "meta is null"),
    ({"results": [record()]}, r"meta is null \(missing\)"),
    ({"meta": {"pagination": {}}, "results": "none today"}, "results is a string"),
    ({"meta": {"pagination": {}}, "results": None}, "results is null"),
    ({"meta": [], "results": []}, "meta is an array"),
    ({"meta": {"pagination": "none"}, "results": []}, "meta.pagination is a string"),
    ({"meta": {}, "results": []}, "meta.pagination is null"),
    ({"meta": {"pagination": {"next_link": 2}}, "results": []}, "next_link is a number"),
    ({"meta": {"pagination": {}}, "results": [1, "x"]}, "not records"),
    ([record()], "got an array"),
    ("maintenance", "got a string"),
    (None, "got null"),
]


@pytest.mark.parametrize(("body", "words"), NOT_A_PAGE)
def test_a_200_without_the_page_shape_is_retried_then_fails(hostile, body, words):
    hostile.respond = lambda h, n: h.answer(200, body)
    with pytest.raises(ConstantContactResponseError, match=f"not a v2 page .*{words}.*gave up after 3 attempts"):
        list(ConstantContactHook().iter_campaign_tracking(1, "sends"))
    assert len(hostile.seen) == 3


def test_a_maintenance_answer_then_the_real_page(hostile):
    answers = [{"status": "maintenance"}, page([record(contact_id="9")])]
    hostile.respond = lambda h, n: h.answer(200, answers[min(n, 2) - 1])
    assert list(ConstantContactHook().iter_campaign_tracking(1, "sends")) == [record(contact_id="9")]


def test_summary_by_campaign_stays_a_bare_array(hostile):
    rows = [{"campaign_id": 5, "contact_id": "1", "opens": 1, "clicks": 0, "forwards": 0, "bounces": 0}]
    hostile.respond = lambda h, n: h.answer(200, rows)
    assert ConstantContactHook().get_contact_summary_by_campaign(1) == [{**rows[0], "campaign_id": "5"}]


# ---- ids -------------------------------------------------------------------------------------------------------------
def test_ids_are_strings_on_mixed_pages(hostile):
    records = [record(campaign_id=1, contact_id="2"), record(campaign_id="3", contact_id=4, link_id=5.0),
               record(campaign_id=1100394165290.0, contact_id=7, id=8), record(campaign_id=9, contact_id=None)]
    hostile.respond = lambda h, n: h.answer(200, page(records))
    got = list(ConstantContactHook().iter_campaign_tracking(1, "sends"))
    assert [(r["campaign_id"], r["contact_id"], r.get("link_id"), r.get("id")) for r in got] == [
        ("1", "2", None, None), ("3", "4", "5", None), ("1100394165290", "7", None, "8"), ("9", None, None, None)]


@pytest.mark.parametrize(
    ("value", "words"),
    [(True, "True \\(true/false\\)"), (False, "False"), (1.5, "1.5 \\(a number\\)"), (float("nan"), "nan"),
     ({"id": 1}, ".* \\(an object\\)"), ([1], ".* \\(an array\\)")],
)
def test_an_id_that_is_not_an_id_fails_the_task(hostile, value, words):
    body = json.dumps(page([record(campaign_id="1", contact_id="2"), record(campaign_id="1", contact_id=value)]))
    hostile.respond = lambda h, n: h.answer(200, body.encode())
    with pytest.raises(ConstantContactDataError, match=f"campaign 1 sends: a record's contact_id is {words}"):
        list(ConstantContactHook().iter_campaign_tracking(1, "sends"))
    assert len(hostile.seen) == 1, "data errors are not retried: the same page comes back"


# ---- v3: newest-first streams without a time filter, and records out of order ---------------------------------------
V3_PATH = "/v3/reports/email_reports/11111111-1111-4111-8111-111111111111/tracking/opens"
DAY0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def day(n: int) -> str:
    return format_api(DAY0 + timedelta(days=n))


def v3_record(n: int, k: int) -> dict[str, Any]:
    """An open on day ``n`` (``k`` tells records of one day apart)."""
    return {"contact_id": f"00000000-0000-4000-8000-{n:06d}{k:06d}", "tracking_activity_type": "em_opens",
            "campaign_activity_id": "11111111-1111-4111-8111-111111111111", "created_time": day(n)}


def serve_v3(hostile, pages: list[list[dict[str, Any]]]) -> None:
    """Serve ``pages`` in turn: the first for the report's path, then ``?next=<n>``."""

    def respond(h, _):
        _, _, query = h.path.partition("?")
        n = int(query.split("next=")[1].split("&")[0]) if "next=" in query else 0
        links = {"next": {"href": f"{V3_PATH}?next={n + 1}"}} if n + 1 < len(pages) else {}
        h.answer(200, {"tracking_activities": pages[n], "_links": links})

    hostile.respond = respond


def v3_stream(start: int, end: int, limit: int = 5) -> RecordStream:
    """A newest-first v3 stream of opens for the window [day start, day end), as the v3 dialect makes it."""
    from airflow_provider_cc.reports import v3_report

    hook = ConstantContactHook()
    window = Window.of(day(start), day(end))
    return RecordStream(hook.transport, hook.transport.resolve(V3_PATH, what="opens"), {"limit": limit},
                        label="activity 1111 opens", window=window, report=v3_report("opens"),
                        page=partial(v3_page_parts, items="tracking_activities"), stop_before=window.start)


def chunks(records: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [records[i:i + size] for i in range(0, len(records), size)]


REPORT = [v3_record(n, 0) for n in range(40, 0, -1)]  # days 40 to 1, newest first


def in_window(records: list[dict[str, Any]], start: int, end: int) -> list[dict[str, Any]]:
    return [r for r in records if day(start) <= r["created_time"] < day(end)]


@pytest.mark.parametrize(("limit", "starts"), [(1, range(36, 40)), (5, range(26, 37)), (7, range(26, 37))])
def test_a_newest_first_report_costs_at_most_one_page_past_the_first_older_record(hostile, limit, starts):
    """The stream ends after two records older than the window's start: on the page of the first one, unless it
    is the last of its page (then one page more); the starts put the first older record at every place of a
    page."""
    for start in starts:
        serve_v3(hostile, chunks(REPORT, limit))
        before = len(hostile.seen)
        stream = v3_stream(start, 41, limit)
        got, error = take(stream)
        first_older = next(i for i, r in enumerate(REPORT) if r["created_time"] < day(start))
        lowest = first_older // limit + 1  # the page of the first older record: the old rule's cost
        assert error is None and got == in_window(REPORT, start, 41)
        assert len(hostile.seen) - before == stream.pages == min(
            (first_older + 1) // limit + 1, len(chunks(REPORT, limit))), start
        assert stream.pages - lowest <= 1 and stream.out_of_order == 0


@pytest.mark.parametrize("where", [0, 1, 3, 5])
def test_one_stray_older_record_on_page_one_does_not_end_the_report(hostile, caplog, where):
    """An open of day 1 listed among page 1's (at its start, middle, end): the window [day 10, day 35) is read
    whole, the stray counted and logged; the report is read down to the window's start as without it."""
    pages = chunks(REPORT, 5)
    pages[0] = [*pages[0][:where], v3_record(1, 1), *pages[0][where:]]
    serve_v3(hostile, pages)
    stream = v3_stream(10, 35)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_cc.hooks.paging"):
        got, error = take(stream)
    assert error is None and got == in_window(REPORT, 10, 35) and len(got) == 25
    assert stream.pages == 7, "down to the page of days 10 to 6, as without the stray"
    assert stream.out_of_order == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("activity 1111 opens: page " in w and "after an older record" in w for w in warnings), warnings
    assert any("1 records were listed after an older record" in w for w in warnings), warnings


def test_a_report_listed_oldest_first_is_read_to_its_end(hostile, caplog):
    """No page in newest-first order: the stream never ends early (each page holds records older than the start)."""
    serve_v3(hostile, chunks(REPORT[::-1], 5))
    stream = v3_stream(10, 35)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_cc.hooks.paging"):
        got, error = take(stream)
    assert error is None and sorted(r["created_time"] for r in got) == sorted(
        r["created_time"] for r in in_window(REPORT, 10, 35))
    assert stream.pages == 8 and stream.out_of_order == 39
    assert any("39 records were listed after an older record" in r.getMessage() for r in caplog.records)


def test_a_stray_record_through_the_v3_hook_against_the_emulator(monkeypatch, tmp_path):
    """The emulator's report through a proxy that lists one open of the account's first day on page 1: every open
    of the window comes through the v3 hook, and as many pages are read as without the stray."""
    from airflow_provider_cc.emulator import DataConfig
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
    from tests.conftest import FAST_RETRY, V3_CONN_ENV, Proxy, start_v3

    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig(campaigns=1, contacts=200, activities=150))
    aid = emu.v3_activity_ids()[0]
    served = emu.v3_records(aid, "opens")
    start, end = served[70]["created_time"], served[5]["created_time"]
    path = f"/v3/reports/email_reports/{aid}/tracking/opens"

    def stray(where: str, query: dict[str, str], status: int, body: Any) -> tuple[int, Any]:
        if where == path and "next" not in query and status == 200:
            records = list(body["tracking_activities"])
            records.insert(len(records) // 2, {**records[-1], "created_time": served[-1]["created_time"]})
            return status, {**body, "tracking_activities": records}
        return status, body

    proxy = Proxy(emu, stray).start()
    try:
        monkeypatch.setenv(V3_CONN_ENV, json.dumps({
            **emu.v3_connection(**{**FAST_RETRY, "oauth_store": str(tmp_path / "tokens")}), "host": proxy.url}))
        stream = ConstantContactV3Hook().iter_activity_tracking(aid, "opens", limit=20, window=Window.of(start, end),
                                                                stop_before=to_utc(start, "start"))
        got = list(stream)
    finally:
        proxy.stop()
        emu.stop()
    want = [r for r in served if start <= r["created_time"] < end]
    assert got == want and len(want) > 40
    first_older = next(i for i, r in enumerate(served) if r["created_time"] < start)
    assert stream.pages == (first_older + 1) // 20 + 1 and stream.out_of_order == 1
