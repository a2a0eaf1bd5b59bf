"""The files a run takes back or refuses to trust: a resumed unit's missing files, a campaign deleted during
the run, and a rerun's stale files (a report whose records are gone upstream)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_cc.destinations import plain_uri
from airflow_provider_cc.exceptions import ConstantContactNotFoundError
from airflow_provider_cc.units import missing_files

if TYPE_CHECKING:
    from airflow_provider_cc.account.state import Run
    from airflow_provider_cc.selection import Selection
    from airflow_provider_cc.units import Unit


def check_resumed(run: Run) -> None:
    """Resume only units whose files are all still there (a lifecycle rule, a cleaned folder or a checkpoint
    copied from elsewhere may have removed some): the others are pulled again."""
    done = run.checkpoint.done
    gone = set(missing_files(run.root, (f for entry in done.values() for f in entry.get("files") or [])))
    stale = [key for key, entry in done.items() if any(f["uri"] in gone for f in entry.get("files") or [])]
    if stale:
        run.checkpoint.forget(stale)
        run.log.warning("%d units committed by an earlier try have files missing or changed (e.g. %s): they "
                        "are pulled again", len(stale), sorted(gone)[0])


def deleted(run: Run, selection: Selection, unit: Unit) -> bool:
    """A unit's page answered 404: whether its campaign was deleted, which only the campaign's own 404 (asked
    twice) or a DELETED status confirms. A deleted campaign's files from this run are removed: they would
    hold only part of the window."""
    status = "DELETED" if unit.campaign_id in run.deleted else ""
    for _ in range(0 if status else 2):
        try:
            status = run.hooks.campaign(unit.campaign_id)["status"].upper()
        except ConstantContactNotFoundError:
            continue
        if status != "DELETED":
            return False
        break
    run.deleted.add(unit.campaign_id)  # its other units need not ask again
    with run.lock:
        partial = run.partial.pop(unit, [])
    for entry in partial:
        remove(run, entry["uri"])
        run.files.remove(entry)
        run.records -= entry["records"]
        run.wiring.output.files_written.remove(entry)
    selection.skip(unit.campaign_id, "deleted", "a report page answered 404 and the campaign "
                   + ("is DELETED" if status == "DELETED" else "answers 404") + " (deleted during the run)"
                   + (f"; the {len(partial)} files this run wrote for it were removed" if partial else ""),
                   unit.report)
    return True


def remove(run: Run, uri: str) -> None:
    """Delete one data file under the root (already gone is fine)."""
    base = plain_uri(run.root).rstrip("/") + "/"
    if not uri.startswith(base):
        return
    path = run.root / uri.removeprefix(base)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    run.removed.append(uri)


def remove_stale(run: Run, selection: Selection) -> None:
    """A rerun of a window removes the files its last run wrote that it no longer writes (a report whose
    records are gone upstream): a lake's glob would read them otherwise. Only units this run looked at
    lose files; a campaign it did not look at (beyond the horizon) keeps them."""
    if not run.checkpoint.previous:
        return
    looked = {unit.key for unit in selection.units} | {
        f"{s['campaign_id']}/{s['report']}" for s in selection.skipped if "report" in s}
    whole = {s["campaign_id"] for s in selection.skipped if "report" not in s and s["reason"] in (
        "deleted", "sent after the window", "not sent")}
    written = {entry["uri"] for entry in run.files}
    for key, entry in run.checkpoint.previous.items():
        files = entry.get("files") or []
        # v3 keys name the activity; its files name the campaign
        cid = next((str(f["campaign_id"]) for f in files if f.get("campaign_id")), key.partition("/")[0])
        if key in looked or f"{cid}/{key.rpartition('/')[2]}" in looked or cid in whole:
            for old in entry.get("files") or []:
                if old["uri"] not in written:
                    remove(run, old["uri"])
    if run.removed:
        run.log.info("Removed %d files an earlier run of this window wrote and this run did not (their records "
                     "are gone), e.g. %s", len(run.removed), run.removed[0])
