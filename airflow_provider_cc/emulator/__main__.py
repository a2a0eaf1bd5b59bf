"""``python -m airflow_provider_cc.emulator --port 8099``: serve the v2 emulator until interrupted.

It prints where it listens, then a line to paste into the shell that runs Airflow, which points
``constant_contact_default`` at it (the emulator's own key and token: no real account's secrets).
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from typing import TYPE_CHECKING

from airflow_provider_cc.emulator import DEFAULT_API_KEY, DEFAULT_TOKEN, DataConfig, Emulator, FaultConfig

if TYPE_CHECKING:
    from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options: data size, credentials and fault knobs."""
    p = argparse.ArgumentParser(prog="python -m airflow_provider_cc.emulator",
                                description="Constant Contact v2 tracking API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    p.add_argument("--api-key", default=DEFAULT_API_KEY)
    p.add_argument("--token", default=DEFAULT_TOKEN)
    d = DataConfig()
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--campaigns", type=int, default=d.campaigns, help="SENT campaigns")
    p.add_argument("--contacts", type=int, default=d.contacts)
    p.add_argument("--activities", type=int, default=d.activities, help="sends per SENT campaign")
    p.add_argument("--start", default=d.start, help="first send time (ISO-8601)")
    p.add_argument("--days", type=float, default=d.days)
    f = FaultConfig()
    p.add_argument("--qps", type=float, default=f.qps, help="requests/s per key before 403 over.qps (0: off)")
    p.add_argument("--daily-quota", type=int, default=f.daily_quota, help="0: off")
    p.add_argument("--error-rate", type=float, default=f.error_rate, help="fraction of 500 answers")
    p.add_argument("--latency", type=float, default=f.latency, help="seconds added to each answer")
    p.add_argument("--drop-rate", type=float, default=f.drop_rate, help="fraction of dropped connections")
    p.add_argument("--malformed-rate", type=float, default=f.malformed_rate, help="fraction of cut JSON bodies")
    p.add_argument("--fault-seed", type=int, default=f.seed)
    p.add_argument("--cache-pages", action="store_true",
                   help="serve repeated requests from stored bytes (for benchmarks)")
    return p.parse_args(argv)


def connection_line(emulator: Emulator) -> str:
    """``export AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT='{...}'`` for this emulator, quoted for a POSIX shell."""
    return f"export AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT={shlex.quote(json.dumps(emulator.connection()))}"


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulator and block until SIGINT or SIGTERM; 2 when the address cannot be bound."""
    a = parse_args(argv)
    data = DataConfig(seed=a.seed, campaigns=a.campaigns, contacts=a.contacts, activities=a.activities,
                      start=a.start, days=a.days)
    faults = FaultConfig(qps=a.qps, daily_quota=a.daily_quota, error_rate=a.error_rate, latency=a.latency,
                         drop_rate=a.drop_rate, malformed_rate=a.malformed_rate, seed=a.fault_seed)
    try:
        emulator = Emulator(data, faults, host=a.host, port=a.port, api_key=a.api_key, token=a.token,
                            cache_pages=a.cache_pages)
    except OSError as exc:  # busy port, privileged port, unknown host: one line, not a traceback
        print(f"emulator: cannot listen on {a.host}:{a.port} ({exc.strerror or exc}); "
              f"choose another port with --port (0 picks a free one)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # bench/run.py and the tests read the URL from this first line ("... on http://HOST:PORT ...").
    print(f"Constant Contact v2 emulator listening on {emulator.url} "
          f"(api_key={emulator.api_key}, token={emulator.token})", flush=True)
    print(f"Point Airflow at it (paste into the shell that runs Airflow):\n{connection_line(emulator)}", flush=True)
    try:
        emulator.server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        emulator.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
