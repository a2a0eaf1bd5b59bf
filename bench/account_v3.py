"""The account operator on v2 and on v3, side by side on one emulator account served through both APIs (issue
17): a history load (one window over the whole account) and a week of daily runs (``sent_within`` +
``recheck_every``, the daily example's settings), in requests beside each API's lower bound, token calls, and
the wall time the requests cost at the key's 4 requests/s. (Token calls are counted for the history task only:
the daily runs move the emulator's clock, which its access tokens' expiry follows.)

Lower bounds, from the emulator's data: v2 history = the RUNNING and SENT list pages + one campaign request per
campaign + Σ ⌈records / 500⌉ per (campaign, report); v3 history = the bulk
summary pages + one activities request per campaign + Σ ⌈records / 500⌉ per (activity, report) of a campaign
whose report total is not 0 (at least one page). Unthrottled (requests are counted by the emulator); the
wall time at 4 requests/s is requests / 4.

    python bench/run.py --only account_v3 [--av3-campaigns 200] [--av3-activities 500] [--av3-days 7]

Registered in bench/run.py as the section ``account_v3``.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT

sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    import argparse

NAME = "account_v3"
DAY = timedelta(days=1)
REPORTS = ("sends", "opens", "clicks", "forwards", "unsubscribes", "bounces")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--av3-campaigns", type=int, default=200, help="SENT campaigns of the account")
    parser.add_argument("--av3-activities", type=int, default=500, help="sends (contacts) per campaign")
    parser.add_argument("--av3-days", type=int, default=7, help="daily runs measured at the account's end")


def smoke(args: argparse.Namespace) -> None:
    args.av3_campaigns, args.av3_activities, args.av3_days = 12, 40, 2


def _run(emu: Any, api: str, root: Path, since: datetime, before: datetime, tokens: str, **options: Any
         ) -> tuple[int, int, float]:
    """One account task through ``api``: (API requests, token calls, seconds)."""
    from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

    fast = {"requests_per_second": 0, "backoff": 0.01, "max_retries": 10}
    os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = (
        emu.connection_json(**fast) if api == "v2" else emu.v3_connection_json(**fast, oauth_store=tokens))
    seen = len(emu.requests)
    started = time.perf_counter()
    ConstantContactAccountTrackingOperator(task_id="account", destination=f"file://{root}/", created_since=since,
                                           created_before=before, **options).execute({})
    paths = [p for p, _ in emu.requests[seen:]]
    token = sum(1 for p in paths if "oauth" in p or "token" in p)
    return len(paths) - token, token, time.perf_counter() - started


def _lower_bounds(emu: Any) -> tuple[int, int]:
    from airflow_provider_cc.reports import v3_report

    data, view = emu.dataset, emu.v3.view
    sent = [c for c in data.campaigns.values() if c.status == "SENT"]
    running = [c for c in data.campaigns.values() if c.status == "RUNNING"]
    v2 = max(1, math.ceil(len(running) / 50)) + max(1, math.ceil(len(sent) / 50)) + len(sent)
    for campaign in sent:
        for report in REPORTS:
            v2 += math.ceil(len(emu.records(campaign.id, report)) / 500)  # a report with no records: none
    campaigns = [c for c in view.campaigns.values() if c.status == "SENT"]
    v3 = max(1, math.ceil(len(campaigns) / 500)) + len(campaigns)
    for campaign in campaigns:
        for report in REPORTS:
            served = [len(emu.v3_records(a.id, v3_report(report).segment)) for a in view.reported(campaign)]
            if any(served):
                v3 += sum(max(1, math.ceil(n / 500)) for n in served)
    return v2, v3


def section(args: argparse.Namespace, work: Path) -> str:
    from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options

    data = DataConfig.realistic(weeks=args.av3_campaigns, activities=args.av3_activities)
    emu = Emulator(data, v3=V3Options(resend_every=3)).start()
    tokens = tempfile.mkdtemp(prefix="cc-bench-tokens-")
    try:
        first_ms = min(c.run_ms for c in emu.dataset.campaigns.values() if c.status == "SENT")
        start = datetime.fromtimestamp(first_ms / 1000, tz=timezone.utc).replace(hour=0, minute=0, second=0,
                                                                                 microsecond=0)
        end = datetime.fromtimestamp(emu.dataset.end_ms / 1000, tz=timezone.utc).replace(
            hour=3, minute=0, second=0, microsecond=0)
        results: dict[str, dict[str, Any]] = {}
        for api in ("v2", "v3"):
            print(f"  account on {api}: history...", flush=True)
            requests, token, seconds = _run(emu, api, work / f"{api}-history", start, end, tokens)
            first_day = end - DAY * args.av3_days
            daily: list[int] = []
            options = {"sent_within": timedelta(days=30), "recheck_every": timedelta(days=7)}
            root = work / f"{api}-daily"
            _run(emu, api, root, first_day - DAY * 8, first_day - DAY * 7, tokens, **options)  # caches, once
            for k in range(-7, args.av3_days):  # a week of re-checks first, then the measured days
                since = first_day + DAY * k
                emu.set_now((since + DAY + timedelta(minutes=1)).isoformat())
                daily_requests, _, _ = _run(emu, api, root, since, since + DAY, tokens, **options)
                if k >= 0:
                    daily.append(daily_requests)
            emu.set_now(None)
            results[api] = {"history": requests, "seconds": seconds, "daily": daily, "token": token}
        v2_bound, v3_bound = _lower_bounds(emu)
    finally:
        emu.stop()
    v2, v3 = results["v2"], results["v3"]
    campaigns = len([c for c in emu.v3.view.campaigns.values() if c.status == "SENT"])
    lines = [
        f"The emulator's realistic account, {args.av3_campaigns} weekly sends of {args.av3_activities} contacts "
        f"(`DataConfig.realistic(weeks={args.av3_campaigns}, activities={args.av3_activities})`), served through "
        f"both APIs; on v3 every third send is the previous campaign's resend, so the same records make "
        f"{campaigns} v3 campaigns. Requests counted by the emulator, unthrottled; the wall time is what the "
        "requests take at 4 requests/s.", "",
        "| | v2 | v3 |",
        "|---|---:|---:|",
        f"| history, one task over the whole account: requests | {v2['history']:,} | {v3['history']:,} |",
        f"| its lower bound | {v2_bound:,} | {v3_bound:,} |",
        f"| requests / lower bound | {v2['history'] / v2_bound:.2f} | {v3['history'] / v3_bound:.2f} |",
        f"| wall time at 4 requests/s | {v2['history'] / 4:,.0f} s | {v3['history'] / 4:,.0f} s |",
        f"| daily run (`sent_within=30 days`, `recheck_every=7 days`): requests, mean of {args.av3_days} | "
        f"{sum(v2['daily']) / len(v2['daily']):,.1f} | {sum(v3['daily']) / len(v3['daily']):,.1f} |",
        f"| daily run: requests, max | {max(v2['daily']):,} | {max(v3['daily']):,} |",
        f"| token calls of the history task | {v2['token']} | {v3['token']} |",
        "",
        "v3 needs no request per campaign to choose them (the bulk summaries carry each campaign's last send and "
        "totals, 500 a page), asks each campaign's activities once (cached), and re-checks cost one activity-stats "
        "request per 10 activities due; it "
        "pays per activity where v2 pays per campaign (a resend is its own v2 campaign), and one page for an "
        "activity whose own report is empty while its campaign's total is not 0 (the totals are per campaign).",
        "",
    ]
    return "\n".join(lines)
