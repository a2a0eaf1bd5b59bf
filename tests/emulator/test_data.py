"""The emulator's synthetic data: the default shape is unchanged, the realistic account decays after each send."""

from __future__ import annotations

from itertools import pairwise

import pytest
import requests

from airflow_provider_cc.emulator import DataConfig, Emulator
from airflow_provider_cc.emulator.data import DAY_MS, Dataset, text_to_ms
from airflow_provider_cc.reports import REPORTS

HOUR_MS = 3_600_000


def stamps(data: Dataset, cid: str, report: str) -> list[int]:
    campaign = data.campaigns[cid]
    view = data.campaign_view(campaign, REPORTS[report])
    return [data.timestamp(campaign, REPORTS[report], i) for i in range(view.size)]


@pytest.fixture(scope="module")
def account() -> Dataset:
    return Dataset(DataConfig.realistic(weeks=104, activities=400))


def test_default_shape_is_unchanged():
    data = Dataset(DataConfig())
    first = data.campaigns["1100394165000"]
    assert (first.status, first.run_ms) == ("SENT", text_to_ms("2024-01-01T00:00:00Z"))
    assert [data.count(first, r) for r in REPORTS.values()] == [100, 60, 30, 5, 2, 3]
    view = data.campaign_view(first, REPORTS["opens"])
    assert data.record(view, 0)["open_date"] == "2024-01-03T23:59:59.999Z"
    assert data.record(view, 59)["open_date"] == "2024-01-01T01:11:59.999Z"
    assert data.campaigns["1100394165001"].run_ms - first.run_ms == 600_000


def test_realistic_account_sends_weekly_for_two_years(account):
    sent = [c for c in account.campaigns.values() if c.status == "SENT"]
    assert len(sent) == 104
    assert {b.run_ms - a.run_ms for a, b in pairwise(sent)} == {7 * DAY_MS}
    assert account.end_ms - sent[0].run_ms == 728 * DAY_MS
    assert {c.status for c in account.campaigns.values()} == {"SENT", "DRAFT", "SCHEDULED", "DELETED"}


def test_realistic_activity_is_newest_first_and_decays_after_each_send(account):
    old, recent = "1100394165010", "1100394165103"
    for cid in (old, recent):
        run = account.campaigns[cid].run_ms
        for report in REPORTS:
            times = stamps(account, cid, report)
            assert times == sorted(times, reverse=True), (cid, report)
            assert all(run <= t < account.end_ms for t in times), (cid, report)
    run = account.campaigns[old].run_ms
    assert all(t - run < 10 * 60_000 for t in stamps(account, old, "sends"))
    bounces = stamps(account, old, "bounces")
    assert sum(t - run < 6 * HOUR_MS for t in bounces) >= 0.9 * len(bounces)
    opens = stamps(account, old, "opens")
    assert sum(t - run < 3 * DAY_MS for t in opens) > 0.7 * len(opens), "most opens in the first days"
    assert sum(t - run > 30 * DAY_MS for t in opens) > 0, "and a long tail"
    # A campaign sent a week before the end has had less of its eventual activity than a two-year-old one.
    assert len(stamps(account, recent, "opens")) < len(opens)


def test_realistic_forwards_only_where_a_campaign_has_the_link(account):
    counts = [account.count(c, REPORTS["forwards"]) for c in account.campaigns.values() if c.status == "SENT"]
    assert sum(n == 0 for n in counts) == 69 and all(n > 0 for n in counts[::3])


def test_realistic_summaries_count_the_records(account):
    for cid in ("1100394165000", "1100394165050"):
        campaign = account.campaigns[cid]
        assert account.campaign_object(campaign)["tracking_summary"] == {
            **{r.summary_key: len(stamps(account, cid, r.name)) for r in REPORTS.values()}, "spam_count": 0}


def test_realistic_account_over_http_created_since_is_exact():
    with Emulator(DataConfig.realistic(weeks=10, activities=300)) as emu:
        cid = emu.campaign_ids()[2]
        everything = emu.records(cid, "opens")
        since = everything[len(everything) // 3]["open_date"]
        served = requests.get(f"{emu.url}/v2/emailmarketing/campaigns/{cid}/tracking/opens",
                              params={"api_key": emu.api_key, "created_since": since},
                              headers={"Authorization": f"Bearer {emu.token}"}, timeout=10).json()["results"]
        assert served == [r for r in everything if r["open_date"] >= since]
        assert emu.records(cid, "opens", created_since=since) == served


def test_realistic_data_is_deterministic_and_seeded():
    a, b = Dataset(DataConfig.realistic(weeks=5)), Dataset(DataConfig.realistic(weeks=5))
    c = Dataset(DataConfig.realistic(weeks=5, seed=2))
    view = a.campaign_view(a.campaigns["1100394165001"], REPORTS["clicks"])
    rows = a.records(view, 0, view.size)
    assert rows == b.records(view, 0, view.size) and rows != c.records(view, 0, view.size)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="activity='exponential'"):
        Dataset(DataConfig(activity="exponential"))
    with pytest.raises(ValueError, match="do not fit"):
        Dataset(DataConfig(campaigns=10, days=30, send_interval_days=7))


def test_a_realistic_account_lists_its_sent_campaigns_over_pages():
    with Emulator(DataConfig.realistic(weeks=60, activities=10)) as emu:
        url, ids, pages = f"{emu.url}/v2/emailmarketing/campaigns", [], 0
        params: dict[str, str] = {"api_key": emu.api_key, "status": "SENT"}
        while url:
            body = requests.get(url, params=params, headers={"Authorization": f"Bearer {emu.token}"}, timeout=10).json()
            ids += [c["id"] for c in body["results"]]
            assert {c["status"] for c in body["results"]} == {"SENT"}, f"page {pages + 1}"
            pages += 1
            link = body["meta"]["pagination"].get("next_link")
            url, params = (f"{emu.url}{link}" if link else ""), {"api_key": emu.api_key}
        assert pages == 2 and ids == emu.campaign_ids()[::-1], "newest send first"
