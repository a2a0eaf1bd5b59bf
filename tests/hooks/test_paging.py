"""The paging loop against hostile servers over real HTTP: pagination loops, answers without the v2 page
shape, and ids of every JSON type."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

import pytest

from airflow_provider_cc.exceptions import (
    ConstantContactDataError,
    ConstantContactPagingError,
    ConstantContactResponseError,
)
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.hooks.paging import RecordStream
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
    rows = [{"campaign_id": 5, "contact_id": "1", "opens": 1}]
    hostile.respond = lambda h, n: h.answer(200, rows)
    assert ConstantContactHook().get_contact_summary_by_campaign(1) == rows


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
