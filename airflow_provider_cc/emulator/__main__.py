"""``python -m airflow_provider_cc.emulator --port 8099 [--api v2|v3|both]``: serve the emulator until interrupted.

It serves one account through v2 and v3 (with its OAuth2 server) at once. It prints where it listens, then a
line to paste into the shell that runs Airflow, which points ``constant_contact_default`` (v2) or
``constant_contact_v3_default`` (v3, with a refresh token the emulator issued) at it: the emulator's own
credentials, no real account's secrets. With ``--api v3`` (or ``both``) it also prints the login command that
gets a refresh token from it through the device flow, as from Constant Contact.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from typing import TYPE_CHECKING

from airflow_provider_cc.emulator import DEFAULT_API_KEY, DEFAULT_TOKEN, DataConfig, Emulator, FaultConfig, V3Options

if TYPE_CHECKING:
    from collections.abc import Sequence

LOGIN_TOKEN_STORE = "/tmp/cc-emulator-tokens"  # the printed login command's store: a directory, no Airflow DB


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options: data size, credentials and fault knobs."""
    p = argparse.ArgumentParser(prog="python -m airflow_provider_cc.emulator",
                                description="Constant Contact tracking API emulator: v2, and v3 with its OAuth2 server")
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
    p.add_argument("--api", choices=("v2", "v3", "both"), default="v2",
                   help="which connection line to print (both APIs are always served)")
    o = V3Options()
    p.add_argument("--client-id", default=o.client_id, help="v3: the application's client id")
    p.add_argument("--client-secret", default=o.client_secret, help="v3: its secret")
    p.add_argument("--refresh-mode", choices=("rotating", "long_lived"), default=o.mode)
    p.add_argument("--access-token-lifetime", type=float, default=o.access_token_lifetime,
                   help="v3: seconds an access token lives (short values force refreshes mid-run)")
    p.add_argument("--device-interval", type=float, default=o.device_interval)
    p.add_argument("--resend-every", type=int, default=o.resend_every,
                   help="v3: every n-th SENT campaign is served as its predecessor's resend (0: none)")
    p.add_argument("--string-counts", action="store_true", help="v3: bulk summaries' counts as strings")
    p.add_argument("--dotted-stats", action="store_true", help="v3: activity-stats keys dotted")
    return p.parse_args(argv)


def connection_line(emulator: Emulator, api: str = "v2") -> str:
    """``export AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT='{...}'`` (v2) or ``..._V3_DEFAULT`` (v3) for this
    emulator, quoted for a POSIX shell. The fields are the forms' (the v2 API key as the login), the port in
    its own field as well, which Airflow 3.3's Test button needs for a connection stored in its database."""
    port = emulator.server.server_address[1]
    if api == "v3":
        connection = {**emulator.v3_connection(), "port": port}
        return f"export AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT={shlex.quote(json.dumps(connection))}"
    connection = {"conn_type": "constant_contact", "host": emulator.url, "port": port, "login": emulator.api_key,
                  "password": emulator.token}
    return f"export AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT={shlex.quote(json.dumps(connection))}"


def login_line(emulator: Emulator, client_id: str) -> str:
    """The login command that gets a v3 refresh token from this emulator (the device flow; a person approves
    the code on the page the command prints). Its tokens go to a directory, so it needs no Airflow database."""
    return ("python -m airflow_provider_cc.auth login " + " ".join(
        shlex.quote(word) for word in ("--client-id", client_id, "--token-url", emulator.token_url, "--host",
                                       emulator.url, "--token-store", LOGIN_TOKEN_STORE)))


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulator and block until SIGINT or SIGTERM; 2 when the address cannot be bound."""
    a = parse_args(argv)
    data = DataConfig(seed=a.seed, campaigns=a.campaigns, contacts=a.contacts, activities=a.activities,
                      start=a.start, days=a.days)
    faults = FaultConfig(qps=a.qps, daily_quota=a.daily_quota, error_rate=a.error_rate, latency=a.latency,
                         drop_rate=a.drop_rate, malformed_rate=a.malformed_rate, seed=a.fault_seed)
    v3 = V3Options(client_id=a.client_id, client_secret=a.client_secret, mode=a.refresh_mode,
                   access_token_lifetime=a.access_token_lifetime, device_interval=a.device_interval,
                   resend_every=a.resend_every, string_counts=a.string_counts, dotted_stats=a.dotted_stats)
    try:
        emulator = Emulator(data, faults, host=a.host, port=a.port, api_key=a.api_key, token=a.token,
                            cache_pages=a.cache_pages, v3=v3)
    except OSError as exc:  # busy port, privileged port, unknown host: one line, not a traceback
        print(f"emulator: cannot listen on {a.host}:{a.port} ({exc.strerror or exc}); "
              f"choose another port with --port (0 picks a free one)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # bench/run.py and the tests read the URL from this first line ("... on http://HOST:PORT ...").
    print(f"Constant Contact emulator listening on {emulator.url} (the v2 API: api_key={emulator.api_key}, "
          f"token={emulator.token}; the v3 API and its OAuth2 server: client_id={a.client_id}, "
          f"{a.refresh_mode.replace('_', '-')} refresh tokens, token URL {emulator.token_url})", flush=True)
    apis = ("v2", "v3") if a.api == "both" else (a.api,)
    for api in apis:
        print(f"Point Airflow at it ({api}; paste into the shell that runs Airflow):\n{connection_line(emulator, api)}",
              flush=True)
    if "v3" in apis:
        print(f"Or log in to it as to Constant Contact (device flow; open the page it prints and press Approve):\n"
              f"{login_line(emulator, a.client_id)}", flush=True)
    try:
        emulator.server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        emulator.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
