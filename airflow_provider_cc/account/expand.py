"""Expansion (v3): each chosen (campaign, report) becomes a unit per reported activity (primary email,
resend). A campaign's activities cost one request, once: they are cached until its ``last_sent_date`` moves.
An activity two campaigns list is read once, under the campaign the activity itself names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_cc.campaign_state import Known
from airflow_provider_cc.exceptions import ConstantContactNotFoundError, ConstantContactResponseError
from airflow_provider_cc.units import Unit

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor
    from datetime import datetime

    from airflow_provider_cc.account.state import Run
    from airflow_provider_cc.selection import Selection


def expand(run: Run, pool: ThreadPoolExecutor, selection: Selection, marks: dict[str, str | None]) -> None:
    """Replace the selection's (campaign, report) units by (campaign, report, activity) units.

    :param marks: how each campaign was listed (its ``last_sent_date``): what its cached activities are valid for.
    """
    campaigns = list(dict.fromkeys(u.campaign_id for u in selection.units))
    found: dict[str, tuple[str, ...]] = {}
    asked: dict[str, Future] = {}
    for cid in campaigns:
        cached = run.activities.get(cid, marks.get(cid))
        if cached is not None:
            found[cid] = cached.activities
        else:
            asked[cid] = pool.submit(activities, run, cid)
    fresh: dict[str, datetime | None] = {}
    for cid, future in asked.items():
        known = future.result()
        if known is None:
            selection.skip(cid, "deleted", "chosen, then its campaign and activity look-ups answered 404 twice")
            continue
        found[cid], fresh[cid] = known
    contradicted = shared(run, selection, found)
    for cid, first in fresh.items():
        if cid not in contradicted:
            run.activities.put(cid, Known(marks.get(cid), found[cid], first))
    if asked:
        run.log.info("Campaign activities: %d campaigns from the cache, %d asked (one request each)",
                     len(found) - len(asked), len(asked))
    units, estimate, starts, done = [], {}, {}, run.checkpoint.done
    for unit in selection.units:
        ids = found.get(unit.campaign_id)
        if ids is not None and not ids:  # unreachable: every checked answer has a primary email
            raise ConstantContactResponseError(f"campaign {unit.campaign_id}: no primary_email or resend activity "
                                               "to read its reports in")
        for aid in ids or ():
            each = Unit(unit.campaign_id, unit.report, aid)
            if each.key in done:
                selection.resumed.append(each)
                continue
            units.append(each)
            estimate[each] = selection.estimate[unit]
            if unit in selection.starts:
                starts[each] = selection.starts[unit]
    selection.units, selection.estimate, selection.starts = units, estimate, starts


def shared(run: Run, selection: Selection, found: dict[str, tuple[str, ...]]) -> set[str]:
    """An activity that two campaigns list is read once, under the campaign the activity itself names (one
    request each such activity); the other campaigns' lists lose it, and none of the contradicted answers
    is cached. A conflict the activity cannot settle (it names neither campaign, or a campaign's only
    primary email is another's) fails the run naming it. Returns the campaigns whose answers were wrong."""
    claims: dict[str, list[str]] = {}
    for cid, ids in found.items():
        for aid in ids:
            claims.setdefault(aid, []).append(cid)
    wrong: set[str] = set()
    for aid, cids in claims.items():
        if len(cids) < 2:
            continue
        for cid in cids:
            run.activities.forget(cid)
        listed = f"campaign activity {aid} is listed by campaigns {' and '.join(cids)}"
        try:
            owner: str | None = run.hooks.dialect().activity_campaign(aid)
        except (ConstantContactNotFoundError, ConstantContactResponseError) as exc:
            owner, why = None, f"its own look-up failed ({exc})"
        else:
            why = f"it names campaign {owner} as its own"
        if owner not in cids or any(found[c][0] == aid for c in cids if c != owner):
            raise ConstantContactResponseError(
                f"{listed} (an activity belongs to one campaign), and {why}: the API's answers contradict each "
                "other, so no unit was pulled and none of these answers was cached. Run the task again later; if "
                "it persists, report it to Constant Contact with these ids")
        for cid in cids:
            if cid != owner:
                found[cid] = tuple(a for a in found[cid] if a != aid)
                wrong.add(cid)
                selection.skip(cid, "activity of another campaign", f"its answer lists activity {aid}, which "
                               f"campaign {owner} lists too and names as its own: read once, under {owner}")
        run.log.warning("%s; %s: its records are read once, under that campaign", listed, why)
    return wrong


def activities(run: Run, campaign_id: str) -> tuple[tuple[str, ...], datetime | None] | None:
    """A campaign's reported activities and first send; ``None`` when it answers 404 twice (deleted since
    it was listed)."""
    for _ in range(2):
        try:
            return run.hooks.dialect().activities(campaign_id, first_send=False)  # sent before the end
        except ConstantContactNotFoundError:
            continue
    return None
