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


def test_a_campaign_answer_for_another_campaign_is_retried_then_fails(hostile):
    other = {**CAMPAIGN, "id": "8"}
    answers = [other, {**CAMPAIGN, "id": "fault-bad-id"}, CAMPAIGN]
    hostile.respond = lambda h, n: h.answer(200, answers[min(n, 3) - 1])
    assert ConstantContactHook().get_campaign(7) == CAMPAIGN
    hostile.seen.clear()
    hostile.respond = lambda h, n: h.answer(200, other)
    with pytest.raises(ConstantContactResponseError, match="campaign 7: .*id is another campaign's \\(a string\\)"):
        ConstantContactHook().get_campaign(7)


def test_a_campaign_answer_names_the_campaign_asked_for_and_its_status_in_upper_case(hostile):
    """What the sensor hands downstream is the same whatever case the status came in, whether or not the
    answer repeated the id."""
    body = {k: v for k, v in CAMPAIGN.items() if k != "id"}
    hostile.respond = lambda h, n: h.answer(200, {**body, "status": "Sent "})
    assert ConstantContactHook().get_campaign("007") == CAMPAIGN


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


# ---- v3 campaign answers ------------------------------------------------------------------------------------
CID, PRIMARY, RESEND, PERMALINK = (f"{n:08x}-0000-4000-8000-000000000000" for n in range(4))
V3_CAMPAIGN = {"campaign_id": CID, "current_status": "Done", "name": "n", "campaign_activities": [
    {"campaign_activity_id": PRIMARY, "role": "primary_email"},
    {"campaign_activity_id": PERMALINK, "role": "permalink"}, {"campaign_activity_id": RESEND, "role": "resend"}]}


def _without(key):
    return {k: v for k, v in V3_CAMPAIGN.items() if k != key}


def _activities(*entries):
    return {**V3_CAMPAIGN, "campaign_activities": list(entries)}


@pytest.mark.parametrize(("bad", "words"), [
    ([], "expected a campaign object, got an array"),
    (None, "expected a campaign object, got null"),
    ("Done", "expected a campaign object, got a string"),
    (_without("campaign_activities"), "campaign_activities is null \\(missing\\)"),
    ({**V3_CAMPAIGN, "campaign_activities": {"x": 1}}, "campaign_activities is an object, not an array"),
    (_activities(), "campaign_activities holds 0 primary_email activities, not one"),
    (_activities({"campaign_activity_id": RESEND, "role": "resend"}), "holds 0 primary_email activities"),
    (_activities({"campaign_activity_id": PRIMARY}), "campaign_activities\\[1\\].role is null \\(missing\\)"),
    (_activities({"campaign_activity_id": PRIMARY, "role": "main"}), "role 'main' is none of primary_email, permalink"),
    (_activities({"campaign_activity_id": "../../../x", "role": "primary_email"}),
     "campaign_activities\\[1\\].campaign_activity_id is not a v3 id \\(a string\\)"),
    (_activities({"role": "primary_email"}), "campaign_activity_id is not a v3 id \\(missing\\)"),
    (_activities(7), "campaign_activities\\[1\\] is a number, not an object"),
    (_activities({"campaign_activity_id": PRIMARY, "role": "primary_email"},
                 {"campaign_activity_id": RESEND, "role": "primary_email"}), "holds 2 primary_email activities"),
    (_activities({"campaign_activity_id": PRIMARY, "role": "primary_email"},
                 {"campaign_activity_id": PRIMARY, "role": "resend"}),
     f"{PRIMARY} is listed twice, as primary_email and as resend"),
    (_without("current_status"), "current_status is null \\(missing\\)"),
    ({**V3_CAMPAIGN, "current_status": "Sent"}, "current_status 'Sent' is none of draft, scheduled"),
    ({**V3_CAMPAIGN, "campaign_id": RESEND}, "campaign_id is another campaign's"),
])
def test_a_v3_campaign_answer_that_cannot_be_relied_on_is_refused(bad, words):
    from airflow_provider_cc.hooks.campaigns import check_v3_campaign
    from airflow_provider_cc.hooks.transport import ResponseShapeError

    with pytest.raises(ResponseShapeError, match=words):
        check_v3_campaign(bad, CID)


def test_a_v3_campaign_answer_is_read_in_any_letter_case_and_an_activity_listed_twice_once():
    from airflow_provider_cc.hooks.campaigns import check_v3_campaign

    body = {**V3_CAMPAIGN, "current_status": "DONE", "campaign_activities": [
        {"campaign_activity_id": PRIMARY.upper(), "role": "PRIMARY_EMAIL", "document_id": "9"},
        {"campaign_activity_id": RESEND, "role": "Resend"}, {"campaign_activity_id": RESEND, "role": "resend"}]}
    checked = check_v3_campaign(body, CID)
    assert checked["campaign_activities"] == [
        {"campaign_activity_id": PRIMARY, "role": "primary_email", "document_id": "9"},
        {"campaign_activity_id": RESEND, "role": "resend"}]
    assert checked["current_status"] == "DONE", "kept as sent, compared in lower case"


@pytest.mark.parametrize(("bad", "sent", "words"), [
    ({}, False, "expected an array of sends, got an object"),
    ([{"run_date": "2024-01-01T00:00:00.000Z"}], False, "send 1: send_status is null \\(missing\\)"),
    ([{"send_status": "COMPLETED"}], False, "send 1: run_date is null that is not a date \\(missing\\)"),
    ([{"send_status": "COMPLETED", "run_date": "soon"}], False, "run_date is a string that is not a date"),
    ([{"send_status": "SENT", "run_date": "2024-01-01T00:00:00.000Z"}], False, "'SENT' is none of completed"),
    ([], True, "it holds no COMPLETED send, though its campaign was sent"),
    ([{"send_status": "errored"}], True, "no COMPLETED send"),
])
def test_a_send_history_that_cannot_be_relied_on_is_refused(bad, sent, words):
    from airflow_provider_cc.hooks.campaigns import check_send_history
    from airflow_provider_cc.hooks.transport import ResponseShapeError

    with pytest.raises(ResponseShapeError, match=words):
        check_send_history(bad, sent=sent)
    assert check_send_history([{"send_status": "Completed", "run_date": "2024-01-01T00:00:00.000Z"}], sent=True
                              )[0]["send_status"] == "COMPLETED"


@pytest.mark.parametrize(("change", "words"), [
    (lambda b: [], "expected a campaign object, got an array"),
    (lambda b: None, "expected a campaign object, got null"),
    (lambda b: {k: v for k, v in b.items() if k != "campaign_activities"}, "campaign_activities is null \\(missing\\)"),
    (lambda b: {**b, "campaign_activities": [{"campaign_activity_id": "../../../x", "role": "primary_email"}]},
     "campaign_activity_id is not a v3 id"),
])
def test_a_v3_campaign_answer_of_the_wrong_shape_is_retried_then_fails_naming_campaign_and_field(v3, change, words):
    """Over real HTTP: twice malformed, then correct: the correct answer is used; malformed for good: a
    response error (retried by Airflow, never an input error) naming the campaign and the field."""
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
    from tests.v3_answers import Rewrite

    cid = next(iter(v3.v3.view.campaigns))
    Rewrite(v3, "get_campaign", change, times=2)
    assert ConstantContactV3Hook(max_retries=2).get_campaign(cid)["campaign_id"] == cid
    assert sum(p == f"/v3/emails/{cid}" for p, _ in v3.requests) == 3
    Rewrite(v3, "get_campaign", change, times=-1)
    with pytest.raises(ConstantContactResponseError, match=f"campaign {cid}: .*{words}.*gave up after 3 attempts"):
        ConstantContactV3Hook(max_retries=2).get_campaign(cid)


@pytest.mark.parametrize(("bad", "words"), [
    ([], "expected a campaign activity object, got an array"),
    ({"role": "primary_email", "current_status": "DONE"}, "campaign_id is not a v3 id \\(missing\\)"),
    ({"campaign_id": CID, "role": "main", "current_status": "DONE"}, "role 'main' is none of"),
    ({"campaign_id": CID, "role": "resend"}, "current_status is null \\(missing\\)"),
    ({"campaign_id": CID, "role": "resend", "current_status": "DONE", "campaign_activity_id": PRIMARY},
     "campaign_activity_id is another activity's"),
])
def test_a_v3_campaign_activity_answer_that_cannot_be_relied_on_is_refused(bad, words):
    from airflow_provider_cc.hooks.campaigns import check_v3_activity
    from airflow_provider_cc.hooks.transport import ResponseShapeError

    with pytest.raises(ResponseShapeError, match=words):
        check_v3_activity(bad, RESEND)
    good = check_v3_activity({"campaign_id": CID.upper(), "role": "RESEND", "current_status": "DONE"}, RESEND)
    assert (good["campaign_id"], good["role"], good["current_status"]) == (CID, "resend", "DONE")
    assert good["campaign_activity_id"] == RESEND, "an answer without its id: the id asked for"


@pytest.mark.parametrize(("item", "words"), [
    ({"current_status": "Done"}, "campaign list item 1: campaign_id is not a v3 id \\(missing\\)"),
    ({"campaign_id": "fault-bad-id", "current_status": "Done"}, "campaign_id is not a v3 id \\(a string\\)"),
    ({"campaign_id": CID, "current_status": "FAULT"}, "campaign list item 1: current_status 'FAULT' is none of"),
    ({"campaign_id": CID}, "current_status is null \\(missing\\)"),
])
def test_a_v3_campaign_list_item_that_cannot_be_relied_on_is_retried_then_fails(v3, item, words):
    """An item left out would be a campaign missing from the list, as if it were in another status."""
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
    from tests.v3_answers import Rewrite

    listed = sorted(c["campaign_id"] for c in ConstantContactV3Hook(max_retries=2).iter_campaigns())

    def change(body):
        return {**body, "campaigns": [item, *body["campaigns"][1:]]}

    Rewrite(v3, "list_campaigns", change, times=2)
    assert sorted(c["campaign_id"] for c in ConstantContactV3Hook(max_retries=2).iter_campaigns()) == listed
    Rewrite(v3, "list_campaigns", change, times=-1)
    with pytest.raises(ConstantContactResponseError, match=f"campaigns .*{words}.*gave up after 3 attempts"):
        list(ConstantContactV3Hook(max_retries=2).iter_campaigns())


@pytest.mark.parametrize(("bad", "words"), [
    ({**CAMPAIGN, "click_through_details": {"url_uid": "1"}}, "click_through_details is an object, not an array"),
    ({**CAMPAIGN, "click_through_details": [{"url": "https://x"}]}, "click_through_details\\[1\\] has no usable "
                                                                     "url_uid"),
    ({**CAMPAIGN, "click_through_details": ["1"]}, "click_through_details\\[1\\] has no usable url_uid"),
])
def test_a_campaign_answer_with_links_that_cannot_be_relied_on_is_retried_then_fails(hostile, bad, words):
    good = {**CAMPAIGN, "click_through_details": [{"url": "https://x", "url_uid": " 0012", "click_count": 1}]}
    answers = [bad, good]
    hostile.respond = lambda h, n: h.answer(200, answers[min(n, 2) - 1])
    assert ConstantContactHook().get_campaign(7)["click_through_details"][0]["url_uid"] == "12", "canonical id"
    hostile.seen.clear()
    hostile.respond = lambda h, n: h.answer(200, bad)
    with pytest.raises(ConstantContactResponseError, match=f"campaign 7: .*{words}.*gave up after 3 attempts"):
        ConstantContactHook().get_campaign(7)


@pytest.mark.parametrize(("bad", "words"), [
    ([], "expected a links object, got an array"),
    ({}, "link_click_counts is null \\(missing\\)"),
    ({"link_click_counts": [1]}, "link_click_counts\\[1\\] is a number, not an object"),
    ({"link_click_counts": [{"link_url": "u"}]}, "link_click_counts\\[1\\] has no usable url_id"),
    ({"link_click_counts": [{"url_id": "3", "unique_clicks": "2"}]}, "unique_clicks is a string, not a count"),
])
def test_a_v3_links_answer_that_cannot_be_relied_on_is_refused(bad, words):
    from airflow_provider_cc.hooks.campaigns import check_v3_links
    from airflow_provider_cc.hooks.transport import ResponseShapeError

    with pytest.raises(ResponseShapeError, match=words):
        check_v3_links(bad)
    good = check_v3_links({"link_click_counts": [{"url_id": 3, "link_url": "u", "unique_clicks": 2}]})
    assert good["link_click_counts"] == [{"url_id": "3", "link_url": "u", "unique_clicks": 2}]


def test_a_v3_links_answer_of_the_wrong_shape_is_retried_then_fails_naming_the_activity(v3):
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
    from tests.v3_answers import Rewrite

    aid = v3.v3_activity_ids()[0]
    change = lambda b: {**b, "link_click_counts": None}  # noqa: E731
    Rewrite(v3, "links", change, times=2)
    assert ConstantContactV3Hook(max_retries=2).get_activity_links(aid)["campaign_activity_id"] == aid
    Rewrite(v3, "links", change, times=-1)
    with pytest.raises(ConstantContactResponseError, match=f"activity {aid} links: .*link_click_counts is null.*"
                                                           "gave up after 3 attempts"):
        ConstantContactV3Hook(max_retries=2).get_activity_links(aid)


@pytest.mark.parametrize(("bad", "words"), [
    ("{}", "expected a stats object with results, got a string"),
    ({"results": {}}, "results is an object, not an array of objects"),
    ({"results": [1]}, "results is an array, not an array of objects"),
    ({"results": [{"stats": {}}]}, "results\\[1\\].campaign_activity_id is not a v3 id \\(missing\\)"),
    ({"results": [{"campaign_activity_id": PRIMARY, "stats": None}]}, "results\\[1\\].stats is null, not an object"),
])
def test_an_activity_stats_answer_that_cannot_be_relied_on_is_refused(bad, words):
    from airflow_provider_cc.hooks.summaries import check_v3_stats
    from airflow_provider_cc.hooks.transport import ResponseShapeError

    with pytest.raises(ResponseShapeError, match=words):
        check_v3_stats(bad, "campaign_activity_id")
    good = check_v3_stats({"results": [{"campaign_activity_id": PRIMARY.upper(), "stats": {"em_sends": 1}}],
                           "errors": []}, "campaign_activity_id")
    assert good["results"][0]["campaign_activity_id"] == PRIMARY
