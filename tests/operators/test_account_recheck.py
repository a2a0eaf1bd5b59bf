"""Daily account runs whose cost follows activity, not the account's age: a horizon for the daily pulls, and
campaigns sent before it re-checked on a schedule (``recheck_every``), over real HTTP against an emulator whose
clock moves with the runs. Every record of an old campaign still reaches its day's file within the schedule,
byte for byte the file a full pull of that day writes."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest

from airflow_provider_cc.emulator import DataConfig
from airflow_provider_cc.exceptions import ConstantContactInputError
from tests.conftest import start_emulator
from tests.operators.test_account import data_files, pull

DAY = timedelta(days=1)
FIRST = pendulum.datetime(2022, 4, 4, 3, tz="UTC")  # 16 weekly campaigns from 2022-02-07; 8 sent by then
RUNS = 28
HORIZON, RECHECK = timedelta(days=14), timedelta(days=7)


def stamp(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def window(k: int) -> tuple[str, str]:
    return stamp(FIRST + DAY * k), stamp(FIRST + DAY * (k + 1))


def of_day(files: dict[str, bytes], k: int) -> dict[str, bytes]:
    since = (FIRST + DAY * k).strftime("%Y%m%dT%H%M%SZ")
    return {n: d for n, d in files.items() if n.rsplit("/", 1)[1].startswith(since + "_")}


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    """28 daily runs with a 14-day horizon and a 7-day re-check, each at 03:01 on the emulator's clock, beside
    the same 28 days pulled in full; requests of each."""
    monkeypatch = pytest.MonkeyPatch()
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=16, activities=300))
    root, full = tmp_path_factory.mktemp("recheck"), tmp_path_factory.mktemp("full")
    cost: dict[str, list[int]] = {"recheck": [], "full": []}
    try:
        for k in range(RUNS):
            since, before = window(k)
            emu.set_now(stamp(pendulum.parse(before) + timedelta(minutes=1)))
            for name, where, options in (("recheck", root, {"sent_within": HORIZON, "recheck_every": RECHECK}),
                                         ("full", full, {})):
                seen = len(emu.requests)
                pull(where, start=since, end=before, **options)
                cost[name].append(len(emu.requests) - seen)
        yield emu, root, full, cost
    finally:
        emu.stop()
        monkeypatch.undo()


def test_every_day_older_than_the_schedule_is_byte_identical_to_a_full_pull(account):
    emu, root, full, _ = account
    got, want = data_files(root), data_files(full)
    settled = [k for k in range(RUNS) if (RUNS - k) * DAY >= RECHECK]  # days at least 7 days before the last run
    assert settled and all(of_day(got, k) == of_day(want, k) for k in settled)
    old = {n for k in settled for n in of_day(want, k)
           if emu.dataset.campaigns[n.split("campaign_id=")[1].split("/")[0]].run_ms
           < (FIRST + DAY * k - HORIZON).int_timestamp * 1000}
    assert old, "old campaigns had late activity in those days, and it reached the files"
    # The last days: what is written is complete (a file is written only once its day is over and pulled).
    assert all(got[n] == want[n] for n in got)


def test_the_daily_cost_is_below_a_full_pull(account):
    _, _, _, cost = account
    steady = slice(RECHECK.days, None)  # after the first schedule period (every old campaign checked once)
    assert sum(cost["recheck"][steady]) < 0.6 * sum(cost["full"][steady]), cost


def test_a_cleared_day_is_pulled_completely_again(account, monkeypatch):
    emu, root, full, _ = account
    k = RUNS - 2  # a recent day, whose old campaigns' activity is not all in files yet
    since, before = window(k)
    emu.set_now(None)
    _, manifest = pull(root, start=since, end=before, sent_within=HORIZON, recheck_every=RECHECK)
    assert of_day(data_files(root), k) == of_day(data_files(full), k)
    assert not [s for s in manifest["skipped"] if s["reason"] in ("sent before the horizon", "no new activity")]


def test_recheck_every_needs_a_horizon_and_a_positive_timedelta(emulator, tmp_path):
    for kwargs, words in (({"recheck_every": RECHECK}, "give sent_within"),
                          ({"recheck_every": 7, "sent_within": HORIZON}, "recheck_every=7 must be a positive")):
        with pytest.raises(ConstantContactInputError, match=words):
            pull(tmp_path, **kwargs)
    assert emulator.requests == []
