"""The one window rule: ``[created_since, created_before)``, how it is parsed, sent and applied."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pendulum

from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.reports import date_field_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_cc.reports import Report

log = logging.getLogger(__name__)
_ONE_MS = timedelta(milliseconds=1)


def to_utc(value: Any, name: str) -> datetime | None:
    """Parse a datetime, pendulum value, date or ISO-8601 string into an aware UTC datetime.

    Naive values are taken as UTC, as Airflow does. ``None`` and ``""`` mean "not given".

    :param value: the value to parse.
    :param name: the argument's name, used in the error message.
    """
    value = getattr(value, "__wrapped__", value)  # Airflow 3 hands some context values over as lazy proxies
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = pendulum.parse(value.strip())  # type: ignore[assignment]
        except Exception:
            raise ConstantContactInputError(
                f"{name}={value!r} is not a date; give an ISO-8601 value such as 2024-01-31T00:00:00Z"
            ) from None
        if not isinstance(parsed, datetime):
            raise ConstantContactInputError(f"{name}={value!r} is not a date and time")
    else:
        raise ConstantContactInputError(f"{name}={value!r} is neither a datetime nor an ISO-8601 string")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    u = parsed.astimezone(timezone.utc)
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=timezone.utc)


def _ceil_ms(value: datetime) -> datetime:
    """Round up to the API's millisecond precision, so string and instant comparisons agree."""
    if value.microsecond % 1000:
        value = value.replace(microsecond=value.microsecond - value.microsecond % 1000) + _ONE_MS
    return value


def format_api(value: datetime) -> str:
    """Format as the API's ``YYYY-MM-DDTHH:MM:SS.sssZ`` (UTC, milliseconds)."""
    value = value.astimezone(timezone.utc)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def _canonical(text: Any) -> str | None:
    """A record's date as canonical API text, accepting offsets and missing milliseconds."""
    if not isinstance(text, str):
        return None
    if len(text) == 24 and text[-1] == "Z" and text[19] == ".":
        return text
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = pendulum.parse(text)  # type: ignore[assignment]
        except Exception:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return format_api(_ceil_ms(parsed))


@dataclass(frozen=True)
class Window:
    """A half-open window ``[start, end)`` on each record's own date; either side may be open.

    :param start: inclusive lower bound, sent to the API as ``created_since``.
    :param end: exclusive upper bound, applied on the client (the API has none).
    """

    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of(cls, created_since: Any = None, created_before: Any = None) -> Window:
        """Parse and check both bounds; an empty or inverted window is refused."""
        start = to_utc(created_since, "created_since")
        end = to_utc(created_before, "created_before")
        if start is not None and end is not None and start >= end:
            raise ConstantContactInputError(
                f"empty or inverted window: created_before ({format_api(end)}) must be after "
                f"created_since ({format_api(start)})"
            )
        return cls(None if start is None else _ceil_ms(start), None if end is None else _ceil_ms(end))

    @property
    def since_param(self) -> str | None:
        """The ``created_since`` query value, or ``None``."""
        return None if self.start is None else format_api(self.start)

    def bounds_text(self) -> tuple[str, str]:
        """Canonical text bounds; records compare as strings because their format is fixed."""
        return (
            "" if self.start is None else format_api(self.start),
            "\uffff" if self.end is None else format_api(self.end),
        )

    def filter(self, records: list[dict], report: Report | None) -> tuple[list[dict], int]:
        """Keep the records inside the window; return them and how many had no readable date."""
        low, high = self.bounds_text()
        kept: list[dict] = []
        undated = 0
        field = None if report is None else report.date_field
        for record in records:
            stamp = record.get(field or date_field_of(record, None))
            if stamp.__class__ is not str or len(stamp) != 24 or stamp[-1] != "Z":
                stamp = _canonical(stamp)
                if stamp is None:
                    undated += 1
                    continue
            if low <= stamp < high:
                kept.append(record)
        return kept, undated

    def as_dict(self) -> dict[str, str | None]:
        """JSON-friendly form for manifests and logs."""
        return {"created_since": self.since_param, "created_before": None if self.end is None else format_api(self.end)}


def _continue_zero_width(context: Mapping[str, Any], end: datetime) -> datetime:
    previous = to_utc(context.get("prev_data_interval_end_success"), "prev_data_interval_end_success")
    if previous is not None and previous < end:
        return previous
    dag_start = to_utc(getattr(context.get("dag"), "start_date", None), "start_date")
    if dag_start is not None and dag_start < end:
        log.warning("Zero-width data interval and no earlier successful run: pulling from the DAG's "
                    "start_date, %s", format_api(dag_start))
        return dag_start
    raise ConstantContactInputError(
        f"this run's data interval is zero-width ({format_api(end)}), as Airflow 3's default "
        "CronTriggerTimetable gives, and there is neither an earlier successful run nor a start_date to "
        "continue from. Pass created_since=..., or schedule the DAG with a data-interval timetable such as "
        "CronDataIntervalTimetable('0 3 * * *', timezone='UTC')."
    )


def resolve(context: Mapping[str, Any], created_since: Any = None, created_before: Any = None) -> Window:
    """The operators' window rule, in order:

    1. explicit ``created_since`` / ``created_before`` win over the run's data interval;
    2. otherwise ``[data_interval_start, data_interval_end)``;
    3. a zero-width interval (Airflow 3's default ``CronTriggerTimetable``, or a manual run of an
       unscheduled DAG in Airflow 2) continues from the previous successful run's interval end; the first
       such run starts at the DAG's ``start_date``, and without one it fails;
    4. a run without a data interval (manual or asset-triggered run in Airflow 3) needs an explicit
       ``created_since``; its end defaults to the run's ``run_after``;
    5. a missing, empty or inverted window fails with a message saying what to pass. Never a silent
       empty pull.
    """
    start = to_utc(created_since, "created_since")
    end = to_utc(created_before, "created_before")
    interval_start = to_utc(context.get("data_interval_start"), "data_interval_start")
    interval_end = to_utc(context.get("data_interval_end"), "data_interval_end")
    if start is None and interval_start is not None and interval_start == interval_end:
        start = _continue_zero_width(context, interval_start)
    start = start if start is not None else interval_start
    if end is None:
        end = interval_end
    if end is None and created_since not in (None, ""):
        end = to_utc(getattr(context.get("dag_run"), "run_after", None), "run_after")
    if start is None or end is None:
        raise ConstantContactInputError(
            "this run has no data interval (a manual or asset-triggered run without a logical date), so "
            "there is no window to pull. Pass created_since=... (and optionally created_before=...), or "
            "trigger the run with a logical date."
        )
    return Window.of(start, end)
