"""Completeness: for every (campaign, report) whose whole history the files hold, the records in the files
against what Constant Contact itself counts.

Which are checked: the units of the run (pulled now or by an earlier try) whose report the API counts by
record (the dialect's ``comparable``: v2 sends, bounces and unsubscribes; v3 every event report), of
campaigns first sent at or after the coverage began (so every record since the send is in a file), and whose
coverage reaches the window's end once the run is done.

The counts are read **before** pulling (v2: the campaign answers the selection read, no request; v3: the
activity stats, 10 activities a request). A count includes records dated after the window's end; the pull,
reading newest first, sees each of those (its ``later``): the files must hold ``counted - later``. A record
that arrives during the pull is dated after the end, seen by the pull and not counted: it can hide a loss of
as many records, never make one up.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.dialects import Target
from airflow_provider_cc.sinks.count import count_records
from airflow_provider_cc.sinks.options import extension
from airflow_provider_cc.units import Unit

if TYPE_CHECKING:
    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.account.state import Run
    from airflow_provider_cc.selection import Selection

ON_INCOMPLETE = ("warn", "fail")
_NAME = re.compile(r"(\d{8}T\d{6}(?:\.\d{3})?Z)_(\d{8}T\d{6}(?:\.\d{3})?Z)(\..+)")


def _stamp(text: str) -> datetime:
    fmt = "%Y%m%dT%H%M%S.%fZ" if "." in text else "%Y%m%dT%H%M%SZ"
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)


def _first_send(run: Run, selection: Selection, campaign_id: str) -> datetime | None:
    """A campaign's first send as known: a v3 campaign with a resend needs its primary email's (else unknown)."""
    known = run.activities.entries.get(campaign_id)
    if known is not None and len(known.activities) > 1:
        return known.first_sent
    return selection.sent.get(campaign_id)


def _candidates(run: Run, selection: Selection) -> tuple[dict[str, dict[str, set[str | None]]], dict[str, int]]:
    """``{campaign: {report: activities}}`` to check, and how many (campaign, report)s were left out, by why."""
    comparable = run.hooks.dialect().comparable
    found: dict[str, dict[str, set[str | None]]] = {}
    for unit in [*selection.resumed, *selection.units]:
        if unit.report in comparable and unit.campaign_id in selection.answers:
            found.setdefault(unit.campaign_id, {}).setdefault(unit.report, set()).add(unit.activity_id)
    left: dict[str, int] = {}
    for cid in list(found):
        sent = _first_send(run, selection, cid)
        if sent is None or sent < run.coverage.since:
            why = "first send unknown" if sent is None else "sent before the coverage of the files began"
            left[why] = left.get(why, 0) + len(found.pop(cid))
    return found, left


def cost(run: Run, selection: Selection) -> int:
    """At most the requests the counts cost (v2: none)."""
    found, _ = _candidates(run, selection)
    activities = {a for reports in found.values() for ids in reports.values() for a in ids if a is not None}
    return run.hooks.dialect().counts_cost(len(activities))


def count(run: Run, selection: Selection) -> None:
    """Before pulling: the API's counts of the candidates (kept in ``run.counted``)."""
    found, left = _candidates(run, selection)
    activities = {cid: tuple(sorted({a for ids in reports.values() for a in ids if a is not None}))
                  for cid, reports in found.items()}
    totals = {cid: selection.answers[cid][1] for cid in found}
    run.counted = run.hooks.dialect().record_counts(totals, activities) if found else {}
    run.candidates, run.not_checked = found, left


def verify(run: Run, selection: Selection) -> dict[str, Any]:
    """After a complete pull: compare, log one line per mismatch, and return the result for the manifest."""
    dialect = run.hooks.dialect()
    results: list[dict[str, Any]] = []
    left = dict(run.not_checked)
    assert run.window.end is not None
    for cid, reports in sorted(run.candidates.items()):
        for report_name, activities in sorted(reports.items()):
            report = dialect.report(report_name)
            counted = run.counted.get(cid, {}).get(report.summary_key)
            if counted is None or run.coverage.covered(Unit(cid, report_name).key).end < run.window.end:
                why = "no count in the API's answer" if counted is None else "files not complete through the end"
                left[why] = left.get(why, 0) + 1
                continue
            later = sum(int((run.checkpoint.done.get(Unit(cid, report_name, a).key) or {}).get("later") or 0)
                        for a in activities)
            written = sum(_written(run, run.root / dialect.layout(report, Target(cid, a))) for a in activities)
            results.append({"campaign_id": cid, "report": report_name, "written": written, "counted": counted,
                            "later": later, "exact": written == counted - later})
    mismatches = [r for r in results if not r["exact"]]
    for r in mismatches:
        run.log.warning("Completeness: campaign %s %s: %d records written, %d counted by Constant Contact (%d of "
                        "them dated at or after the window's end, which the files of a later window hold)",
                        r["campaign_id"], r["report"], r["written"], r["counted"], r["later"])
    run.log.info("Completeness: %d (campaign, report)s checked against Constant Contact's counts, %d exact, %d "
                 "mismatched; %d not checked%s", len(results), len(results) - len(mismatches), len(mismatches),
                 sum(left.values()), "".join(f"; {n} {why}" for why, n in sorted(left.items())))
    run.quality = results
    return {"checked": len(results), "exact": len(results) - len(mismatches), "mismatch_count": len(mismatches),
            "mismatches": mismatches, "not_checked": left}


def _written(run: Run, folder: ObjectStoragePath) -> int:
    """The records of the run's format in a unit's folder, in files that end at or before the window's end."""
    options = run.plan.output_options
    ext = extension(options["file_format"], options["compression"])
    assert run.window.end is not None
    total = 0
    try:
        children = sorted(folder.iterdir(), key=lambda p: p.name)
    except (FileNotFoundError, NotADirectoryError):  # no file yet (universal-pathlib says the latter locally)
        return 0
    for path in children:
        match = _NAME.fullmatch(path.name)
        if match is None or match.group(3) != ext or _stamp(match.group(2)) > run.window.end:
            continue
        total += count_records(path, options["file_format"], options["compression"])
    return total
