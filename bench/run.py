"""Benchmarks: throughput, rate-limit ceiling, memory and the emulator's ceiling, side by side.

Run with ``python3 scripts/run.py bench`` (it installs what it needs). Every figure comes from this one run
on the same synthetic data, served by the emulator in its own process. Results go to docs/benchmarks.md.

    bench/run.py [--runs 3] [--records 200000] [--output docs/benchmarks.md] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="cc-bench-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

API_KEY, TOKEN = "bench-key", "bench-token"
# Contacts of the emulator's synthetic account in the core sections (record ids repeat after this many). The
# smoke run uses fewer: an emulator builds every contact's v3 id at start (8 CPU-seconds for a million).
CONTACTS = 1_000_000
ALL_TIME = {"data_interval_start": "2000-01-01T00:00:00Z", "data_interval_end": "2100-01-01T00:00:00Z"}


# ---- the emulator, in its own process --------------------------------------------------------------------
class EmulatorProcess:
    """``python -m airflow_provider_cc.emulator`` on a free port, stopped on exit."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "airflow_provider_cc.emulator", "--port", "0",
                                      "--api-key", API_KEY, "--token", TOKEN, *args],
                                     stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split(" on ")[1].split()[0]  # type: ignore[union-attr]

    def stats(self) -> dict[str, Any]:
        import requests

        return requests.get(self.url + "/_emulator/stats", timeout=10).json()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# ---- a task in a process of its own --------------------------------------------------------------------------
def start_script(script: Path, *args: str, env: dict[str, str], warm: bool = False) -> Any:
    """``python script *args`` with ``env``, its stdin, stdout and stderr on text pipes (a ``subprocess.Popen``).

    The benchmark measures fresh interpreters (a task process's peak memory). ``warm`` (the smoke run, whose
    figures are not kept) forks one that imported Airflow and the provider once instead (tests/warm.py): the
    same code in a process of its own, without the 3 CPU-seconds each new interpreter spends importing Airflow.
    """
    if not warm:
        return subprocess.Popen([sys.executable, str(script), *args], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return _forks().start(f"import runpy\nrunpy.run_path({str(script)!r}, run_name='__main__')", *args, env=env,
                          cwd=str(ROOT))


def run_script(script: Path, *args: str, env: dict[str, str], warm: bool = False,
               timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """:func:`start_script` to its end: what ``subprocess.run`` with ``capture_output=True`` returns."""
    command = [sys.executable, str(script), *args]
    if not warm:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return _forks().finish(start_script(script, *args, env=env, warm=True), command, timeout)


def _forks() -> Any:
    """tests/warm.py, the tests' warm task processes."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests import warm

    return warm


def connection(url: str, rps: float) -> str:
    return json.dumps({"conn_type": "constant_contact", "host": url, "password": TOKEN,
                       "extra": {"api_key": API_KEY, "requests_per_second": rps}})


# ---- the three ways to pull a report -----------------------------------------------------------------------
def provider(url: str, cid: str, out: Path, rps: float = 0, **context: Any) -> int:
    """(a) the provider's operator path: hook, paging, window filter, atomic JSON-lines writer."""
    os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = connection(url, rps)
    from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator

    op = ConstantContactCampaignTrackingOperator(task_id="bench", campaign_id=cid, report="sends",
                                                 destination=f"file://{out}")
    result = op.execute({**ALL_TIME, **context})
    return result["records"] if isinstance(result, dict) else len(result)


def minimal_loop(url: str, cid: str, out: Path, retry_403: bool = False) -> int:
    """(b) the floor for Python: a requests.Session following next_link, writing JSON lines."""
    import requests

    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
    link: str | None = f"/v2/emailmarketing/campaigns/{cid}/tracking/sends?limit=500"
    count = 0
    with out.open("w") as f:
        while link:
            response = session.get(url + link, params={"api_key": API_KEY}, timeout=60)
            if response.status_code == 403 and retry_403:
                time.sleep(1)
                continue
            body = response.json()
            f.write("".join(json.dumps(r) + "\n" for r in body["results"]))
            count += len(body["results"])
            link = body["meta"]["pagination"].get("next_link")
    return count


def http_operator(url: str, cid: str, out: Path) -> int:
    """(c) what an Airflow user would otherwise write: HttpOperator with a pagination_function."""
    from urllib.parse import urlsplit

    from airflow.providers.http.operators.http import HttpOperator

    parts = urlsplit(url)
    os.environ["AIRFLOW_CONN_CC_HTTP"] = json.dumps({"conn_type": "http", "host": parts.hostname,
                                                     "port": parts.port, "schema": "http"})

    def next_page(response: Any) -> dict[str, Any] | None:
        link = response.json()["meta"]["pagination"].get("next_link")
        if not link:
            return None
        path, _, query = link.partition("?")
        return {"endpoint": path, "data": {"api_key": API_KEY, "next": query.removeprefix("next=")}}

    def write(responses: list[Any]) -> int:
        count = 0
        with out.open("w") as f:
            for response in responses:
                results = response.json()["results"]
                f.write("".join(json.dumps(r) + "\n" for r in results))
                count += len(results)
        return count

    op = HttpOperator(task_id="http", http_conn_id="cc_http", method="GET",
                      endpoint=f"/v2/emailmarketing/campaigns/{cid}/tracking/sends",
                      data={"api_key": API_KEY, "limit": 500},
                      headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
                      pagination_function=next_page, response_filter=write, log_response=False)
    return op.execute({})


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, float]:
    start = time.perf_counter()
    count = fn(*args, **kwargs)
    return count, time.perf_counter() - start


# ---- the measurements ------------------------------------------------------------------------------------------
def throughput(records: int, runs: int, work: Path, warm_up: bool = True) -> dict[str, Any]:
    """Unthrottled extraction of one report of ``records`` records, median of ``runs`` (after a warm-up run of
    each way, unless ``warm_up`` is false: the smoke run)."""
    ways = {"provider operator (a)": provider, "minimal requests loop (b)": minimal_loop,
            "HttpOperator + pagination_function (c)": http_operator}
    rates: dict[str, list[float]] = {name: [] for name in ways}
    counts: dict[str, int] = {}
    with EmulatorProcess("--campaigns", "1", "--contacts", str(records), "--activities", str(records),
                         "--cache-pages") as emu:
        cid = "1100394165000"
        for fn in ways.values() if warm_up else ():  # warm-up: imports, connections, caches
            fn(emu.url, cid, work / "warm.jsonl")
        for _ in range(runs):
            for name, fn in ways.items():
                count, seconds = timed(fn, emu.url, cid, work / "out.jsonl")
                counts[name] = count
                rates[name].append(count / seconds)
    floor = statistics.median(rates["minimal requests loop (b)"])
    return {name: {"records": counts[name], "records_per_s": statistics.median(r),
                   "ratio_to_minimal": statistics.median(r) / floor, "runs": [round(x) for x in r]}
            for name, r in rates.items()}


def rate_limited(pages: int, work: Path, contacts: int = CONTACTS) -> dict[str, Any]:
    """Against 4 requests/s enforced with 403 over.qps: sustained requests/s and 403s received."""
    out: dict[str, Any] = {}
    for name in ("provider operator (a)", "minimal requests loop (b)"):
        with EmulatorProcess("--campaigns", "1", "--contacts", str(contacts), "--activities", str(pages * 500),
                             "--qps", "4") as emu:
            cid = "1100394165000"
            if name.startswith("provider"):
                _, seconds = timed(provider, emu.url, cid, work / "rl.jsonl", rps=4)
            else:
                _, seconds = timed(minimal_loop, emu.url, cid, work / "rl.jsonl", retry_403=True)
            statuses = emu.stats()["statuses"]
        ok = statuses.get("200", 0)
        rate = (ok - 1) / seconds  # n request starts span n - 1 intervals: the conservative sustained rate
        out[name] = {"pages": ok, "seconds": seconds, "requests_per_s": rate, "fraction_of_4": rate / 4,
                     "records_per_s": rate * 500, "throttled_403": statuses.get("403", 0)}
    return out


def _status_mb(field: str) -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def memory_child(records: int, mode: str) -> None:
    """One task in a fresh process; prints its RSS before the task and its peak RSS during it, in MB.

    Imports come first, then the kernel's high-water mark is reset (``/proc/self/clear_refs``), so the peak
    is the task's own and not an import-time spike.
    """
    import airflow_provider_cc.operators.tracking  # noqa: F401  (imports before the baseline)
    from airflow_provider_cc.emulator.data import DataConfig, Dataset
    from airflow_provider_cc.reports import REPORTS

    url = os.environ["BENCH_EMULATOR_URL"]
    data = Dataset(DataConfig(campaigns=1, contacts=int(os.environ["BENCH_CONTACTS"]),
                              activities=int(os.environ["BENCH_ACTIVITIES"])))
    campaign = next(iter(data.campaigns.values()))
    view = data.campaign_view(campaign, REPORTS["sends"])
    since = data.record(view, records - 1)["send_date"]  # the newest `records` records (ties may add one)
    context = {"data_interval_start": since, "data_interval_end": ALL_TIME["data_interval_end"]}
    Path("/proc/self/clear_refs").write_text("5")
    baseline = _status_mb("VmRSS")
    with tempfile.TemporaryDirectory() as tmp:
        if mode == "file":
            count = provider(url, campaign.id, Path(tmp) / "m.jsonl", **context)
        else:
            count = _xcom(url, campaign.id, records, context)
    print(json.dumps({"records": count, "peak_rss_mb": _status_mb("VmHWM"), "before_task_mb": baseline}))


def _xcom(url: str, cid: str, records: int, context: dict[str, Any]) -> int:
    os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = connection(url, 0)
    from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator

    op = ConstantContactCampaignTrackingOperator(task_id="bench", campaign_id=cid, report="sends",
                                                 max_xcom_records=records + 1)
    return len(op.execute(context))


def memory(sizes: list[int], xcom_sizes: list[int], contacts: int = CONTACTS, warm: bool = False) -> dict[str, Any]:
    """Peak RSS of a whole task process per size, to a file and to XCom (``warm``: :func:`start_script`)."""
    activities = max(sizes + xcom_sizes)
    out: dict[str, Any] = {}
    with EmulatorProcess("--campaigns", "1", "--contacts", str(contacts), "--activities", str(activities)) as emu:
        env = {**os.environ, "BENCH_EMULATOR_URL": emu.url, "BENCH_ACTIVITIES": str(activities),
               "BENCH_CONTACTS": str(contacts)}
        for mode, mode_sizes in (("file", sizes), ("xcom", xcom_sizes)):
            for size in mode_sizes:
                proc = run_script(Path(__file__), "memory-child", str(size), mode, env=env, warm=warm)
                if proc.returncode:
                    raise RuntimeError(f"memory child failed: {proc.stderr[-3000:]}")
                out[f"{mode} {size}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def emulator_ceiling(seconds: float, caches: tuple[bool, ...] = (False, True), contacts: int = CONTACTS
                     ) -> dict[str, Any]:
    """What the emulator itself can serve to one client that does nothing with the bodies (generating each page,
    and from its page cache: ``caches``)."""
    out: dict[str, Any] = {}
    for cache in caches:
        with EmulatorProcess("--campaigns", "1", "--contacts", str(contacts), "--activities", "1000000",
                             *(["--cache-pages"] if cache else [])) as emu:
            out.update(_ceiling(emu, seconds, " (page cache, as in section 1)" if cache else " (generating)"))
    return out


def _ceiling(emu: EmulatorProcess, seconds: float, label: str) -> dict[str, Any]:
    import requests

    out: dict[str, Any] = {}
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    for limit in (500, 1):
        url = f"{emu.url}/v2/emailmarketing/campaigns/1100394165000/tracking/sends?limit={limit}"
        start, pages = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            session.get(url, params={"api_key": API_KEY}, timeout=60).raise_for_status()
            pages += 1
        elapsed = time.perf_counter() - start
        out[f"limit={limit}{label}"] = {"requests_per_s": pages / elapsed, "records_per_s": pages * limit / elapsed}
    return out


# ---- report ------------------------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cores": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "airflow": version("apache-airflow"), "requests": version("requests"),
            "http provider": version("apache-airflow-providers-http"), "os": platform.platform()}


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def core_section(results: dict[str, Any]) -> str:
    t, rl, mem, ceil = results["throughput"], results["rate_limited"], results["memory"], results["ceiling"]
    lines = [
        "The emulator runs in its own process on 127.0.0.1 and serves the same synthetic data to every client.",
        "", f"## 1. Unthrottled extraction of a {results['records']:,}-record report to a JSON-lines file", "",
        f"Median of {results['runs']} interleaved runs, after one warm-up each. The emulator serves pages from "
        "its page cache (`--cache-pages`), filled by the warm-up, so that it is not the bottleneck.", "",
        "| way | records | records/s (median) | ratio to (b) | runs (records/s) |", "|---|---:|---:|---:|---|",
    ]
    for name, r in t.items():
        lines.append(f"| {name} | {r['records']:,} | {r['records_per_s']:,.0f} | {r['ratio_to_minimal']:.2f}x | "
                     f"{', '.join(f'{x:,}' for x in r['runs'])} |")
    a = t["provider operator (a)"]
    c = t["HttpOperator + pagination_function (c)"]
    lines += ["", f"Targets: provider ≥ 0.9x the minimal loop: {verdict(a['ratio_to_minimal'] >= 0.9)} "
                  f"({a['ratio_to_minimal']:.2f}x); provider ahead of (c): "
                  f"{verdict(a['records_per_s'] > c['records_per_s'])}.", "",
              "## 2. Rate-limited: the emulator enforces 4 requests/s, answering excess with 403 over.qps", "",
              "| way | pages | seconds | requests/s | fraction of 4 | records/s | 403s received |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rl.items():
        lines.append(f"| {name} | {r['pages']} | {r['seconds']:.1f} | {r['requests_per_s']:.2f} | "
                     f"{r['fraction_of_4']:.3f} | {r['records_per_s']:,.0f} | {r['throttled_403']} |")
    p = rl["provider operator (a)"]
    lines += ["", f"Targets: provider ≥ 0.95 of 4 requests/s: {verdict(p['fraction_of_4'] >= 0.95)} "
                  f"({p['fraction_of_4']:.3f}); 0 throttled: {verdict(p['throttled_403'] == 0)}.", "",
              "## 3. Memory: peak RSS of a task process (operator.execute, imports done before)", "",
              "| mode | records | peak RSS (MB) | RSS before the task ran (MB) |", "|---|---:|---:|---:|"]
    for name, r in mem.items():
        lines.append(f"| {name.split()[0]} | {r['records']:,} | {r['peak_rss_mb']:.1f} | {r['before_task_mb']:.1f} |")
    files = [r for name, r in mem.items() if name.startswith("file")]
    growth = (files[-1]["peak_rss_mb"] - files[-1]["before_task_mb"]) - (
        files[0]["peak_rss_mb"] - files[0]["before_task_mb"])
    lines += ["", f"Target: ≤ 30 MB growth from {files[0]['records']:,} to {files[-1]['records']:,} records "
                  f"written to a file: {verdict(growth <= 30)} ({growth:+.1f} MB of the task's own growth, peak minus "
                  f"RSS before). XCom mode holds the list it "
                  "returns, so it grows with the records; it is capped (`max_xcom_records`, default 1,000).", "",
              "## 4. The emulator's own ceiling (one client reading bodies without parsing them)", "",
              "| page size | requests/s | records/s |", "|---|---:|---:|"]
    for name, r in ceil.items():
        lines.append(f"| {name} | {r['requests_per_s']:,.0f} | {r['records_per_s']:,.0f} |")
    lines += ["", "Every client above shares the machine with the emulator; when a client's figure nears the "
                  "emulator's, the emulator is the bottleneck, not the client.", ""]
    return "\n".join(lines)


# Sections measured by their own modules, bench/<name>.py. Each has NAME, add_arguments(parser), smoke(args)
# (shrinks its sizes) and section(args, work) -> Markdown. Add a module's name here once it exists.
SECTION_MODULES: tuple[str, ...] = ("formats", "shared_key", "account", "daily_cost", "v3", "account_v3",
                                     "analytics_cost", "sent_campaign")


def section_modules() -> dict[str, Any]:
    import importlib

    sys.path.insert(0, str(ROOT / "bench"))
    return {name: importlib.import_module(name) for name in SECTION_MODULES}


def _block(name: str, text: str) -> str:
    return f"<!-- section:{name} -->\n{text.rstrip()}\n<!-- /section:{name} -->"


def write_report(path: Path, sections: dict[str, str], command: str, machine_line: str) -> None:
    """Write the report; sections not measured in this run keep their text from the existing report."""
    old = path.read_text() if path.exists() else ""
    blocks: dict[str, str] = {}
    for name in ("core", *SECTION_MODULES, "notes"):
        if name in sections:
            blocks[name] = _block(name, f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
                                        f"`{command}`; {machine_line}_\n\n{sections[name]}"
                                  if name != "notes" else sections[name])
        elif f"<!-- section:{name} -->" in old:
            start = old.index(f"<!-- section:{name} -->")
            end = old.index(f"<!-- /section:{name} -->") + len(f"<!-- /section:{name} -->")
            blocks[name] = old[start:end]
    path.write_text("# Benchmarks\n\nEach section says when and with which command it was measured; "
                    "`python3 scripts/run.py bench` measures them all, `--only NAME,...` some.\n\n"
                    + "\n\n".join(blocks.values()) + "\n")


def _clock() -> tuple[float, float]:
    """Wall and CPU seconds so far (this process and its waited-for children)."""
    import resource

    cpu = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))
    return time.perf_counter(), cpu


def _spent(started: tuple[float, float]) -> str:
    wall, cpu = _clock()
    return f"{wall - started[0]:.1f} s, {cpu - started[1]:.1f} CPU-seconds"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rate-limited-pages", type=int, default=40)
    parser.add_argument("--memory-sizes", default="10000,100000,1000000")
    parser.add_argument("--xcom-sizes", default="1000,100000")
    parser.add_argument("--ceiling-seconds", type=float, default=3.0)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--notes", type=Path, default=ROOT / "bench" / "notes.md",
                        help="analysis appended to the report")
    parser.add_argument("--only", default="", help="comma-separated sections to measure: core, "
                        + ", ".join(SECTION_MODULES) + " (default: all); the others keep their last figures")
    parser.add_argument("--contacts", type=int, default=CONTACTS,
                        help="contacts of the emulator's account in the core sections")
    parser.add_argument("--smoke", action="store_true",
                        help="for the test suite: each section's code once, at tiny sizes (no figure means anything)")
    modules = section_modules()
    for module in modules.values():
        module.add_arguments(parser)
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name] or ["core", *modules]
    unknown = [name for name in only if name != "core" and name not in modules]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from core, {', '.join(modules)}")
    if args.smoke:
        args.runs, args.records, args.rate_limited_pages, args.ceiling_seconds = 1, 3000, 3, 0.3
        args.memory_sizes, args.xcom_sizes, args.contacts = "3000", "500", 10_000
        for module in modules.values():
            module.smoke(args)
    command = "python3 scripts/run.py bench" + (f" --only {args.only}" if args.only else "") + (
        " --smoke" if args.smoke else "")
    info = machine()
    machine_line = "machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + "."
    sections: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "core" in only:
            started = _clock()
            results = {"records": args.records, "runs": args.runs, "machine": info}
            print("throughput...", flush=True)
            results["throughput"] = throughput(args.records, args.runs, work, warm_up=not args.smoke)
            print("rate-limited...", flush=True)
            results["rate_limited"] = rate_limited(args.rate_limited_pages, work, args.contacts)
            print("memory...", flush=True)
            results["memory"] = memory([int(s) for s in args.memory_sizes.split(",")],
                                       [int(s) for s in args.xcom_sizes.split(",")], args.contacts, args.smoke)
            print("emulator ceiling...", flush=True)
            # The smoke run serves the generated pages only; section 1 already serves from the page cache.
            results["ceiling"] = emulator_ceiling(args.ceiling_seconds, (False,) if args.smoke else (False, True),
                                                  args.contacts)
            sections["core"] = core_section(results)
            print(f"core: {_spent(started)}", flush=True)
        for name, module in modules.items():
            if name in only:
                print(f"{name}...", flush=True)
                started = _clock()
                sections[name] = module.section(args, work)
                print(f"{name}: {_spent(started)}", flush=True)
    if args.notes.exists() and not args.smoke:
        sections["notes"] = "## Notes\n\n" + args.notes.read_text()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_report(args.output, sections, command, machine_line)
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "memory-child":
        memory_child(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    sys.exit(main())
