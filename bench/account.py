"""Account scale: what a whole account costs in requests, wall time and task instances, side by side.

On the emulator's realistic account (one campaign a week for two years, activity decaying after each send),
served from its own process:

* **History load** of the account's first year into daily partitions: (a) the account operator in one pass,
  measured against an emulator enforcing 4 requests/s with added latency; (b) the per-campaign mapped
  pattern (list, then 6 tasks per SENT campaign) run for every day, computed exactly from the emulator's
  data, the formula checked by really running the pattern for a few days (unthrottled) and comparing the
  emulator's request counts; (c) the lower bound, Σ over (campaign, report) of ⌈records since the window's
  start / 500⌉ over the campaigns sent before the window's end.
* **Steady state** (one daily run at the end of the account) and a **30-day catch-up**: the account operator
  without and with a horizon (measured, unthrottled, send times cached by earlier runs as in production)
  against the mapped pattern (computed).

    python bench/run.py --only account [--account-weeks 104] [--account-activities 2000] [--account-latency 0.3]

Registered in bench/run.py as the section ``account``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import API_KEY, TOKEN, connection, verdict

if TYPE_CHECKING:
    import argparse

NAME = "account"
START = "2022-02-07T15:00:00Z"  # the first send (a Monday); partitions are aligned to 03:00 UTC
DAY = timedelta(days=1)
PAGE = 500
LIST_PAGE = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account-weeks", type=int, default=104, help="campaigns, one sent each week")
    parser.add_argument("--account-activities", type=int, default=2000,
                        help="sends (contacts) per campaign (DataConfig.realistic()'s own)")
    parser.add_argument("--account-history-days", type=int, default=365, help="days of the history load")
    parser.add_argument("--account-latency", type=float, default=0.3, help="seconds the emulator adds, in (a)")
    parser.add_argument("--account-check-days", type=int, default=3, help="days the mapped pattern really runs")
    parser.add_argument("--account-horizon-days", type=int, default=90, help="sent_within of the horizon runs")
    parser.add_argument("--account-catchup-days", type=int, default=30, help="days of downtime caught up")


def smoke(args: argparse.Namespace) -> None:
    args.account_weeks, args.account_activities, args.account_history_days = 8, 60, 21
    args.account_latency, args.account_check_days = 0.02, 1
    args.account_horizon_days, args.account_catchup_days = 14, 3


# ---- the emulator, in its own process, with the realistic account ------------------------------------------------
class Emulator:
    """The realistic account served from a child process (the emulator CLI has no realistic-account flags)."""

    def __init__(self, data: dict[str, Any], faults: dict[str, Any] | None = None) -> None:
        spec = json.dumps({"data": data, "faults": faults or {}})
        self.proc = subprocess.Popen([sys.executable, __file__, "serve", spec], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def stats(self) -> dict[str, Any]:
        import requests

        return requests.get(self.url + "/_emulator/stats", timeout=10).json()

    def requests(self) -> int:
        return int(self.stats()["requests"])

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def serve(spec: str) -> None:
    from airflow_provider_cc.emulator import DataConfig, FaultConfig
    from airflow_provider_cc.emulator import Emulator as Server

    config = json.loads(spec)
    server = Server(DataConfig.realistic(**config["data"]), FaultConfig(**config["faults"]), api_key=API_KEY,
                    token=TOKEN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.url, flush=True)
    try:
        server.server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server.server_close()


# ---- the ways to pull --------------------------------------------------------------------------------------------
def account(url: str, root: Path, since: datetime, before: datetime, *, rps: float = 0, **kwargs: Any
            ) -> dict[str, Any]:
    """One account task for ``[since, before)``; returns its manifest."""
    os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = connection(url, rps)
    from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

    op = ConstantContactAccountTrackingOperator(task_id="account", destination=f"file://{root}/",
                                                created_since=since, created_before=before, **kwargs)
    return op.execute({})


def mapped_day(url: str, root: Path, since: datetime, before: datetime) -> int:
    """Today's per-campaign pattern for one day: list the SENT campaigns, then one task per campaign and report."""
    os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = connection(url, 0)
    from airflow_provider_cc.operators.tracking import (
        ConstantContactCampaignTrackingOperator,
        ConstantContactListCampaignsOperator,
    )
    from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES

    ids = ConstantContactListCampaignsOperator(task_id="list", status="SENT").execute({})
    for cid in ids:
        for report in CAMPAIGN_REPORT_NAMES:
            ConstantContactCampaignTrackingOperator(task_id="pull", campaign_id=cid, report=report,
                                                    destination=f"file://{root}/").execute(
                {"data_interval_start": since, "data_interval_end": before})
    return 1 + len(ids) * len(CAMPAIGN_REPORT_NAMES)


# ---- exact figures from the emulator's data ----------------------------------------------------------------------
def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def since_counts(data: Any, since: datetime) -> list[tuple[Any, int]]:
    """``(campaign, records since)`` for every SENT campaign and report."""
    from airflow_provider_cc.reports import ACTIVITY_REPORTS

    return [(c, data.stop_for(data.campaign_view(c, r), ms(since))) for c in data.campaigns.values()
            if c.status == "SENT" for r in ACTIVITY_REPORTS]


def mapped_requests(data: Any, since: datetime) -> int:
    """One day of the mapped pattern: the SENT list, then per campaign and report its pages (at least one) and,
    when the API sent no record at all, the campaign look-up that tells an empty report from an unsent campaign."""
    counts = since_counts(data, since)
    sent = len(counts) // 6
    return max(1, math.ceil(sent / LIST_PAGE)) + sum(max(1, math.ceil(n / PAGE)) + (n == 0) for _, n in counts)


def lower_bound(data: Any, since: datetime, before: datetime) -> int:
    """Σ ⌈records since the window's start / 500⌉ over the campaigns sent before the window's end."""
    return sum(math.ceil(n / PAGE) for c, n in since_counts(data, since) if c.run_ms < ms(before))


# ---- the section -------------------------------------------------------------------------------------------------
def section(args: argparse.Namespace, work: Path) -> str:
    from airflow_provider_cc.emulator import DataConfig
    from airflow_provider_cc.emulator.data import Dataset

    shape = {"weeks": args.account_weeks, "activities": args.account_activities}
    data = Dataset(DataConfig.realistic(**shape))
    sent = sum(c.status == "SENT" for c in data.campaigns.values())
    first = datetime.fromtimestamp(data.start_ms / 1000, tz=timezone.utc).replace(hour=3)
    last = datetime.fromtimestamp(data.end_ms / 1000, tz=timezone.utc).replace(hour=3)  # end of the last whole day
    h_since, h_before = first, first + DAY * args.account_history_days
    horizon = timedelta(days=args.account_horizon_days)
    tasks_per_day = 1 + 6 * sent

    # (a) the account operator, one pass, against 4 requests/s and latency.
    print("  account: history load, one pass at 4 requests/s...", flush=True)
    with Emulator(shape, {"qps": 4, "latency": args.account_latency}) as emu:
        started = time.perf_counter()
        a = account(emu.url, work / "history", h_since, h_before, rps=4, partition=DAY)
        a_seconds = time.perf_counter() - started
        a_statuses = emu.stats()["statuses"]
    a_requests = sum(a_statuses.values())
    assert a_requests == a["requests"], (a_requests, a["requests"])

    # (b) the mapped pattern: its formula checked against real runs, then computed for every day.
    print("  account: mapped pattern, checked on a few days...", flush=True)
    checked = []
    # One unthrottled emulator for the mapped pattern's check and the steady-state runs: each figure is the
    # difference of the emulator's request count before and after, and each scenario writes a root of its own.
    with Emulator(shape) as emu:
        for k in range(args.account_check_days):
            since = h_since + DAY * k
            before_count = emu.requests()
            tasks = mapped_day(emu.url, work / "mapped", since, since + DAY)
            measured = emu.requests() - before_count
            computed = mapped_requests(data, since)
            if measured != computed or tasks != tasks_per_day:
                raise AssertionError(f"mapped pattern on {since:%Y-%m-%d}: {measured} requests measured, {computed} "
                                     f"computed; {tasks} task instances, {tasks_per_day} computed")
            checked.append(measured)

        # Steady state and catch-up: unthrottled, each scenario on its own root with send times cached by an
        # earlier run, as a deployment has them.
        print("  account: steady state and catch-up...", flush=True)
        catch_since = last - DAY * args.account_catchup_days
        steady: dict[str, dict[str, int]] = {}
        catchup: dict[str, dict[str, int]] = {}
        for label, extra in (("no horizon", {}), (f"sent_within={args.account_horizon_days} days",
                                                  {"sent_within": horizon})):
            root = work / f"steady-{len(steady)}"
            account(emu.url, root, catch_since - DAY, catch_since, **extra)  # the last run before the downtime
            count = emu.requests()
            for k in range(args.account_catchup_days):
                account(emu.url, root, catch_since + DAY * k, catch_since + DAY * (k + 1), **extra)
            catchup[f"account, {label}, one run per day"] = {"requests": emu.requests() - count,
                                                            "tasks": args.account_catchup_days}
            count = emu.requests()
            account(emu.url, root, last - DAY, last, **extra)  # the next day's run: steady state
            steady[f"account, {label}"] = {"requests": emu.requests() - count, "tasks": 1}
        root = work / "catchup-one"
        account(emu.url, root, catch_since - DAY, catch_since)
        count = emu.requests()
        account(emu.url, root, catch_since, last, partition=DAY)
        catchup["account, no horizon, one run over the days (daily partitions)"] = {
            "requests": emu.requests() - count, "tasks": 1}
    b_requests = sum(mapped_requests(data, h_since + DAY * k) for k in range(args.account_history_days))
    c_requests = lower_bound(data, h_since, h_before)
    steady["mapped pattern"] = {"requests": mapped_requests(data, last - DAY), "tasks": tasks_per_day}
    catchup["mapped pattern, one run per day"] = {
        "requests": sum(mapped_requests(data, catch_since + DAY * k) for k in range(args.account_catchup_days)),
        "tasks": tasks_per_day * args.account_catchup_days}

    listing = a["requests_selection"]
    target = 1.05 * c_requests + listing
    ideal = a_requests / 4
    records = a["records"]
    lines = [
        f"The emulator's realistic account (`DataConfig.realistic(weeks={args.account_weeks}, "
        f"activities={args.account_activities})`): {sent} campaigns, one sent every Monday at 15:00 UTC from "
        f"{START[:10]}, {args.account_activities:,} sends each, opens and clicks decaying after each send over days "
        "with a long tail, bounces within hours, forwards on every third campaign only. The emulator runs in its "
        "own process. Requests are counted by the emulator.", "",
        f"## Account scale: history load of {args.account_history_days} days into daily partitions", "",
        f"Window [{h_since:%Y-%m-%d %H:%M}, {h_before:%Y-%m-%d %H:%M}) UTC, the account's first "
        f"{args.account_history_days} days (a first load). For (a) the emulator enforces 4 requests/s (403 over "
        f"qps) and adds {args.account_latency:g} s to every answer; the operator runs 4 requests in flight.", "",
        "| way | requests | wall time | task instances | days of a 10,000/day quota |", "|---|---:|---:|---:|---:|",
        f"| (a) account operator, one pass (measured: {records:,} records in {a['files_count']:,} files; "
        f"{listing} of the requests list campaigns and read their send times and totals) | {a_requests:,} | "
        f"{a_seconds:,.0f} s | 1 | {a_requests / 10_000:.2f} |",
        f"| (b) per-campaign mapped pattern, one run per day (computed; checked on {args.account_check_days} days: "
        f"{', '.join(map(str, checked))} requests measured = computed) | {b_requests:,} | "
        f"≥ {b_requests / 4 / 3600:,.1f} h at 4/s | {tasks_per_day * args.account_history_days:,} | "
        f"{b_requests / 10_000:,.1f} |",
        f"| (c) lower bound, Σ ⌈records since the start / 500⌉ | {c_requests:,} | ≥ {c_requests / 4:,.0f} s at 4/s | "
        "— | — |", "",
        f"Targets: (a) ≤ 1.05 x (c) + the campaign listing = {target:,.0f}: {verdict(a_requests <= target)} "
        f"({a_requests:,}); wall time ≤ 1.1 x requests / 4 = {1.1 * ideal:,.0f} s: "
        f"{verdict(a_seconds <= 1.1 * ideal)} ({a_seconds:,.0f} s, {a_requests / a_seconds:.2f} requests/s); "
        f"403 over-qps answers in (a): {sum(v for k, v in a_statuses.items() if k == '403')}.", "",
        f"## Account scale: steady state (one daily run, the account's last day) and a {args.account_catchup_days}-day "
        "catch-up", "",
        "Measured unthrottled; each account scenario first runs the day before, so send times are cached as in "
        "production. The mapped pattern is computed with the formula checked above.", "",
        "| daily run | requests | task instances |", "|---|---:|---:|",
        *[f"| {k} | {v['requests']:,} | {v['tasks']:,} |" for k, v in steady.items()], "",
        f"| {args.account_catchup_days}-day catch-up | requests | task instances |", "|---|---:|---:|",
        *[f"| {k} | {v['requests']:,} | {v['tasks']:,} |" for k, v in catchup.items()], "",
        f"Without a horizon a daily run costs about one request per campaign (its send time and totals) plus one per "
        f"report with any activity ever, so it grows with the account; `sent_within` bounds it to the campaigns "
        f"of the last {args.account_horizon_days} days, at the price of their older campaigns' late activity.", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "serve":
        serve(sys.argv[2])
        sys.exit(0)
    sys.exit("run through bench/run.py: python bench/run.py --only account")
