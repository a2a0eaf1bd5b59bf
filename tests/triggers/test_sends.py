"""What one poll of the account's sent campaigns announces, over real HTTP against the emulator (v2 and v3): the
account's clock moves a send into the list, and each send is announced once, for one list page a poll."""

from __future__ import annotations

import pytest

from airflow_provider_cc.emulator import DataConfig, V3Options
from airflow_provider_cc.emulator.data import ms_to_text
from airflow_provider_cc.exceptions import ConstantContactError
from airflow_provider_cc.hooks.factory import hook_for
from airflow_provider_cc.triggers.sends import Account, Watermark, poll
from airflow_provider_cc.window import format_api, record_instant
from tests.conftest import start_emulator, start_proxy, start_v3

V2_LIST, V2_CAMPAIGN = "GET /v2/emailmarketing/campaigns", "GET /v2/emailmarketing/campaigns/{id}"
V3_SUMMARIES = "GET /v3/reports/summary_reports/email_campaign_summaries"
V3_CAMPAIGN = "GET /v3/emails/{id}"


def sends(emu, api):
    """``(campaign id, send time)`` of each sent campaign, oldest first, by the emulator's own data."""
    if api == "v2":
        found = [(c.id, c.run_ms) for c in emu.dataset.campaigns.values() if c.status == "SENT"]
    else:
        found = [(c.id, c.primary.run_ms) for c in emu.v3.view.campaigns.values() if c.primary.status == "SENT"]
    return [(cid, format_api(record_instant(ms_to_text(ms)))) for cid, ms in sorted(found, key=lambda x: x[1])]


@pytest.fixture(params=["v2", "v3"])
def world(request, monkeypatch, tmp_path):
    data = DataConfig(campaigns=4, contacts=20, activities=10)
    if request.param == "v2":
        emu = start_emulator(monkeypatch, data)
        conn = "constant_contact_default"
    else:
        emu = start_v3(monkeypatch, str(tmp_path / "tokens"), data, options=V3Options(resend_every=0))
        conn = "constant_contact_v3_default"
    yield emu, request.param, Account(hook_for(conn))
    emu.stop()


def requests_of(emu, *routes):
    served = emu.served
    return {r: served[r] for r in routes if served[r]}


def test_each_send_is_announced_once_for_one_list_page_a_poll(world):
    emu, api, account = world
    (_, t1), (second, t2), (third, t3), (fourth, t4) = sends(emu, api)
    emu.set_now(t1)  # only the first campaign is sent yet
    found, mark = poll(account, None)  # the first look announces nothing: its newest send is the floor
    assert found == [] and format_api(mark.floor) == t1
    emu.set_now(t2)
    emu.clear_served()
    found, mark = poll(account, mark)
    assert [(s.campaign_id, format_api(s.sent)) for s in found] == [(second, t2)]
    assert found[0].name and found[0].payload(api, "c") == {
        "campaign_id": second, "name": found[0].name, "sent": t2, "api": api, "constant_contact_conn_id": "c"}
    # a send costs the list page and one campaign request (v2: its send time; v3: its name)
    assert requests_of(emu, V2_LIST, V2_CAMPAIGN, V3_SUMMARIES, V3_CAMPAIGN) == (
        {V2_LIST: 1, V2_CAMPAIGN: 1} if api == "v2" else {V3_SUMMARIES: 1, V3_CAMPAIGN: 1})
    for _ in range(3):  # nothing new: nothing announced, one request a poll
        emu.clear_served()
        found, mark = poll(account, mark)
        assert found == [] and sum(emu.served.values()) == 1
    emu.set_now(None)  # two more sent between two polls: both, oldest first
    found, mark = poll(account, mark)
    assert [(s.campaign_id, format_api(s.sent)) for s in found] == [(third, t3), (fourth, t4)]
    assert poll(account, mark)[0] == []


def test_sent_after_announces_every_later_send_and_a_restored_watermark_nothing_again(world):
    emu, api, account = world
    everything = sends(emu, api)
    start = record_instant(everything[1][1])  # the second send is at the start: not after it
    found, mark = poll(account, Watermark(start))
    assert [(s.campaign_id, format_api(s.sent)) for s in found] == everything[2:]
    restored = Watermark.from_json(mark.as_json())  # as a re-created trigger reads it from the state store
    assert restored == mark
    assert poll(account, restored)[0] == []


def test_a_malformed_list_page_neither_announces_nor_passes_over_a_send(monkeypatch):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=3, contacts=20, activities=10))
    broken = {"on": False}

    def mutate(path, query, status, body):
        if broken["on"] and path == "/v2/emailmarketing/campaigns" and isinstance(body, dict):
            body = {**body, "results": [{**item, "id": None} for item in body["results"]]}  # items without ids
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        account = Account(hook_for("constant_contact_default"))
        (_, t1), (second, t2), _ = sends(emu, "v2")
        emu.set_now(t1)
        _, mark = poll(account, None)
        emu.set_now(t2)
        broken["on"] = True
        with pytest.raises(ConstantContactError, match="campaign list item 1 has no usable id"):
            poll(account, mark)
        broken["on"] = False
        found, _ = poll(account, mark)  # the same watermark: the send the bad page hid is announced now
        assert [s.campaign_id for s in found] == [second]
    finally:
        proxy.stop()
        emu.stop()


@pytest.mark.parametrize("document", [None, [], {"version": 2}, {"version": 1, "floor": "soon", "known": {}},
                                      {"version": 1, "floor": None, "known": {"1": 5}}])
def test_a_stored_watermark_that_is_not_one_is_refused(document):
    assert Watermark.from_json(document) is None


def test_a_v2_page_out_of_order_still_announces_a_send_listed_below_older_ones(monkeypatch):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=4, contacts=20, activities=10))

    def oldest_first(path, query, status, body):  # the docs promise newest first: trust no order on a page
        if path == "/v2/emailmarketing/campaigns" and isinstance(body, dict):
            body = {**body, "results": body["results"][::-1]}
        return status, body

    proxy = start_proxy(monkeypatch, emu, oldest_first)
    try:
        account = Account(hook_for("constant_contact_default"))
        everything = sends(emu, "v2")
        emu.set_now(everything[2][1])
        _, mark = poll(account, None)
        emu.set_now(None)  # the fourth is sent: listed last, below the three known ones
        found, _ = poll(account, mark)
        assert [(s.campaign_id, format_api(s.sent)) for s in found] == everything[3:]
    finally:
        proxy.stop()
        emu.stop()


def test_a_v2_campaign_gone_since_it_was_listed_is_asked_twice_then_left_out(monkeypatch):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=3, contacts=20, activities=10))
    (_, t1), (gone, _), (third, t3) = sends(emu, "v2")

    def deleted(path, query, status, body):  # listed as SENT, but its own request answers 404 every time
        if path == f"/v2/emailmarketing/campaigns/{gone}":
            return 404, [{"error_key": "http.status.not_found", "error_message": "not found"}]
        return status, body

    proxy = start_proxy(monkeypatch, emu, deleted)
    try:
        account = Account(hook_for("constant_contact_default"))
        found, mark = poll(account, Watermark(record_instant(t1)))
        assert [(s.campaign_id, format_api(s.sent)) for s in found] == [(third, t3)]
        assert proxy.asked(f"/v2/emailmarketing/campaigns/{gone}") == 2 and mark.known[gone] == ""
        assert poll(account, mark)[0] == [] and proxy.asked(f"/v2/emailmarketing/campaigns/{gone}") == 2
    finally:
        proxy.stop()
        emu.stop()


def test_a_v3_summary_row_without_a_send_time_is_malformed_and_decides_nothing(monkeypatch, tmp_path):
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig(campaigns=3, contacts=20, activities=10),
                   options=V3Options(resend_every=0))
    try:
        hook = ConstantContactV3Hook()
        account = Account(hook)
        real = hook.iter_campaign_summaries

        class Undated:  # the first row's last_sent_date dropped, as a page of a faulty server would have it
            def __init__(self, stream):
                self.stream = stream

            def batches(self):
                for batch in self.stream.batches():
                    yield [{**batch[0], "last_sent_date": None}, *batch[1:]]

        monkeypatch.setattr(hook, "iter_campaign_summaries", lambda **kw: Undated(real(**kw)))
        with pytest.raises(ConstantContactError, match="campaign summaries: campaign .* has no last_sent_date"):
            poll(account, Watermark(record_instant("2000-01-01T00:00:00Z")))
    finally:
        emu.stop()
