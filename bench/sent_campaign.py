"""What pulling one sent campaign costs in requests, the way the event-driven and wait-for-send examples do it: the
account operator with ``campaign_ids`` (one task), beside the per-report tracking operator mapped over the six
reports (six tasks, what the examples did before) and the lower bound, on the emulator's realistic account,
through both APIs. The window is the campaign's first week from its send time.

The lower bound is what any pull must fetch: per report (v3: per report and activity) with records in the
window, one page per ``limit`` (500) records; a report without any costs nothing, which only a pull that first
asks the campaign's totals can know. No wall-clock figure: the emulator answers at once.

    python3 scripts/run.py bench --only sent_campaign [--sent-weeks 8]
    python bench/sent_campaign.py [--smoke]

Registered in bench/run.py as the section ``sent_campaign``.
"""

from __future__ import annotations

import math
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

NAME = "sent_campaign"
RETRY = {"requests_per_second": 0, "backoff": 0.01, "max_retries": 10}
LIMIT = 500  # the operators' default page size
WEEK_MS = 7 * 86_400_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sent-weeks", type=int, default=8, help="weekly campaigns of the account")
    parser.add_argument("--sent-activities", type=int, default=1200, help="sends (contacts) per campaign")


def smoke(args: argparse.Namespace) -> None:
    args.sent_weeks, args.sent_activities = 2, 30


def lower_bound(emu: Any, api: str, campaign_id: str, since: str, before: str) -> int:
    """Pages any pull of the window must fetch."""
    from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES, v3_report
    from airflow_provider_cc.window import record_instant, to_utc

    if api == "v2":
        counts = [len(emu.records(campaign_id, report, created_since=since, created_before=before))
                  for report in CAMPAIGN_REPORT_NAMES]
    else:
        low, high = to_utc(since, "since"), to_utc(before, "before")
        campaign = emu.v3.view.campaigns[campaign_id]
        counts = [sum(1 for r in emu.v3_records(activity.id, v3_report(report).segment)
                      if low <= record_instant(r["created_time"]) < high)
                  for activity in emu.v3.view.reported(campaign) for report in CAMPAIGN_REPORT_NAMES]
    return sum(math.ceil(n / LIMIT) for n in counts)


def measure(api: str, weeks: int, activities: int, work: Path) -> dict[str, int]:
    """Requests of each way to pull the account's first sent campaign's first week, and the lower bound."""
    from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
    from airflow_provider_cc.emulator.data import ms_to_text
    from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
    from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
    from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES

    emu = Emulator(DataConfig.realistic(weeks=weeks, activities=activities),
                   v3=V3Options(resend_every=3, device_interval=1))
    emu.start()
    conn = "AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"
    previous = os.environ.get(conn)
    try:
        os.environ[conn] = (emu.connection_json(**RETRY) if api == "v2" else
                            emu.v3_connection_json(**RETRY, oauth_store=str(work / f"{api}-sent-tokens")))
        if api == "v2":
            campaign_id = emu.campaign_ids()[0]
            sent_ms = emu.dataset.campaigns[campaign_id].run_ms
        else:
            campaign = next(c for c in emu.v3.view.campaigns.values() if c.primary.status == "SENT")
            campaign_id, sent_ms = campaign.id, campaign.primary.run_ms
        window = {"created_since": ms_to_text(sent_ms), "created_before": ms_to_text(sent_ms + WEEK_MS)}
        if api == "v3":  # the token call first, so that neither way pays it
            ConstantContactAccountTrackingOperator(task_id="warm", destination=f"file://{work}/{api}-warm/",
                                                   campaign_ids=[campaign_id], reports=["sends"],
                                                   **window).execute({})
        seen = len(emu.requests)
        for report in CAMPAIGN_REPORT_NAMES:
            ConstantContactCampaignTrackingOperator(
                task_id=f"pull_{report}", campaign_id=campaign_id, report=report,
                destination=f"file://{work}/{api}-mapped/", **window).execute({})
        mapped = len(emu.requests) - seen
        seen = len(emu.requests)
        manifest = ConstantContactAccountTrackingOperator(
            task_id="pull", destination=f"file://{work}/{api}-one/", campaign_ids=[campaign_id], **window).execute({})
        one = len(emu.requests) - seen
        return {"mapped": mapped, "one": one, "estimate": manifest["requests_estimate"],
                "bound": lower_bound(emu, api, campaign_id, window["created_since"], window["created_before"])}
    finally:
        emu.stop()
        if previous is None:
            os.environ.pop(conn, None)
        else:
            os.environ[conn] = previous


def section(args: argparse.Namespace, work: Path) -> str:
    rows = []
    for api in ("v2", "v3"):
        f = measure(api, args.sent_weeks, args.sent_activities, work)
        rows.append(f"| {api} | {f['mapped']:,} | {f['one']:,} | {f['estimate']:,} | {f['bound']:,} |")
    return (f"## One sent campaign: one task, or one task per report\n\n"
            f"The first sent campaign of the emulator's realistic account ({args.sent_weeks} weekly campaigns of "
            f"{args.sent_activities:,} sends; on v3 one in three with a resend), its first week from the send "
            "time, page size 500: the account operator with `campaign_ids` (the event-driven and wait-for-send "
            "examples), beside `ConstantContactCampaignTrackingOperator` once per report (six tasks) and the "
            "lower bound (the pages of the reports with records in the window). v3's token call is made before "
            "both.\n\n"
            "| API | one task per report (6 tasks) | account operator, `campaign_ids` (1 task) | its estimate | "
            "lower bound |\n|---|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    from shared_key import main as run_section  # the same command line for a section run on its own

    sys.exit(run_section(module=sys.modules[__name__]))
