"""Which units a window needs: skips, the send-time cache, the horizon and its order guard (no HTTP here)."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import timedelta

import pytest

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.campaign_state import SendTimes
from airflow_provider_cc.exceptions import ConstantContactNotFoundError
from airflow_provider_cc.selection import Listed, Selector
from airflow_provider_cc.window import Window, format_api

WINDOW = Window.of("2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z")
TOTALS = {"sends": 500, "opens": 900, "clicks": 1, "forwards": 0, "unsubscribes": 2, "bounces": 3}


def as_listed(ids):
    """Campaign ids as a list names them (lazily, as the listing reads its pages)."""
    return (Listed(cid) for cid in ids)


def campaign(days_before_end: float, **changes) -> dict:
    """A SENT campaign sent this many days before the window's end (negative: after it)."""
    assert WINDOW.end is not None
    sent = WINDOW.end - timedelta(days=days_before_end)
    return {"status": "SENT", "last_run_date": format_api(sent), "tracking_summary": TOTALS, **changes}


class Account:
    """Campaign objects by id; ``fetch`` answers like the campaign request, and counts."""

    def __init__(self, campaigns: dict[str, dict]) -> None:
        self.campaigns = campaigns
        self.asked: list[str] = []

    def fetch(self, cid: str) -> Future:
        self.asked.append(cid)
        future: Future = Future()
        if cid in self.campaigns:
            future.set_result(self.campaigns[cid])
        else:
            future.set_exception(ConstantContactNotFoundError(f"campaign {cid} was not found"))
        return future


def selector(account: Account, tmp_path, *, horizon_days: float | None = None, explicit: bool = False,
             done: tuple[str, ...] = (), lookahead: int = 1) -> Selector:
    assert WINDOW.start is not None
    within = None if horizon_days is None else timedelta(days=horizon_days)
    return Selector(window=WINDOW, horizon=None if within is None else WINDOW.start - within, sent_within=within,
                    reports=["sends", "opens", "forwards"], limit=500, lookahead=lookahead, done=set(done),
                    send_times=SendTimes(ObjectStoragePath(f"file://{tmp_path}/sent.json")).load(),
                    fetch=account.fetch, explicit=explicit)


def test_units_skips_and_the_estimate(tmp_path):
    account = Account({"1": campaign(-3), "2": campaign(1.5), "3": campaign(2, status="DRAFT")})
    chosen = selector(account, tmp_path)
    chosen.take(as_listed(["1", "2", "3", "404"]), ordered=True)
    picked = chosen.selection
    assert [(u.campaign_id, u.report) for u in picked.units] == [("2", "sends"), ("2", "opens")]
    assert [picked.estimate[u] for u in picked.units] == [1, 2], "⌈total / 500⌉"
    assert [(s["campaign_id"], s["reason"], s.get("report")) for s in picked.skipped] == [
        ("1", "sent after the window", None), ("2", "no activity", "forwards"), ("3", "not sent", None),
        ("404", "deleted", None)]
    assert chosen.send_times.get("1") is not None and chosen.send_times.get("3") is None, "SENT ones cached"


def test_cached_send_times_spare_the_campaign_request(tmp_path):
    account = Account({"1": campaign(-3), "2": campaign(0.5)})
    first = selector(account, tmp_path)
    first.take(as_listed(["1", "2"]), ordered=True)
    first.send_times.save()
    account.asked.clear()
    second = selector(account, tmp_path)
    second.take(as_listed(["1", "2"]), ordered=True)
    assert account.asked == ["2"], "campaign 1 is known to be sent after the window"


def test_the_horizon_ends_the_listing_after_three_older_campaigns_in_order(tmp_path):
    account = Account({str(k): campaign(k * 7) for k in range(10)})
    listed: list[str] = []

    def listing():
        for k in range(10):
            listed.append(str(k))
            yield str(k)

    chosen = selector(account, tmp_path, horizon_days=20)  # 0 is sent at the window's end, 1-3 within 21 days
    chosen.take(as_listed(listing()), ordered=True)
    assert {u.campaign_id for u in chosen.selection.units} == {"1", "2", "3"}
    assert account.asked == ["0", "1", "2", "3", "4", "5", "6"] and listed == account.asked, "listing stopped at 6"
    assert "were not looked at" in chosen.selection.skipped[-1]["detail"]


def test_a_list_out_of_order_is_read_to_the_end(tmp_path):
    order = ["9", "0", "1", "2", "3", "4", "5"]  # an old campaign first: not a reason to stop
    account = Account({str(k): campaign(k * 7) for k in range(10)})
    chosen = selector(account, tmp_path, horizon_days=20)
    chosen.take(as_listed(order), ordered=True)
    assert {u.campaign_id for u in chosen.selection.units} == {"1", "2", "3"} and account.asked == order


def test_explicit_ids_keep_going_past_the_horizon_and_refuse_unknown_ones(tmp_path):
    account = Account({str(k): campaign(k * 7) for k in range(6)})
    chosen = selector(account, tmp_path, horizon_days=10, explicit=True)
    chosen.take(as_listed(["5", "4", "1"]), ordered=False)
    assert {u.campaign_id for u in chosen.selection.units} == {"1"} and account.asked == ["5", "4", "1"]
    with pytest.raises(ConstantContactNotFoundError, match="campaign 77 of campaign_ids was not found"):
        selector(account, tmp_path, explicit=True).take(as_listed(["77"]), ordered=False)


def test_units_committed_by_an_earlier_try_are_not_asked_about(tmp_path):
    account = Account({"2": campaign(0.5)})
    chosen = selector(account, tmp_path, done=("2/sends", "2/opens", "2/forwards"))
    chosen.take(as_listed(["2"]), ordered=True)
    assert account.asked == [] and len(chosen.selection.resumed) == 3 and not chosen.selection.units
