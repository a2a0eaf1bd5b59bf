"""The account operator on v2 and on v3, side by side on one emulator account served through both APIs (issue
17), at the key's pace: the emulator runs in its own process, enforces ``--av3-rps`` requests a second per key
(4: v2's 403 over.qps, v3's 429) and adds ``--av3-latency`` seconds to every answer; the connections ask for the
same pace (``requests_per_second``).

* **History load**: one account task over the whole account (a year of weekly sends at the default size), in
  requests beside the lower bound, the selection's requests apart (the operator's manifest,
  ``requests_selection``), token calls, wall time and task instances. Lower bound = Σ ⌈records / 500⌉ per
  (campaign, report) on v2, per (activity, report) on v3 (a resend is its own v2 campaign and its own v3
  activity, so both bounds count the same pages). v3 also shows the bound a client can reach knowing only the
  per-campaign totals of the bulk summaries: at least one page per reported activity of a report whose
  campaign total is not 0.
* **Daily runs**: ``sent_within=30 days``, ``recheck_every=7 days`` (the daily example's settings), one run a
  day for the account's last ``--av3-days`` days after a week of runs that bring the re-check schedule to its
  steady state; the emulator's clock is moved to just after each run's window.

Targets (issue 17): history requests ≤ 1.05 x the lower bound + the selection's requests; wall time ≤ 1.1 x
requests / rps; a daily run on v3 costs no more requests than on v2, day by day.

    python bench/run.py --only account_v3 [--av3-weeks 52] [--av3-activities 2000] [--av3-days 7]
                        [--av3-rps 4] [--av3-latency 0.3] [--av3-parts history,daily] [--av3-dump FILE]

``--av3-parts daily`` measures the daily runs alone (about 5 minutes at 4 requests/s instead of 11): what a
change to how reports end (a v3 stream's stop rule) moves, since the history window holds no older record.
``--av3-dump`` writes each run's tracking pages per (campaign or activity, report) as JSON, to compare two
versions of the code unit by unit.

Registered in bench/run.py as the section ``account_v3``.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import API_KEY, ROOT, TOKEN, verdict

sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    import argparse

NAME = "account_v3"
DAY = timedelta(days=1)
PAGE = 500
REPORTS = ("sends", "opens", "clicks", "forwards", "unsubscribes", "bounces")
DAILY = {"sent_within": timedelta(days=30), "recheck_every": timedelta(days=7)}
TRACKING = re.compile(r"/v2/emailmarketing/campaigns/(\d+)/tracking/(\w+)|/v3/reports/email_reports/([0-9a-f-]{36})"
                      r"/tracking/(\w+)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--av3-weeks", type=int, default=52, help="weekly SENT campaigns of the account")
    parser.add_argument("--av3-activities", type=int, default=2000, help="sends (contacts) per campaign")
    parser.add_argument("--av3-days", type=int, default=7, help="daily runs measured at the account's end")
    parser.add_argument("--av3-rps", type=float, default=4, help="requests/s the emulator allows per key")
    parser.add_argument("--av3-latency", type=float, default=0.3, help="seconds the emulator adds to each answer")
    parser.add_argument("--av3-parts", default="history,daily", help="what to measure: history, daily or both")
    parser.add_argument("--av3-dump", type=Path, default=None,
                        help="write each run's tracking pages per (campaign or activity, report) to this JSON file")


def smoke(args: argparse.Namespace) -> None:
    args.av3_weeks, args.av3_activities, args.av3_days, args.av3_rps, args.av3_latency = 8, 40, 1, 40, 0.02


# ---- the emulator, in its own process ------------------------------------------------------------------------
class Served:
    """The realistic account served from a child process, with every request's path kept for the counts."""

    def __init__(self, data: dict[str, Any], rps: float, latency: float) -> None:
        spec = json.dumps({"data": data, "qps": rps, "latency": latency})
        self.proc = subprocess.Popen([sys.executable, __file__, "serve", spec], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        hello = json.loads(self.proc.stdout.readline())
        self.url: str = hello["url"]
        self.v2: dict[str, Any] = hello["v2"]
        self.v3: dict[str, Any] = hello["v3"]

    def log(self, start: int = 0, answered: int = 0) -> dict[str, Any]:
        """The paths of the requests since the ``start``-th (``paths``), when each arrived (``times``,
        ``time.time()``), the answers' statuses so far (``statuses``), and the paths answered 200 since the
        ``answered``-th answer (``ok``, with the count of answers so far, ``answers``)."""
        import requests

        return requests.get(f"{self.url}/_bench/log", params={"from": start, "answered": answered}, timeout=30).json()

    def set_now(self, moment: datetime | None) -> None:
        import requests

        requests.post(f"{self.url}/_emulator/now", json={"now": None if moment is None else moment.isoformat()},
                      timeout=30).raise_for_status()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def serve(spec: str) -> None:
    from collections import deque
    from itertools import islice
    from urllib.parse import parse_qs, urlsplit

    from airflow_provider_cc.emulator import DataConfig, Emulator, FaultConfig, V3Options
    from airflow_provider_cc.emulator.server import Handler

    config = json.loads(spec)
    emu = Emulator(DataConfig.realistic(**config["data"]), FaultConfig(qps=config["qps"], latency=config["latency"]),
                   api_key=API_KEY, token=TOKEN, v3=V3Options(resend_every=3))
    server = emu.server
    arrived: list[float] = []

    class Log(deque):  # every request, not the last 10,000, and when it arrived (before the added latency)
        def append(self, item: Any) -> None:
            arrived.append(time.time())
            super().append(item)

    server.log = Log()
    answers: list[tuple[str, int]] = []  # each answer's path and status, in the order they were sent

    class Logged(Handler):
        def _send(self, status: int, body: Any, malformed: bool = False) -> None:
            super()._send(status, body, malformed)
            with server.lock:
                answers.append((urlsplit(self.path).path, status))

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            if split.path != "/_bench/log":
                super().do_GET()
                return
            query = parse_qs(split.query)
            start, answered = int(query.get("from", ["0"])[0]), int(query.get("answered", ["0"])[0])
            with server.lock:
                statuses = {str(k): v for k, v in server.statuses.items()}
                ok = [p for p, status in answers[answered:] if status == 200]
                count = len(answers)
            super()._send(200, {"paths": [p for p, _ in islice(list(server.log), start, None)],
                                "times": arrived[start:], "statuses": statuses, "ok": ok, "answers": count})

    server.RequestHandlerClass = Logged
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"url": emu.url, "v2": emu.connection(), "v3": emu.v3_connection()}), flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


# ---- one account task ------------------------------------------------------------------------------------------
def _run(served: Served, api: str, root: Path, since: datetime, before: datetime, tokens: str, rps: float,
         **options: Any) -> dict[str, Any]:
    """One account task through ``api``: its manifest, the emulator's paths and throttled answers, seconds."""
    from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

    pace = {"requests_per_second": rps, "max_retries": 10}
    conn = served.v2 if api == "v2" else served.v3
    conn = {**conn, "extra": {**conn["extra"], **pace, **({"oauth_store": tokens} if api == "v3" else {})}}
    os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = json.dumps(conn)
    earlier = served.log()
    seen, before_statuses = earlier["paths"], earlier["statuses"]
    started = time.time()
    manifest = ConstantContactAccountTrackingOperator(
        task_id="account", destination=f"file://{root}/", created_since=since, created_before=before,
        **options).execute({})
    finished = time.time()
    after = served.log(len(seen), earlier["answers"])
    paths, times, statuses = after["paths"], after["times"], after["statuses"]
    throttled = sum(statuses.get(s, 0) - before_statuses.get(s, 0) for s in ("403", "429"))
    token = sum(1 for p in paths if p.startswith("/oauth2/"))
    api_times = [t for p, t in zip(paths, times, strict=True) if not p.startswith("/oauth2/")]
    return {"manifest": manifest, "paths": paths, "ok": after["ok"], "requests": len(paths) - token, "token": token,
            "seconds": finished - started, "throttled": throttled, "timing": _timing(started, finished, api_times)}


def _timing(started: float, finished: float, times: list[float]) -> dict[str, float]:
    """Where a run's wall time went: before its first API request, from its first to its last, after its last."""
    if not times:
        return {"lead": finished - started, "span": 0.0, "tail": 0.0}
    return {"lead": times[0] - started, "span": times[-1] - times[0], "tail": finished - times[-1]}


def _pages(paths: list[str]) -> Counter[tuple[str, str]]:
    """Tracking pages per (campaign or activity, report) among ``paths``."""
    pages: Counter[tuple[str, str]] = Counter()
    for path in paths:
        match = TRACKING.fullmatch(path)
        if match:
            pages[(match[1] or match[3], match[2] or match[4])] += 1
    return pages


def _bounds(data: dict[str, Any]) -> dict[str, Any]:
    """Each API's lower bound for the whole account, per (campaign or activity, report) on the APIs' names."""
    from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
    from airflow_provider_cc.reports import v3_report

    emu = Emulator(DataConfig.realistic(**data), v3=V3Options(resend_every=3))  # never started: its data only
    try:
        v2: dict[tuple[str, str], int] = {}
        for campaign in emu.dataset.campaigns.values():
            if campaign.status == "SENT":
                for report in REPORTS:
                    v2[(campaign.id, report)] = math.ceil(len(emu.records(campaign.id, report)) / PAGE)
        v3: dict[tuple[str, str], int] = {}
        informed = 0
        view = emu.v3.view
        for c in view.campaigns.values():
            if c.status != "SENT":
                continue
            for report in REPORTS:
                segment = v3_report(report).segment
                served = {a.id: len(emu.v3_records(a.id, segment)) for a in view.reported(c)}
                for aid, n in served.items():
                    v3[(aid, segment)] = math.ceil(n / PAGE)
                if any(served.values()):
                    informed += sum(max(1, math.ceil(n / PAGE)) for n in served.values())
        campaigns = sum(1 for c in view.campaigns.values() if c.status == "SENT")
        records = sum(len(emu.records(c.id, r)) for c in emu.dataset.campaigns.values() if c.status == "SENT"
                      for r in REPORTS)
    finally:
        emu.server.server_close()
    return {"v2": v2, "v3": v3, "v3 informed": informed, "v3 campaigns": campaigns, "records": records}


def _excess(pages: Counter[tuple[str, str]], bound: dict[tuple[str, str], int]) -> tuple[int, list[str]]:
    """Tracking pages above the bound, and the worst units."""
    over = {k: pages[k] - bound.get(k, 0) for k in set(pages) | set(bound) if pages[k] != bound.get(k, 0)}
    worst = sorted(over.items(), key=lambda kv: -kv[1])[:5]
    return sum(v for v in over.values() if v > 0), [f"{k[0]}/{k[1]}: {pages[k]} pages, bound {bound.get(k, 0)}"
                                                    for k, _ in worst]


PARTS = ("history", "daily")


def _parts(args: argparse.Namespace) -> tuple[str, ...]:
    parts = tuple(p for p in str(args.av3_parts).split(",") if p)
    if not parts or set(parts) - set(PARTS):
        raise SystemExit(f"--av3-parts={args.av3_parts!r}: give history, daily or history,daily")
    return parts


def section(args: argparse.Namespace, work: Path) -> str:
    parts = _parts(args)
    data = {"weeks": args.av3_weeks, "activities": args.av3_activities}
    rps = args.av3_rps
    bounds = _bounds(data)
    tokens = tempfile.mkdtemp(prefix="cc-bench-tokens-")
    from airflow_provider_cc.emulator import DataConfig
    from airflow_provider_cc.emulator.data import Dataset

    dataset = Dataset(DataConfig.realistic(**data))
    first_ms = min(c.run_ms for c in dataset.campaigns.values() if c.status == "SENT")
    start = datetime.fromtimestamp(first_ms / 1000, tz=timezone.utc).replace(hour=0, minute=0, second=0,
                                                                             microsecond=0)
    end = datetime.fromtimestamp(dataset.end_ms / 1000, tz=timezone.utc).replace(hour=3, minute=0, second=0,
                                                                                 microsecond=0)
    history_end = end + DAY  # after the data's end: the history window holds every record
    results: dict[str, dict[str, Any]] = {}
    with Served(data, rps, args.av3_latency) as served:
        for api in ("v2", "v3"):
            results[api] = {}
            if "history" in parts:
                print(f"  account on {api}: history at {rps:g} requests/s, {args.av3_latency:g} s latency...",
                      flush=True)
                results[api]["history"] = _run(served, api, work / f"{api}-history", start, history_end, tokens, rps)
            if "daily" not in parts:
                continue
            print(f"  account on {api}: daily runs...", flush=True)
            first_day = end - DAY * args.av3_days
            root = work / f"{api}-daily"
            daily: list[dict[str, Any]] = []
            for k in range(-8, args.av3_days):  # a run that fills the caches, a week of re-checks, then measured
                since = first_day + DAY * k
                served.set_now(since + DAY + timedelta(minutes=1))
                run = _run(served, api, root, since, since + DAY, tokens, rps, **DAILY)
                if k >= 0:
                    daily.append(run)
            served.set_now(None)
            results[api]["daily"] = daily
    if args.av3_dump is not None:
        args.av3_dump.write_text(json.dumps({api: {part: [{"/".join(k): n for k, n in _pages(run["ok"]).items()}
                                                         for run in (r if isinstance(r, list) else [r])]
                                                   for part, r in runs.items()} for api, runs in results.items()}))
    return render(args, bounds, results)


def render(args: argparse.Namespace, bounds: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    rps = args.av3_rps
    rows: dict[str, list[str]] = {}
    verdicts: list[str] = []
    diagnosis: list[str] = []
    for api in ("v2", "v3"):
        if "history" in results[api]:
            verdicts += _history_rows(rows, diagnosis, api, results[api]["history"], bounds, rps)
        if "daily" in results[api]:
            _daily_rows(rows, results[api]["daily"])
    if all("daily" in results[api] for api in ("v2", "v3")):
        v2d, v3d = ([d["requests"] for d in results[api]["daily"]] for api in ("v2", "v3"))
        worse = [(k, a, b) for k, (a, b) in enumerate(zip(v2d, v3d, strict=True)) if b > a]
        more = f"; more on v3 on {len(worse)} of {len(v2d)} days" if worse else ""
        verdicts.append(f"daily run on v3 ≤ on v2, day by day: {verdict(not worse)} (v3 {sum(v3d):,} requests in "
                        f"all, v2 {sum(v2d):,}{more})")
    w, a, d = args.av3_weeks, args.av3_activities, args.av3_days

    def row(label: str, key: str) -> str:
        return f"| {label} | {' | '.join(rows[key])} |"

    lines = [
        f"The emulator's realistic account, {w} weekly sends of {a:,} contacts (`DataConfig.realistic(weeks={w}, "
        f"activities={a})`, {bounds['records']:,} records in the six reports), served through both APIs from the "
        f"emulator's own process; on v3 every third send is the previous campaign's resend, so the same records "
        f"make {bounds['v3 campaigns']} v3 campaigns. The emulator enforces {rps:g} requests/s per key and adds "
        f"{args.av3_latency * 1000:.0f} ms to every answer; the connections ask for {rps:g} requests/s. Requests "
        "are counted by the emulator (token calls apart).", ""]
    if "requests" in rows:
        lines += [
            "## Account on v2 and v3: history load of the whole account, one task", "",
            "| | v2 | v3 |", "|---|---:|---:|",
            row("requests", "requests"),
            row("of which choosing the campaigns (`requests_selection`)", "selection"),
            row("of which pulling the reports", "pulling"),
            row("lower bound, Σ ⌈records / 500⌉ per (campaign or activity, report)", "bound"),
            row("bound knowing only per-campaign totals (≥ 1 page per activity of a non-empty campaign report)",
                "informed"),
            row("pulling / lower bound", "ratio"),
            row("target: 1.05 x the bound + the selection", "target"),
            row("wall time", "seconds"),
            row(f"target: 1.1 x requests / {rps:g}", "ideal"),
            row("requests/s sustained", "pace"),
            row("wall time: before the first API request / from the first to the last / after the last", "timing"),
            row("token calls", "token"),
            row("throttled answers (403 over-qps, 429)", "throttled"),
            row("records, files", "records"),
            row("task instances", "tasks"), ""]
    else:
        lines += ["History load: not measured in this run (`--av3-parts daily`).", ""]
    if "daily" in rows:
        lines += [
            f"## Account on v2 and v3: daily runs (`sent_within=30 days`, `recheck_every=7 days`), the last {d} days",
            "", "| | v2 | v3 |", "|---|---:|---:|",
            row("requests, day by day", "daily"),
            row("of which choosing the campaigns", "daily selection"),
            row("of which throttled (403 over-qps, 429: the request is made again)", "daily throttled"),
            row("tracking pages answered", "daily pages"),
            row("reports pulled (campaign or activity, report), day by day", "daily units"),
            row(f"requests in the {d} days", "daily total"),
            row("token calls", "daily token"),
            row("task instances", "daily tasks"), ""]
    lines += ["Targets (issue 17): " + "; ".join(verdicts) + ".", ""]
    if diagnosis:
        lines += ["Pages above the bound: " + " ".join(diagnosis), ""]
    return "\n".join(lines)


def _history_rows(rows: dict[str, list[str]], diagnosis: list[str], api: str, h: dict[str, Any],
                  bounds: dict[str, Any], rps: float) -> list[str]:
    """The history table's cells of one API; its verdicts."""
    m = h["manifest"]
    bound = sum(bounds[api].values())
    selection = m["requests_selection"]
    target = 1.05 * bound + selection
    ideal = h["requests"] / rps
    excess, worst = _excess(_pages(h["ok"]), bounds[api])
    rows.setdefault("requests", []).append(f"{h['requests']:,}")
    rows.setdefault("selection", []).append(f"{selection:,}")
    rows.setdefault("pulling", []).append(f"{h['requests'] - selection:,}")
    rows.setdefault("bound", []).append(f"{bound:,}")
    rows.setdefault("informed", []).append(f"{bounds['v3 informed']:,}" if api == "v3" else "—")
    rows.setdefault("ratio", []).append(f"{(h['requests'] - selection) / bound:.3f}")
    rows.setdefault("target", []).append(f"{target:,.0f}")
    rows.setdefault("seconds", []).append(f"{h['seconds']:,.1f} s")
    rows.setdefault("ideal", []).append(f"{1.1 * ideal:,.1f} s")
    rows.setdefault("pace", []).append(f"{h['requests'] / h['seconds']:.2f}")
    t = h["timing"]
    rows.setdefault("timing", []).append(f"{t['lead']:.1f} / {t['span']:.1f} / {t['tail']:.1f} s")
    rows.setdefault("token", []).append(f"{h['token']}")
    rows.setdefault("throttled", []).append(f"{h['throttled']}")
    rows.setdefault("records", []).append(f"{m['records']:,} in {m['files_count']:,} files")
    rows.setdefault("tasks", []).append("1")
    if excess:
        diagnosis.append(f"{api}: {excess} tracking pages above the bound; e.g. " + "; ".join(worst))
    return [f"{api} history ≤ 1.05 x the lower bound + the selection's requests = {target:,.0f}: "
            f"{verdict(h['requests'] <= target)} ({h['requests']:,})",
            f"{api} wall time ≤ 1.1 x requests / {rps:g} = {1.1 * ideal:,.1f} s: "
            f"{verdict(h['seconds'] <= 1.1 * ideal)} ({h['seconds']:,.1f} s)"]


def _daily_rows(rows: dict[str, list[str]], daily: list[dict[str, Any]]) -> None:
    """The daily table's cells of one API."""
    pages = [_pages(d["ok"]) for d in daily]  # pages answered: a throttled request is not a page read
    rows.setdefault("daily", []).append(", ".join(str(d["requests"]) for d in daily))
    rows.setdefault("daily selection", []).append(", ".join(str(d["manifest"]["requests_selection"]) for d in daily))
    rows.setdefault("daily pages", []).append(", ".join(str(sum(p.values())) for p in pages))
    rows.setdefault("daily units", []).append(", ".join(str(len(p)) for p in pages))
    rows.setdefault("daily throttled", []).append(", ".join(str(d["throttled"]) for d in daily))
    rows.setdefault("daily total", []).append(f"{sum(d['requests'] for d in daily):,}")
    rows.setdefault("daily token", []).append(f"{sum(d['token'] for d in daily)}")
    rows.setdefault("daily tasks", []).append(f"{len(daily)} (1 a day)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "serve":
        serve(sys.argv[2])
        sys.exit(0)
    sys.exit("run through bench/run.py: python bench/run.py --only account_v3")
