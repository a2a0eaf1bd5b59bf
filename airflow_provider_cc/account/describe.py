"""Dimensions: once every unit of the window is committed, one file per dimension (campaigns; on v3 campaign
activities; links) describing what the run's events refer to, in the run's file format.

Rows come from the answers the selection read where they can (v2: each campaign's own answer), else from the
requests the dialect names (v3), counted in the estimate. A file holds one row per natural key, sorted by it,
and is named by the run's window (``dimension/{api}/{name}/{start}_{end}.{ext}``), so a rerun of the window
writes the same bytes when the API's answers are the same; across windows, the latest file's row is current.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_cc.account import files
from airflow_provider_cc.destinations import file_name, plain_uri
from airflow_provider_cc.dimensions import DIMENSIONS, Dimension
from airflow_provider_cc.exceptions import ConstantContactStateError
from airflow_provider_cc.units import read_json, state_path, write_json

if TYPE_CHECKING:
    from airflow_provider_cc.account.state import Run
    from airflow_provider_cc.selection import Selection

KNOWN = "activity_rows.json"  # v3 activity rows, kept while their campaign's last send is the same


def described_now(run: Run, campaign_id: str, answer: dict[str, Any]) -> None:
    """Keep the rows a campaign's answer to the selection gives (v2), for the dimension files."""
    if not run.plan.dimensions:
        return
    rows = run.hooks.dialect().answer_rows(answer)
    if rows:
        with run.lock:
            run.described[campaign_id] = rows


def carried(run: Run, document: dict[str, Any]) -> None:
    """The rows an earlier try of the window kept with its selection."""
    described = document.get("described")
    if isinstance(described, dict):
        run.described = {str(c): {str(n): [r for r in rows if isinstance(r, dict)] for n, rows in tables.items()
                                  if isinstance(rows, list)}
                         for c, tables in described.items() if isinstance(tables, dict)}


def _scope(run: Run, selection: Selection) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    """The run's campaigns, their activities (v3) and the activities whose clicks it wrote."""
    campaigns = sorted(selection.answers)
    units = [*selection.resumed, *selection.units]
    activities = sorted({(u.campaign_id, u.activity_id) for u in units
                         if u.activity_id is not None and u.campaign_id in selection.answers})
    clicked = sorted({(str(f["campaign_id"]), str(f["campaign_activity_id"])) for f in run.files
                      if f.get("report") == "clicks" and f.get("records") and f.get("campaign_activity_id")})
    return campaigns, activities, clicked


def cost(run: Run, selection: Selection) -> int:
    """At most the requests the dimensions will cost (0 on v2, and without dimensions)."""
    if not run.plan.dimensions:
        return 0
    campaigns, activities, _ = _scope(run, selection)
    known = _known(run)
    clicks = {(u.campaign_id, u.activity_id) for u in [*selection.resumed, *selection.units] if u.report == "clicks"}
    return run.hooks.dialect().rows_cost(len(campaigns), sum(a not in known for _, a in activities), len(clicks))


def describe(run: Run, selection: Selection) -> dict[str, int]:
    """Write the window's dimension files; returns the rows of each."""
    dialect = run.hooks.dialect()
    tables = DIMENSIONS[dialect.api]
    campaigns, activities, clicked = _scope(run, selection)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
    for cid in campaigns:
        for name, found in run.described.get(cid, {}).items():
            rows[name].extend(found)
    known = _known(run)
    fresh = dict(known)
    for name, found in dialect.request_rows(campaigns, activities, clicked, fresh).items():
        rows[name].extend(found)
    if fresh != known:
        _keep(run, fresh)
    return {name: _write(run, dimension, rows[name]) for name, dimension in tables.items()}


def _write(run: Run, dimension: Dimension, rows: list[dict[str, Any]]) -> int:
    """One dimension's file: a row per natural key, sorted by it; no rows, no file (a rerun's is removed)."""
    by_key = {tuple(str(row.get(k)) for k in dimension.key): row for row in rows}
    ordered = [{c: by_key[k].get(c) for c in dimension.columns} for k in sorted(by_key)]
    options = run.plan.output_options
    path = (run.root / "dimension" / dimension.api / dimension.name
            / file_name(run.window, options["file_format"], options["compression"]))
    if not ordered:
        files.remove(run, plain_uri(path))
        return 0
    entry = run.wiring.output.write_output([ordered], path, columns=dimension.columns,
                                           identity={"dimension": dimension.name, "api": dimension.api},
                                           window=run.window, before_commit=run.budget.check_stop,
                                           types=dimension.schema)
    with run.lock:
        run.files.append(entry)
    return len(ordered)


def _known(run: Run) -> dict[str, dict[str, Any]]:
    """The kept v3 activity rows still valid: their campaign's last send is the one the activity cache holds."""
    try:
        document = read_json(state_path(run.root, "campaigns", KNOWN), "the activity rows")
    except ConstantContactStateError as exc:
        run.log.warning("%s: ignored, the activities are asked again", exc)
        return {}
    entries = document.get("activities") if isinstance(document, dict) else None
    valid: dict[str, dict[str, Any]] = {}
    for aid, entry in (entries or {}).items() if isinstance(entries, dict) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("row"), dict):
            continue
        known = run.activities.entries.get(str(entry["row"].get("campaign_id")))
        if known is not None and known.last_sent is not None and known.last_sent == entry.get("mark"):
            valid[str(aid)] = entry["row"]
    return valid


def _keep(run: Run, rows: dict[str, dict[str, Any]]) -> None:
    """Keep the activity rows, each with its campaign's last send (a new send asks it again)."""
    entries = {}
    for aid, row in sorted(rows.items()):
        known = run.activities.entries.get(str(row.get("campaign_id")))
        if known is not None and known.last_sent is not None:
            entries[aid] = {"mark": known.last_sent, "row": row}
    write_json(state_path(run.root, "campaigns", KNOWN), {"activities": entries})
