"""The account run's arguments, checked before any request: a clear error naming the argument, or its value."""

from __future__ import annotations

import ast
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.destinations import as_path, is_root
from airflow_provider_cc.exceptions import ConstantContactInputError

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.dialects import Dialect
    from airflow_provider_cc.window import Window

MAX_CONCURRENCY = 32


def as_list(value: Any, name: str) -> list[Any]:
    """A list from a list, tuple or set, or from text: comma/space separated, or a rendered list literal."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ConstantContactInputError(f"{name}={value!r} is not a list") from None
        else:
            return [part for part in text.replace(",", " ").split() if part]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    raise ConstantContactInputError(f"{name}={value!r} must be a list (or comma-separated text)")


def report_names(api: Dialect, reports: Any) -> list[str]:
    """The reports to pull, canonical and once each; a snapshot report is refused."""
    names = []
    for name in as_list(reports, "reports"):
        report = api.report(name)
        if report.snapshot:
            raise ConstantContactInputError(
                f"{report.name} is a snapshot (the whole report as it stands, not activity in a window), which "
                "the account operator does not pull: pull it per campaign with "
                "ConstantContactCampaignTrackingOperator, and give reports from "
                f"{', '.join(api.default_reports)}")
        names.append(report.name)
    if not names:
        raise ConstantContactInputError(f"reports is empty; name some of {', '.join(api.default_reports)}")
    return list(dict.fromkeys(names))


def campaign_ids(api: Dialect, value: Any) -> list[str] | None:
    """Explicit campaign ids, canonical and once each; ``None`` (or empty text): every campaign."""
    if value is None or value == "":
        return None
    return list(dict.fromkeys(api.campaign_id(v, "campaign_ids") for v in as_list(value, "campaign_ids")))


def budget_limit(value: Any) -> int | None:
    """``max_requests``: a whole number >= 1 (rendered text too), or ``None``."""
    given = value
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConstantContactInputError(f"max_requests={given!r} must be a whole number >= 1")
    return value


def root(destination: Any, storage_conn_id: str | None) -> ObjectStoragePath:
    """The root files go under: it must end in ``/``."""
    path = as_path(destination, storage_conn_id)
    if not is_root(destination):
        raise ConstantContactInputError(
            f"destination={destination!r} must be a root ending in '/', e.g. 's3://bucket/cc/' or "
            "'file:///data/cc/': the operator writes one file per campaign, report and partition under it")
    return path


def check(*, concurrency: Any, sent_within: Any, recheck_every: Any, wait_for_quota_reset: Any,
          max_quota_waits: Any, dimensions: Any = False, on_incomplete: Any = "warn") -> None:
    """The numeric and switch arguments."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConstantContactInputError(f"concurrency={concurrency!r} must be a whole number from 1 to "
                                        f"{MAX_CONCURRENCY}")
    if sent_within is not None and (not isinstance(sent_within, timedelta) or sent_within <= timedelta(0)):
        raise ConstantContactInputError(f"sent_within={sent_within!r} must be a positive datetime.timedelta "
                                        "(or None for no horizon)")
    if recheck_every is not None:
        if not isinstance(recheck_every, timedelta) or recheck_every <= timedelta(0):
            raise ConstantContactInputError(f"recheck_every={recheck_every!r} must be a positive "
                                            "datetime.timedelta, e.g. timedelta(days=7)")
        if sent_within is None:
            raise ConstantContactInputError("recheck_every re-checks the campaigns sent before the horizon: give "
                                            "sent_within=timedelta(...) as well (without a horizon every run "
                                            "pulls every campaign)")
    if on_incomplete not in ("warn", "fail"):
        raise ConstantContactInputError(f"on_incomplete={on_incomplete!r} must be 'warn' (log a completeness mismatch) "
                                        "or 'fail' (fail the task)")
    if not isinstance(dimensions, bool):
        raise ConstantContactInputError(f"dimensions={dimensions!r} must be True or False")
    if not isinstance(wait_for_quota_reset, bool):
        raise ConstantContactInputError(f"wait_for_quota_reset={wait_for_quota_reset!r} must be True or False")
    if isinstance(max_quota_waits, bool) or not isinstance(max_quota_waits, int) or not 1 <= max_quota_waits <= 30:
        raise ConstantContactInputError(f"max_quota_waits={max_quota_waits!r} must be a whole number from 1 "
                                        "to 30 (days)")


def horizon(window: Window, sent_within: timedelta | None) -> datetime | None:
    """The earliest send the run looks at: ``sent_within`` before the window's start."""
    assert window.start is not None
    if sent_within is None:
        return None
    try:
        return window.start - sent_within
    except OverflowError:
        raise ConstantContactInputError(
            f"sent_within={sent_within!r} reaches before the year 1 from the window's start: give a horizon "
            "within the account's history (e.g. timedelta(days=90)), or None for no horizon") from None
