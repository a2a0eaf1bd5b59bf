"""What the account operator's dimensions and completeness check cost in requests (issue 23), measured on the
emulator's realistic account (weekly campaigns; v3: one in three with a resend), through both APIs:

* a history load (the first year) with ``dimensions=True``, beside the same load without them: the baseline,
  which is what pulling the events alone costs;
* then a daily run (a day in the tenth week) on the warm state, with and without dimensions.

Requests are counted by what they ask for: the campaign list, activities and send histories (v3 campaign
activities dimension), links (v3), the activity stats (v3 completeness counts); v2's dimensions and counts come
from answers the selection reads anyway. No wall-clock figure: the emulator answers at once.

    python3 scripts/run.py bench --only analytics_cost [--analytics-weeks 8]
    python bench/analytics_cost.py [--smoke]

Registered in bench/run.py as the section ``analytics_cost``.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

NAME = "analytics_cost"
HISTORY = {"data_interval_start": "2022-01-01T00:00:00Z", "data_interval_end": "2023-01-01T00:00:00Z"}
DAILY = {"data_interval_start": "2022-03-14T00:00:00Z", "data_interval_end": "2022-03-15T00:00:00Z"}
RETRY = {"requests_per_second": 0, "backoff": 0.01, "max_retries": 10}
RUNS = (("history", HISTORY), ("daily", DAILY))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--analytics-weeks", type=int, default=8, help="weekly campaigns of the account")
    parser.add_argument("--analytics-activities", type=int, default=300, help="sends (contacts) per campaign")


def smoke(args: argparse.Namespace) -> None:
    args.analytics_weeks, args.analytics_activities = 3, 20


def kind(path: str) -> str:
    """What a request asks for."""
    if "/oauth2/" in path:
        return "token"
    if path in ("/v3/emails", "/v2/emailmarketing/campaigns"):
        return "campaign list"
    if "/reports/stats/email_campaign_activities/" in path:
        return "activity stats"
    if path.endswith("/links"):
        return "links"
    if path.endswith("/send_history"):
        return "send history"
    if "/emails/activities/" in path:
        return "activity"
    if "/tracking/" in path:
        return "tracking pages"
    return "other"


def measure(api: str, weeks: int, activities: int, work: Path) -> dict[str, dict[str, Any]]:
    """Per run (history, daily) and option (without / with dimensions): the manifest's requests and estimate,
    the requests by kind, and the completeness check's outcome."""
    from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
    from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

    emu = Emulator(DataConfig.realistic(weeks=weeks, activities=activities),
                   v3=V3Options(resend_every=3, device_interval=1))
    emu.start()
    figures: dict[str, dict[str, Any]] = {}
    previous = os.environ.get("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT")
    try:
        os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = (
            emu.connection_json(**RETRY) if api == "v2" else
            emu.v3_connection_json(**RETRY, oauth_store=str(work / f"{api}-tokens")))
        for run, window in RUNS:
            for dims in (False, True):
                seen = len(emu.requests)
                root = work / f"{api}-{'lake' if dims else 'plain'}"
                manifest = ConstantContactAccountTrackingOperator(
                    task_id="cost", destination=f"file://{root}/", dimensions=dims).execute(window)
                check = manifest.get("completeness") or {}
                figures[f"{run} {dims}"] = {
                    "requests": manifest["requests"], "estimate": manifest["requests_estimate"],
                    "kinds": Counter(kind(p) for p, _ in emu.requests[seen:]),
                    "checked": check.get("checked", 0), "mismatches": check.get("mismatch_count", 0)}
    finally:
        emu.stop()
        if previous is None:
            os.environ.pop("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", None)
        else:
            os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = previous
    return figures


def _extra(without: Counter[str], with_: Counter[str]) -> str:
    more = {k: with_[k] - without.get(k, 0) for k in with_ if with_[k] > without.get(k, 0)}
    return ", ".join(f"{n} {k}" for k, n in sorted(more.items())) or "none"


def section(args: argparse.Namespace, work: Path) -> str:
    rows = []
    for api in ("v2", "v3"):
        figures = measure(api, args.analytics_weeks, args.analytics_activities, work)
        for run, _ in RUNS:
            off, on = figures[f"{run} False"], figures[f"{run} True"]
            rows.append(f"| {api} | {run} | {off['requests']:,} | {on['requests']:,} | {on['estimate']:,} | "
                        f"{_extra(off['kinds'], on['kinds'])} | {on['kinds'].get('activity stats', 0)} | "
                        f"{on['checked']} / {on['mismatches']} |")
    return (f"## Analytics: what the dimensions and the completeness check cost in requests\n\n"
            f"The emulator's realistic account ({args.analytics_weeks} weekly campaigns of "
            f"{args.analytics_activities:,} sends; on v3 one in three with a resend), through the account "
            f"operator: a history load of {HISTORY['data_interval_start'][:10]} .. "
            f"{HISTORY['data_interval_end'][:10]}, then a daily run ({DAILY['data_interval_start'][:10]}) on the "
            "warm state. The baseline (lower bound) is the same run without `dimensions`: what the events alone "
            "cost. The completeness check runs in both; its requests are the v3 activity stats (v2 compares "
            "with the campaign summaries the selection reads anyway: none).\n\n"
            "| API | run | requests, baseline (no dimensions) | with dimensions | estimate | extra requests | "
            "activity stats (check) | (campaign, report)s checked / mismatches |\n"
            "|---|---|---:|---:|---:|---|---:|---|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    from shared_key import main as run_section  # the same command line for a section run on its own

    sys.exit(run_section(module=sys.modules[__name__]))
