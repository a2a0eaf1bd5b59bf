"""Daily cost of a large, old account: what one daily run costs in requests, with and without a horizon, and
with the horizon plus re-checks of the older campaigns (``recheck_every``), side by side on one account.

The emulator's realistic account grown to ``--daily-campaigns`` campaigns over ``--daily-years`` years,
served from its own process, with its clock moved to one minute after each run's window ends (as a 03:00 run
sees the account). Over the account's last ``--daily-days`` days:

* (a) no horizon (today's default): every SENT campaign, every run; measured on the first
  ``--daily-check-days`` days only (it costs about a day's quota per run), whose files are the reference;
* (b) ``sent_within=--daily-wide-horizon`` days: cheap, but older campaigns' late activity is never pulled;
* (c) ``sent_within=--daily-horizon`` days + ``recheck_every=--daily-recheck`` days, after a first period of
  ``recheck`` days in which every older campaign is checked (and pulled) once.

The check: (c)'s files of the reference days equal (a)'s byte for byte (every record, however old its campaign,
reached its day's file within the re-check period).

    python bench/run.py --only daily_cost [--daily-campaigns 2000] [--daily-years 4] [--daily-days 21]

Registered in bench/run.py as the section ``daily_cost``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from account import Emulator, account
from run import verdict

if TYPE_CHECKING:
    import argparse

NAME = "daily_cost"
DAY = timedelta(days=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--daily-campaigns", type=int, default=2000, help="campaigns of the account")
    parser.add_argument("--daily-years", type=float, default=4.0, help="years over which they were sent")
    parser.add_argument("--daily-activities", type=int, default=2000, help="sends (contacts) per campaign")
    parser.add_argument("--daily-days", type=int, default=21, help="daily runs measured at the account's end")
    parser.add_argument("--daily-horizon", type=int, default=30, help="sent_within of (c), days")
    parser.add_argument("--daily-wide-horizon", type=int, default=90, help="sent_within of (b), days")
    parser.add_argument("--daily-recheck", type=int, default=7, help="recheck_every of (c), days")
    parser.add_argument("--daily-check-days", type=int, default=3, help="days (a) pulls in full, the reference")


def smoke(args: argparse.Namespace) -> None:
    args.daily_campaigns, args.daily_years, args.daily_activities = 40, 0.5, 40
    args.daily_days, args.daily_horizon, args.daily_wide_horizon = 4, 10, 20
    args.daily_recheck, args.daily_check_days = 2, 1


def _clock(url: str, moment: datetime | None) -> None:
    import requests

    requests.post(url + "/_emulator/now", json={"now": None if moment is None else moment.isoformat()}, timeout=10)


def _day_files(root: Path, day: datetime) -> dict[str, bytes]:
    prefix = f"{day:%Y%m%dT%H%M%S}Z_"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob("campaign/*/*/*"))
            if p.name.startswith(prefix)}


def section(args: argparse.Namespace, work: Path) -> str:
    from airflow_provider_cc.emulator import DataConfig
    from airflow_provider_cc.emulator.data import Dataset

    every = args.daily_years * 365 / args.daily_campaigns
    shape = {"weeks": args.daily_campaigns, "activities": args.daily_activities, "every_days": every}
    data = Dataset(DataConfig.realistic(**shape))
    end = datetime.fromtimestamp(data.end_ms / 1000, tz=timezone.utc).replace(hour=3, minute=0, second=0,
                                                                              microsecond=0)
    first = end - DAY * args.daily_days
    recheck, horizon = timedelta(days=args.daily_recheck), timedelta(days=args.daily_horizon)
    per_day: dict[str, list[int]] = {"a": [], "b": [], "c": [], "c bootstrap": []}
    started = time.perf_counter()
    with Emulator(shape) as emu:
        def day(label: str, root: Path, k: int, **options: Any) -> None:
            since = first + DAY * k
            _clock(emu.url, since + DAY + timedelta(minutes=1))
            count = emu.requests()
            account(emu.url, root, since, since + DAY, **options)
            per_day[label].append(emu.requests() - count)

        print("  daily cost: (a) no horizon...", flush=True)
        _clock(emu.url, first + timedelta(minutes=1))
        account(emu.url, work / "daily-a", first - DAY, first)  # the run before: send times cached
        for k in range(args.daily_check_days):
            day("a", work / "daily-a", k)
        print("  daily cost: (b) wide horizon...", flush=True)
        wide = {"sent_within": timedelta(days=args.daily_wide_horizon)}
        _clock(emu.url, first + timedelta(minutes=1))
        account(emu.url, work / "daily-b", first - DAY, first, **wide)
        for k in range(args.daily_days):
            day("b", work / "daily-b", k, **wide)
        print("  daily cost: (c) horizon + re-checks...", flush=True)
        narrow = {"sent_within": horizon, "recheck_every": recheck}
        for k in range(-args.daily_recheck, 0):  # the first period: every older campaign is checked once
            day("c bootstrap", work / "daily-c", k, **narrow)
        for k in range(args.daily_days):
            day("c", work / "daily-c", k, **narrow)
        _clock(emu.url, None)
    seconds = time.perf_counter() - started
    identical = [_day_files(work / "daily-c", first + DAY * k) == _day_files(work / "daily-a", first + DAY * k)
                 for k in range(args.daily_check_days)]
    files = sum(len(_day_files(work / "daily-a", first + DAY * k)) for k in range(args.daily_check_days))
    coverage = next((work / "daily-c" / "_state" / "campaigns").glob("coverage.*.json"))
    coverage_kb = coverage.stat().st_size / 1000
    checked = json.loads(coverage.read_text())["checked"]

    def row(label: str, name: str, note: str) -> str:
        values = per_day[name]
        return (f"| {label} | {statistics.mean(values):,.0f} | {max(values):,} | {len(values)} | {note} |")

    sent = args.daily_campaigns
    target = max(per_day["c"]) <= 1000 and all(identical)
    lines = [
        f"The emulator's realistic account grown to {sent:,} campaigns over {args.daily_years:g} years (one every "
        f"{every:.2f} days, `DataConfig.realistic(weeks={sent}, every_days={every:.2f}, "
        f"activities={args.daily_activities})`), decaying activity with a long tail. Daily runs over its last "
        f"{args.daily_days} days [{first:%Y-%m-%d}, {end:%Y-%m-%d}), each at 03:01 on the emulator's clock; "
        f"unthrottled; requests counted by the emulator ({seconds:,.0f} s in all).", "",
        "| daily run | requests (mean) | requests (max) | runs | late activity of older campaigns |",
        "|---|---:|---:|---:|---|",
        row("(a) no horizon (the operator's default)", "a", "every run, exact"),
        row(f"(b) `sent_within={args.daily_wide_horizon} days`", "b", "never pulled"),
        row(f"(c) `sent_within={args.daily_horizon} days`, `recheck_every={args.daily_recheck} days`", "c",
            f"within {args.daily_recheck} days, byte-identical"),
        row(f"(c), its first {args.daily_recheck} days (every older campaign checked and pulled once)",
            "c bootstrap", "from the first run's start"),
        "",
        f"Per day, (c): {', '.join(f'{n:,}' for n in per_day['c'])}; its first period: "
        f"{', '.join(f'{n:,}' for n in per_day['c bootstrap'])}.", "",
        f"Check: (c)'s files of the {args.daily_check_days} reference days (the first measured days, at least "
        f"{args.daily_recheck} days before the last run) against (a)'s full pulls: "
        f"{'identical' if all(identical) else 'DIFFERENT'} ({files:,} files). Coverage state: {coverage_kb:,.0f} kB, "
        f"{len(checked):,} campaigns tracked.", "",
        f"Target: a daily run ≤ 1,000 requests (10 % of the day's quota) with every record within "
        f"{args.daily_recheck} days, byte-identical to a full pull: {verdict(target)} (max {max(per_day['c']):,}).",
        "",
    ]
    return "\n".join(lines)
