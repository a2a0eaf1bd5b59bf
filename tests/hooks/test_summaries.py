"""Counter answers (summaries, stats), checked before they are returned or added up: a malformed one is retried,
then fails naming the endpoint and the field; never a bare TypeError, never a count taken twice."""

from __future__ import annotations

import pytest

from airflow_provider_cc.exceptions import ConstantContactResponseError
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook

COUNTS = {"sends": 3, "opens": 2, "clicks": 1, "forwards": 0, "unsubscribes": 0, "bounces": 0}
ROW = {"campaign_id": "1100", "contact_id": "3", "opens": 1, "clicks": 0, "forwards": 0, "bounces": 0}


def _v2(hostile, answers, call):
    """``call(hook)`` against answers given in turn (the last repeated)."""
    hostile.respond = lambda h, n: h.answer(200, answers[min(n, len(answers)) - 1])
    return call(ConstantContactHook())


V2_CASES = [
    (lambda hook: hook.get_campaign_summary(7), COUNTS, "campaign 7", [
        (None, "expected a summary object, got null"),
        ("x", "expected a summary object, got a string"),
        ([], "expected a summary object, got an array"),
        ({}, "sends is null \\(missing\\)"),
        ({**COUNTS, "opens": -1}, "opens is a number, not a count"),
        ({**COUNTS, "clicks": True}, "clicks is true/false, not a count"),
    ]),
    (lambda hook: hook.get_contact_summary(3), {**COUNTS, "contact_id": "3"}, "contact 3", [
        ({}, "sends is null \\(missing\\)"),
        ({**COUNTS, "contact_id": "fault-bad-id"}, "contact_id is not the one asked for"),
        ({**COUNTS, "contact_id": "4"}, "contact_id is not the one asked for"),
    ]),
    (lambda hook: hook.get_contact_summary_by_campaign(3), [ROW], "contact 3", [
        (None, "expected an array of per-campaign summaries, got null"),
        ({}, "expected an array of per-campaign summaries, got an object"),
        ([ROW, ROW], "campaign 1100 is listed twice"),
        ([{**ROW, "campaign_id": "fault-bad-id"}], "row 1: campaign_id is not a numeric id \\(a string\\)"),
        ([{k: v for k, v in ROW.items() if k != "campaign_id"}], "campaign_id is not a numeric id \\(missing\\)"),
        ([{**ROW, "opens": "many"}], "row 1: opens is a string, not a count"),
        ([7], "row 1 is a number, not an object"),
    ]),
]


@pytest.mark.parametrize(("call", "good", "named", "bad", "words"),
                         [(c, g, n, b, w) for c, g, n, cases in V2_CASES for b, w in cases])
def test_a_v2_summary_that_cannot_be_relied_on_is_retried_then_fails(hostile, call, good, named, bad, words):
    assert _v2(hostile, [bad, bad, good], call) == good, "the third, good answer is used"
    hostile.seen.clear()
    with pytest.raises(ConstantContactResponseError, match=f"{named}: .*{words}.*gave up after 3 attempts"):
        _v2(hostile, [bad], call)


def test_a_v2_summary_without_its_ids_names_the_ones_asked_for_in_canonical_text(hostile):
    assert _v2(hostile, [COUNTS], lambda hook: hook.get_contact_summary(3)) == {**COUNTS, "contact_id": "3"}
    rows = _v2(hostile, [[{**ROW, "campaign_id": 1100, "opens": "2"}]],
               lambda hook: hook.get_contact_summary_by_campaign(3))
    assert rows == [{**ROW, "campaign_id": "1100", "opens": 2}]


@pytest.mark.parametrize(("route", "call"), [
    ("activity_stats", lambda hook, emu: hook.get_activity_stats([emu.v3_activity_ids()[0]])),
    ("campaign_stats", lambda hook, emu: hook.get_campaign_stats([next(iter(emu.v3.view.campaigns))])),
])
@pytest.mark.parametrize(("change", "words"), [
    (lambda body: "a string", "expected a stats object with results, got a string"),
    (lambda body: {**body, "results": {"x": 1}}, "results is an object, not an array of objects"),
    (lambda body: {**body, "results": [1]}, "results is an array, not an array of objects"),
    (lambda body: {**body, "errors": "x"}, "errors is a string, not an array"),
])
def test_a_v3_stats_answer_of_the_wrong_shape_is_retried_then_fails(v3, route, call, change, words):
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
    from tests.v3_answers import Rewrite

    good = call(ConstantContactV3Hook(max_retries=2), v3)
    Rewrite(v3, route, change, times=2)
    assert call(ConstantContactV3Hook(max_retries=2), v3) == good
    Rewrite(v3, route, change, times=-1)
    with pytest.raises(ConstantContactResponseError, match=f"stats .*{words}.*gave up after 3 attempts"):
        call(ConstantContactV3Hook(max_retries=2), v3)


RANGE = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")


def _summary(hook, emu):
    """A contact's activity summary over every send, and the contact (one with at least two rows)."""
    contact = emu.v3.view.contact_ids[3]
    rows = list(hook.iter_contact_activity_summary(contact, *RANGE))
    assert len(rows) >= 2
    return rows, contact


@pytest.mark.parametrize(("change", "words"), [
    (lambda rows: [*rows, rows[0]], "campaign activity [0-9a-f-]{36} is listed twice"),
    (lambda rows: [{**rows[0], "campaign_activity_id": "x"}, *rows[1:]], "row 1: campaign_activity_id is not a v3 id"),
    (lambda rows: [{**rows[0], "em_opens": None}, *rows[1:]], "row 1: em_opens is null, not a count"),
])
def test_a_v3_contact_activity_summary_row_twice_or_malformed_is_retried_then_fails(v3, change, words):
    """A row listed twice would have its counts added twice."""
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
    from tests.v3_answers import Rewrite

    good, contact = _summary(ConstantContactV3Hook(max_retries=2), v3)

    def rewrite(body):
        return {**body, "campaign_activities": change(body["campaign_activities"])}

    Rewrite(v3, "contact_summary", rewrite, times=2)
    hook = ConstantContactV3Hook(max_retries=2)
    assert list(hook.iter_contact_activity_summary(contact, *RANGE)) == good
    Rewrite(v3, "contact_summary", rewrite, times=-1)
    with pytest.raises(ConstantContactResponseError, match=f"contact {contact} activity summary.*{words}.*gave up"):
        list(hook.iter_contact_activity_summary(contact, *RANGE))
