"""What the account operator's dimensions and completeness check cost in requests (issue 23), measured on the
emulator's realistic account (8 weekly campaigns; v3: one in three with a resend), through both APIs:

* a history load (2022-01-01 .. 2023-01-01) with ``dimensions=True``, against the same load without them;
* then a daily run (2022-03-14 .. 03-15) on the warm state, with and without dimensions.

Requests are counted by what they ask for: the campaign list, activities and send histories (v3 campaign
activities dimension), links (v3), the activity stats (v3 completeness counts); v2's dimensions and counts come
from answers the selection reads anyway. No wall-clock figure: the emulator answers at once.

    PYTHONPATH=. python bench/analytics_cost.py
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options

HISTORY = {"data_interval_start": "2022-01-01T00:00:00Z", "data_interval_end": "2023-01-01T00:00:00Z"}
DAILY = {"data_interval_start": "2022-03-14T00:00:00Z", "data_interval_end": "2022-03-15T00:00:00Z"}
RETRY = {"requests_per_second": 0, "backoff": 0.01, "max_retries": 10}


def kind(path: str) -> str:
    """What a request asks for."""
    if "/oauth2/" in path:
        return "token"
    if path in ("/v3/emails", "/v2/emailmarketing/campaigns"):
        return "campaign list"
    if "/reports/stats/email_campaign_activities/" in path:
        return "activity stats (completeness counts)"
    if path.endswith("/links"):
        return "links (dimension)"
    if path.endswith("/send_history"):
        return "send history"
    if "/emails/activities/" in path:
        return "activity (dimension)"
    if "/tracking/" in path:
        return "tracking pages"
    return "other: " + path.rsplit("/", 1)[0].split("/")[-1]


def measure(api: str) -> dict[str, dict[str, int]]:
    emu = Emulator(DataConfig.realistic(weeks=8, activities=300), v3=V3Options(resend_every=3, device_interval=1))
    emu.start()
    figures: dict[str, dict[str, int]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = (
                emu.connection_json(**RETRY) if api == "v2" else
                emu.v3_connection_json(**RETRY, oauth_store=str(Path(tmp) / "tokens")))
            from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

            for label, window, root, dims in (("history, no dimensions", HISTORY, "plain", False),
                                              ("history, dimensions", HISTORY, "lake", True),
                                              ("daily, no dimensions", DAILY, "plain", False),
                                              ("daily, dimensions", DAILY, "lake", True)):
                seen = len(emu.requests)
                manifest = ConstantContactAccountTrackingOperator(
                    task_id="cost", destination=f"file://{tmp}/{root}/", dimensions=dims).execute(window)
                counts = Counter(kind(p) for p, _ in emu.requests[seen:])
                figures[label] = {"requests (manifest)": manifest["requests"],
                                  "estimate": manifest["requests_estimate"], **dict(sorted(counts.items())),
                                  "checked": (manifest["completeness"] or {}).get("checked", 0),
                                  "mismatches": (manifest["completeness"] or {}).get("mismatch_count", 0)}
    finally:
        emu.stop()
    return figures


if __name__ == "__main__":
    print(json.dumps({api: measure(api) for api in ("v2", "v3")}, indent=2))
