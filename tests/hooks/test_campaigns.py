"""Campaign answers and list items, checked before they decide anything; one canonical form of an id."""

from __future__ import annotations

import json

import pytest

from airflow_provider_cc.exceptions import (
    ConstantContactDataError,
    ConstantContactInputError,
    ConstantContactResponseError,
)
from airflow_provider_cc.hooks.campaigns import canonical_id
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook, numeric_id
from tests.hooks.conftest import page, record

CAMPAIGN = {"id": "7", "name": "n", "status": "SENT", "created_date": "2024-01-01T00:00:00.000Z",
            "last_run_date": "2024-01-02T00:00:00.000Z", "tracking_summary": {"sends": 1}}


@pytest.mark.parametrize(("value", "text"), [(12, "12"), ("12", "12"), (" 12\n", "12"), ("0012", "12"),
                                             ("\u200312", "12"), ("0", "0"), ("000", "0")])
def test_ids_have_one_canonical_text(value, text):
    assert canonical_id(value) == text == numeric_id(value, "campaign_id")


@pytest.mark.parametrize("value", ["", " ", "12a", "-1", "+1", "1.0", "\u0661\u0662", True, 1.0, None, -3, [1]])
def test_what_is_not_an_id_is_refused(value):
    assert canonical_id(value) is None
    with pytest.raises(ConstantContactInputError, match="is not a numeric id"):
        numeric_id(value, "campaign_id")


@pytest.mark.parametrize(("bad", "words"), [
    ({"name": "n"}, "status is null \\(missing\\)"),
    ({**CAMPAIGN, "status": ""}, "status is a string"),
    ({**CAMPAIGN, "tracking_summary": [1]}, "tracking_summary is an array"),
    ({**CAMPAIGN, "last_run_date": "soon"}, "last_run_date is a string that is not a date"),
    ({**CAMPAIGN, "last_run_date": "2099-01-01T00:00:00.000Z"}, "last_run_date 2099-01-01T00:00:00.000Z is in the "
                                                                "future"),
    ({**CAMPAIGN, "last_run_date": "2023-01-01T00:00:00.000Z"}, "is before its created_date 2024-01-01"),
    ([CAMPAIGN], "expected a campaign object, got an array"),
])
def test_a_campaign_answer_that_cannot_be_relied_on_is_retried_then_fails(hostile, bad, words):
    answers = [bad, bad, CAMPAIGN]
    hostile.respond = lambda h, n: h.answer(200, answers[min(n, 3) - 1])
    assert ConstantContactHook().get_campaign(7) == CAMPAIGN, "the third, good answer is used"
    hostile.seen.clear()
    hostile.respond = lambda h, n: h.answer(200, bad)
    with pytest.raises(ConstantContactResponseError, match=f"campaign 7: .*{words}.*gave up after 3 attempts"):
        ConstantContactHook().get_campaign(7)


def test_the_sdk_campaign_fixtures_pass_the_check(hostile):
    from tests.conftest import FIXTURES

    for name in ("ruby-sdk/email_campaign_response.json", "php-sdk/get_campaign.json"):
        body = json.loads((FIXTURES / name).read_text())
        hostile.respond = lambda h, n, body=body: h.answer(200, body)
        assert ConstantContactHook().get_campaign(body["id"])["status"] == "SENT"


def test_listed_ids_are_canonical_and_a_bad_one_is_retried_then_fails(hostile):
    items = [{"id": 12, "status": "SENT"}, {"id": " 0013\n", "status": "SENT"}]
    hostile.respond = lambda h, n: h.answer(200, {"meta": {"pagination": {}}, "results": items})
    assert [c["id"] for c in ConstantContactHook().iter_campaigns(status="SENT")] == ["12", "13"]
    hostile.seen.clear()
    hostile.respond = lambda h, n: h.answer(200, {"meta": {"pagination": {}}, "results": [{"id": "x1"}]})
    with pytest.raises(ConstantContactResponseError, match="campaign list item 1 has no usable id \\(a string\\)"):
        list(ConstantContactHook().iter_campaigns(status="SENT"))
    assert len(hostile.seen) == 3


def test_an_integral_float_id_too_large_for_a_double_is_refused(hostile):
    body = json.dumps(page([record(campaign_id="1", contact_id=2.0**53), record(campaign_id="1", contact_id=2.0**60)]))
    hostile.respond = lambda h, n: h.answer(200, body.encode())
    with pytest.raises(ConstantContactDataError, match="a record's contact_id is 1.15.*not an id"):
        list(ConstantContactHook().iter_campaign_tracking(1, "sends"))
