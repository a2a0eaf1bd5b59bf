"""Issue 21, item 20: with two accounts on one client id and the Redis limiter, do the 429s come from the limiter or
from the emulator's clock?

Two task processes, each on a v3 connection of its own (its own refresh-token chain: another account) with the
same client id, share the key's limiter through Redis (a real redis-server) at 4 requests/s; each pulls one
activity's report in small pages from the emulator, which allows 4 requests/s per client and adds ``latency``
seconds to every answer. Run twice:

* ``after latency``: the emulator decides (counts) a request once its latency has passed, as it did before;
* ``on arrival``: it counts a request when it arrives, as a gateway does (the emulator now).

Every request's arrival time is recorded; replaying the emulator's rule on them says how many 429s a server
counting arrivals would have answered. If the 429s of ``after latency`` vanish when the same arrivals are counted
as they arrived, the emulator's clock made them; 429s that remain come from arrivals closer than the limiter
allows (the limiter, or the time between its grant and the request's arrival).

    PYTHONPATH=. python tests/emulator/shared_client_id.py [--pages 150] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PAGE = 5
QPS = 4


def task(activity_id: str) -> None:
    """One task process: build the hook, say ready, wait for the common start, pull the report."""
    from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

    hook = ConstantContactV3Hook()
    hook.transport  # noqa: B018 (connection read, limiter ready)
    hook.tokens.access_token()  # the token call is not part of the race
    print("ready", flush=True)
    sys.stdin.readline()
    stream = hook.iter_activity_tracking(activity_id, "sends", limit=PAGE)
    try:
        print(json.dumps({"records": sum(1 for _ in stream), "pages": stream.pages, "failed": None}), flush=True)
    except Exception as exc:  # a task that gives up is a figure too
        print(json.dumps({"records": 0, "pages": stream.pages, "failed": type(exc).__name__}), flush=True)


def replay(arrivals: list[float]) -> int:
    """How many requests a server counting arrivals (the emulator's rule: at most QPS in any 1.0 s) refuses."""
    recent: deque[float] = deque()
    refused = 0
    for now in sorted(arrivals):
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        if len(recent) >= QPS:
            refused += 1
            continue
        recent.append(now)
    return refused


def closest(arrivals: list[float]) -> float:
    """The shortest time in which QPS + 1 requests arrived (under 1 s: one more than a second allows)."""
    ordered = sorted(arrivals)
    return min((ordered[i + QPS] - ordered[i] for i in range(len(ordered) - QPS)), default=float("inf"))


def near(moments: list[float], within: float = 1.02) -> int:
    """How many times QPS + 1 requests came within ``within`` seconds (a second and 20 ms: near misses)."""
    ordered = sorted(moments)
    return sum(1 for i in range(len(ordered) - QPS) if ordered[i + QPS] - ordered[i] < within)


def run_mode(mode: str, pages: int, latency: float, redis_url: str, work: Path) -> dict[str, Any]:
    from airflow_provider_cc.emulator import DataConfig, Emulator, FaultConfig, V3Options

    emu = Emulator(DataConfig(campaigns=2, contacts=2000, activities=pages * PAGE),
                   FaultConfig(qps=QPS, latency=latency if mode == "on arrival" else 0.0),
                   v3=V3Options(resend_every=0, token_calls_per_second=0)).start()
    lock = threading.Lock()
    seen: list[tuple[float, float, str | None]] = []
    decide = emu.v3.faults.decide

    def recorded() -> str | None:  # runs when the request arrives
        arrived = time.monotonic()
        if mode == "after latency":
            time.sleep(latency)  # the emulator as it was: the latency first, then the count
        decided = time.monotonic()
        fault = decide()
        with lock:
            seen.append((arrived, decided, fault))
        return fault

    emu.v3.faults.decide = recorded  # type: ignore[method-assign]
    activities = [emu.v3_activity_ids()[k] for k in range(2)]
    procs = []
    try:
        for number, activity in enumerate(activities):
            connection = emu.v3_connection(oauth_store=str(work / f"tokens-{mode}-{number}"), requests_per_second=QPS,
                                           rate_limiter_url=redis_url, max_retries=10)
            env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR", "PYTHONPATH": str(ROOT),
                   "AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT": json.dumps(connection)}
            procs.append(subprocess.Popen([sys.executable, __file__, "task", activity], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env))
        for proc in procs:
            assert proc.stdout is not None
            for _ in range(50):
                line = proc.stdout.readline()
                if line.strip() == "ready" or not line:
                    break
            if line.strip() != "ready":
                raise RuntimeError("a task did not start")
        with lock:
            seen.clear()
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.communicate(timeout=1800)[0].strip().splitlines()[-1]) for proc in procs]
        seconds = time.perf_counter() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        emu.stop()
    arrivals, decisions = [a for a, _, _ in seen], [d for _, d, _ in seen]
    return {"mode": mode, "requests": len(seen), "answered_429": sum(1 for _, _, f in seen if f == "qps"),
            "429_if_counted_on_arrival": replay(arrivals), "closest_5_arrivals_s": round(closest(arrivals), 3),
            "closest_5_counts_s": round(closest(decisions), 3), "near_misses_arrivals": near(arrivals),
            "near_misses_counts": near(decisions),
            "failed_tasks": sum(1 for r in results if r["failed"]), "records": sum(r["records"] for r in results),
            "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=150, help="pages each of the two tasks pulls")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the emulator adds to every answer")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each mode")
    args = parser.parse_args(argv)
    from tests.redis_server import RedisServer

    rows = []
    with RedisServer() as redis, tempfile.TemporaryDirectory() as tmp:
        for number in range(args.rounds):
            for mode in ("after latency", "on arrival"):
                client = redis.client()
                client.flushall()
                rows.append(run_mode(mode, args.pages, args.latency, redis.url, Path(tmp) / str(number)))
                print(json.dumps(rows[-1]), flush=True)
    print("\n| emulator counts | requests | 429 answered | 429 had it counted arrivals | closest 5 counts (s) | "
          "closest 5 arrivals (s) | 5 counted within 1.02 s | 5 arrived within 1.02 s | tasks failed | wall (s) |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['requests']} | {r['answered_429']} | {r['429_if_counted_on_arrival']} | "
              f"{r['closest_5_counts_s']} | {r['closest_5_arrivals_s']} | {r['near_misses_counts']} | "
              f"{r['near_misses_arrivals']} | {r['failed_tasks']} | {r['seconds']} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "task":
        task(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
