"""The account run: a whole account's campaign tracking for one window, without Airflow.

The steps, in the order data flows through them (one module each):

* :mod:`.arguments` — the run's arguments, checked before any request, into a :class:`~.state.Plan`;
* :mod:`.select` — which campaigns (v3: and activities) can have activity in the window: the units;
* :mod:`.expand` — v3: each (campaign, report) becomes a unit per reported activity;
* :mod:`.check` (first half) — Constant Contact's own record counts, read before pulling;
* :mod:`.pull` — the units, pulled on the one budget and limiter, each committed atomically;
* :mod:`.cover` — what each committed unit makes complete (coverage, for later re-checks);
* :mod:`.describe` — with ``dimensions``: the campaigns, activities and links the events refer to;
* :mod:`.files` — the files a run takes back: a deleted campaign's, and a rerun's stale ones;
* :mod:`.check` (second half) — the files' records against those counts;
* :mod:`.outcome` — progress, the manifest, and how a run that did not finish fails.

:class:`~.engine.AccountEngine` runs them in that order; the account operator only wires Airflow to it
(context → window, storage, logging, stop, deferral while the daily quota resets).
"""

from __future__ import annotations

from airflow_provider_cc.account.engine import AccountEngine
from airflow_provider_cc.account.state import Plan, Wiring

__all__ = ["AccountEngine", "Plan", "Wiring"]
