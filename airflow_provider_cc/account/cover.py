"""Coverage: what a committed unit makes complete. Its files hold every record from its start through the
window's end; on v3 a campaign's report is complete once each of its activities' units committed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_cc.units import Unit

if TYPE_CHECKING:
    from airflow_provider_cc.account.state import Run
    from airflow_provider_cc.selection import Selection


def covered(run: Run, selection: Selection, unit: Unit, counts: dict[str, int]) -> None:
    """A unit committed: record, for later re-checks, up to when its (campaign, report)'s files are complete
    and the total the campaign answered then."""
    answered = selection.answers.get(unit.campaign_id)
    if answered is None or run.window.end is None:
        return
    key = Unit(unit.campaign_id, unit.report).key
    if counts.get("later"):
        run.unclean.add(key)
    left = run.siblings.get(key)
    if left is not None:
        left.discard(unit)
        if left:
            return  # another activity of this campaign's report is still to commit
    window, _ = run.unit_window(unit)
    assert window.start is not None
    summary_key = run.hooks.dialect().report(unit.report).summary_key
    run.coverage.pulled(key, window.start, run.window.end, answered[0], answered[1].get(summary_key),
                        key not in run.unclean)
    run.coverage.looked_at(unit.campaign_id, run.window.end)
