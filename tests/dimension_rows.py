"""What an account run's dimension files hold, read from the emulator's own objects (not from the provider's row
builders), for the tests that run the daily examples and the single-fault suite's account scenarios."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from airflow_provider_cc.emulator import Emulator

V2_NAMES = ("campaigns", "links")
V3_NAMES = ("campaigns", "campaign_activities", "links")


def canonical(value: Any) -> Any:
    """A date in the provider's canonical text (ISO-8601 UTC, milliseconds); anything else as it is."""
    moment = record_instant(value) if isinstance(value, str) else None
    return format_api(moment) if moment is not None else value


def v2_rows(emu: Emulator, campaigns: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The v2 ``campaigns`` and ``links`` rows of these campaigns: their objects and ``click_through_details``."""
    objects = {c: emu.dataset.campaign_object(emu.dataset.campaigns[c]) for c in campaigns}
    rows = [{"campaign_id": str(obj["id"]), **{k: canonical(obj.get(k)) for k in (
        "name", "subject", "from_name", "from_email", "status", "created_date", "modified_date", "last_run_date")}}
        for obj in objects.values()]
    links = [{"campaign_id": c, "link_id": str(link["url_uid"]), "link_uri": link["url"],
              "click_count": link["click_count"]}
             for c, obj in objects.items() for link in obj["click_through_details"]]
    return {"campaigns": sorted(rows, key=lambda r: r["campaign_id"]),
            "links": sorted(links, key=lambda r: (r["campaign_id"], r["link_id"]))}


def v3_rows(emu: Emulator, campaigns: Iterable[str], clicked: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The v3 ``campaigns``, ``campaign_activities`` (their reported activities: primary email, resend) and
    ``links`` (of the ``clicked`` activities, every link) rows of these campaigns."""
    view = emu.v3.view
    chosen = [view.campaigns[c] for c in sorted(campaigns)]
    items = [{k: canonical(view.campaign_item(c)[k]) for k in (
        "campaign_id", "name", "current_status", "type", "created_at", "updated_at")} for c in chosen]
    activities, links, wanted = [], [], set(clicked)
    for campaign in chosen:
        for activity in view.reported(campaign):
            obj = view.activity_object(activity)
            sends = [canonical(h["run_date"]) for h in view.send_history(activity)]
            activities.append({**{k: canonical(obj[k]) for k in (
                "campaign_activity_id", "campaign_id", "role", "subject", "preheader", "from_name", "from_email",
                "reply_to_email", "current_status")}, "contact_list_ids": ",".join(sorted(obj["contact_list_ids"])),
                "first_sent": min(sends, default=None), "last_sent": max(sends, default=None)})
            if activity.id in wanted:
                links += [{"campaign_id": campaign.id, "campaign_activity_id": activity.id, "url_id": link["url_id"],
                           "link_url": link["link_url"], "unique_clicks": link["unique_clicks"]}
                          for link in view.links(activity, True)]
    return {"campaigns": items, "campaign_activities": sorted(activities, key=lambda r: r["campaign_activity_id"]),
            "links": sorted(links, key=lambda r: (r["campaign_activity_id"], r["url_id"]))}


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    """Rows as the provider writes JSON lines: compact, one a line."""
    return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in rows).encode()


def files(api: str, rows: dict[str, list[dict[str, Any]]], name: str) -> dict[str, bytes]:
    """The dimension files (path under the root: JSON lines) of one run whose window's file name is ``name``;
    a dimension without rows has no file."""
    return {f"dimension/{api}/{table}/{name}": jsonl(found) for table, found in rows.items() if found}


def written(root: Path) -> dict[str, list[dict[str, Any]]]:
    """The dimension files (JSON lines) under a root: path under the root -> rows."""
    return {str(p.relative_to(root)): [json.loads(line) for line in p.read_text().splitlines()]
            for p in sorted((root / "dimension").rglob("*.jsonl"))}


def clicked_activities(paths: Iterable[str]) -> set[str]:
    """The activities whose clicks files (v3 event paths under the root) are among ``paths``."""
    return {p.split("campaign_activity_id=")[1].split("/")[0] for p in paths
            if p.startswith("campaign/clicks/") and "campaign_activity_id=" in p}
