"""v3 (issue 16): token calls per day with and without the shared token store, and one large report through v3
beside v2 on the same account (the emulator serves both), at 4 requests/s with 300 ms added to each answer.

Token calls: every task is a process of its own in a deployment; here each is a token manager of its own (what a
new process starts with), either on the one shared store (the provider's default) or on a store of its own (what
a provider without a shared store does: every task refreshes). One simulated day is the access token's lifetime,
shortened to a few seconds, with the day's tasks spread over it. The token endpoint's 1 call a second is lifted
for the count (in both modes alike), so the figure is calls, not waiting.

    python bench/v3.py [--v3-days 3] [--v3-records 10000] [--v3-latency 0.3]

Registered in bench/run.py as the section ``v3``.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import API_KEY, ROOT, TOKEN, EmulatorProcess

sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    import argparse

NAME = "v3"
DAY = 3.0  # seconds one simulated day (the access token's lifetime) lasts
# Tasks a day of each example: the daily account DAG (one task), the per-campaign DAG (one mapped task per
# campaign and report: 12 here), a one-year history loaded in one day (one task per daily interval: 365).
SCENARIOS = (("daily account DAG (constant_contact_daily)", 1),
             ("per-campaign DAG: 2 campaigns x 6 reports mapped (constant_contact_per_campaign)", 12),
             ("one-year history backfilled in a day, one task per interval", 365))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--v3-days", type=int, default=3, help="simulated days per token scenario")
    parser.add_argument("--v3-records", type=int, default=10_000, help="records of the large report")
    parser.add_argument("--v3-latency", type=float, default=0.3, help="seconds the emulator adds to each answer")
    parser.add_argument("--v3-tasks-cap", type=int, default=1000, help="at most this many tasks a day")
    parser.add_argument("--v3-day-seconds", type=float, default=DAY, help="seconds one simulated day lasts")


def smoke(args: argparse.Namespace) -> None:
    args.v3_days, args.v3_records, args.v3_latency, args.v3_tasks_cap, args.v3_day_seconds = 1, 1500, 0.02, 4, 1.0


def token_calls(days: int, tasks_per_day: int, shared: bool, mode: str, work: Path, day: float = DAY
                ) -> dict[str, Any]:
    """Token calls of ``days`` simulated days of ``tasks_per_day`` tasks, each on a new token manager, on the
    one shared store or each on a store of its own; ``mode``: the app's refresh tokens."""
    from airflow_provider_cc.auth import tokens
    from airflow_provider_cc.auth.store import FileTokenStore
    from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
    from airflow_provider_cc.hooks.connection_v3 import V3Settings
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

    tokens.TOKEN_RATE = 1000.0  # the count, not the waiting (the emulator's limit is off too)
    options = V3Options(access_token_lifetime=day, token_calls_per_second=0, mode=mode)
    with Emulator(DataConfig(campaigns=1, contacts=10, activities=5), v3=options) as emu:
        conn = emu.v3_connection()
        settings = V3Settings(conn_id="bench", base_url=emu.url, client_id=conn["login"],
                              client_secret=conn["password"], refresh_token=conn["extra"]["refresh_token"],
                              token_url=emu.token_url, requests_per_second=0, max_retries=0)
        cid = next(iter(emu.v3.view.campaigns))
        started = time.monotonic()
        failed = 0
        for n in range(days * tasks_per_day):
            due = started + n * day / tasks_per_day
            time.sleep(max(0.0, due - time.monotonic()))
            store = FileTokenStore(str(work / ("shared" if shared else f"task-{n}")), "bench")
            try:
                ConstantContactV3Hook(settings=settings, token_store=store).get_campaign(cid)
            except Exception:
                failed += 1
        calls = [c for c in emu.v3.oauth.token_calls if c[1] == "refresh_token"]
    return {"calls": len(calls), "per_day": len(calls) / days, "failed": failed, "tasks": days * tasks_per_day,
            "tasks_per_day": tasks_per_day}


def large_report(records: int, latency: float) -> dict[str, Any]:
    """One sends report of ``records`` records, through v2 and through v3, on one emulator process."""
    from airflow_provider_cc.emulator.data import DataConfig, Dataset
    from airflow_provider_cc.emulator.v3data import V3View

    data = DataConfig(campaigns=1, contacts=records, activities=records)
    dataset = Dataset(data)
    v2_id = next(c.id for c in dataset.campaigns.values() if c.status == "SENT")
    activity = V3View(dataset).by_v2[v2_id].id
    out: dict[str, Any] = {"lower bound": math.ceil(records / 500)}
    with EmulatorProcess("--campaigns", "1", "--contacts", str(records), "--activities", str(records), "--qps", "4",
                         "--latency", str(latency), "--api", "v3") as emu:
        assert emu.proc.stdout is not None  # the v3 connection line follows the address line
        pasted = next(line for line in (emu.proc.stdout.readline() for _ in range(3)) if "V3_DEFAULT=" in line)
        v3_conn = json.loads(shlex.split(pasted)[-1].partition("=")[2])
        with tempfile.TemporaryDirectory() as store:
            v3_conn["extra"].update(requests_per_second=4, max_retries=10, oauth_store=store)
            os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT"] = json.dumps(v3_conn)
            os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = json.dumps(
                {"conn_type": "constant_contact", "host": emu.url, "password": TOKEN,
                 "extra": {"api_key": API_KEY, "requests_per_second": 4, "max_retries": 10}})
            from airflow_provider_cc.hooks.factory import hook_for

            for name, conn_id, pull in (
                    ("v2", "constant_contact_default",
                     lambda h: h.iter_campaign_tracking(v2_id, "sends", limit=500)),
                    ("v3", "constant_contact_v3_default",
                     lambda h: h.iter_activity_tracking(activity, "sends", limit=500))):
                hook = hook_for(conn_id)
                begin = time.perf_counter()
                stream = pull(hook)
                got = sum(1 for _ in stream)
                seconds = time.perf_counter() - begin
                out[name] = {"records": got, "requests": hook.transport.requests_sent, "pages": stream.pages,
                             "seconds": seconds,
                             "token_calls": getattr(getattr(hook, "tokens", None), "token_calls", 0)}
        statuses = emu.stats()["statuses"]
    out["throttled"] = statuses.get("429", 0) + statuses.get("403", 0)
    return out


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = ["## v3: token calls a day, and one large report through v3 beside v2", "",
             f"Token calls: one simulated day is the access token's lifetime ({args.v3_day_seconds:g} s here, 24 h "
             f"at Constant Contact), {args.v3_days} days per scenario, every task a new token manager (a new process). "
             "\"Shared store\" is the provider (every task reads the store first and refreshes only when the "
             "stored access token is about to expire); \"no shared store\" gives every task a store of its own, "
             "as a provider without one does (each task refreshes, and with rotating tokens only the last "
             "writer's token survives).", "",
             "| example | tasks a day | token calls a day: shared store | no shared store, long-lived tokens | "
             "no shared store, rotating tokens: tasks failed |", "|---|---:|---:|---:|---:|"]
    for (label, _), (shared, alone, rotating) in zip(SCENARIOS, results["tokens"], strict=True):
        lines.append(f"| {label} | {shared['tasks_per_day']} | {shared['per_day']:.1f} | {alone['per_day']:.1f} | "
                     f"{rotating['failed']} of {rotating['tasks']} |")
    lines += ["", "With the shared store, a day costs about one token call however many tasks run (the first task "
                  "after the access token's expiry refreshes; the others read its tokens). Without one, every task "
                  "refreshes, and with rotating tokens every task after the first fails on a refresh token that "
                  "the first one's refresh killed. (A day of 365 tasks outlasts the "
                  f"{args.v3_day_seconds:g}-s simulated day, so its access token expires once more during the run; "
                  "at 24 h it would not.)"]
    big = results["large"]
    lines += ["", f"One sends report of {args.v3_records:,} records on the same account, through v2 and v3, from "
                  f"one emulator process enforcing 4 requests/s and adding {args.v3_latency * 1000:.0f} ms to "
                  "each answer; `requests_per_second` = 4, pages of 500. The lower bound is one request per 500 "
                  "records.", "",
              "| API | records | API requests | lower bound | token calls | wall time (s) |",
              "|---|---:|---:|---:|---:|---:|"]
    for name in ("v2", "v3"):
        r = big[name]
        lines.append(f"| {name} | {r['records']:,} | {r['requests']} | {big['lower bound']} | {r['token_calls']} | "
                     f"{r['seconds']:.1f} |")
    lines += ["", f"Throttled answers (429 or 403 over-qps) in the large-report runs: {big['throttled']}. v3 pays "
                  "one token call before its first page (its access token then serves every task for 24 h); "
                  "otherwise both APIs cost the lower bound, at the same pace.", ""]
    return "\n".join(lines)


def section(args: argparse.Namespace, work: Path) -> str:
    results: dict[str, Any] = {"tokens": []}
    for index, (_, per_day) in enumerate(SCENARIOS):
        days = args.v3_days if per_day < 100 else 1
        per_day = min(per_day, args.v3_tasks_cap)
        row = [token_calls(days, per_day, shared, mode, work / f"tokens-{index}-{shared}-{mode}", args.v3_day_seconds)
               for shared, mode in ((True, "rotating"), (False, "long_lived"), (False, "rotating"))]
        results["tokens"].append(row)
    results["large"] = large_report(args.v3_records, args.v3_latency)
    return render(results, args)


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    from shared_key import main as run_section  # the same command line for a section run on its own

    sys.exit(run_section(module=sys.modules[__name__]))
