"""The one window rule: ``[created_since, created_before)``, how it is parsed, sent and applied.

Bounds are whole milliseconds (the API's precision), rounded up when given finer. A record is kept when its
exact instant, read to the microsecond (finer digits cut off, which cannot change a comparison with a bound
on the microsecond grid), lies in ``[start, end)``.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import pendulum

from airflow_provider_cc._compat import core_timetable
from airflow_provider_cc.exceptions import ConstantContactDataError, ConstantContactInputError
from airflow_provider_cc.reports import date_field_of

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_cc.reports import Report

log = logging.getLogger(__name__)
_ONE_MS = timedelta(milliseconds=1)
_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_MIN = datetime.min.replace(tzinfo=_UTC)
_MAX = datetime.max.replace(tzinfo=_UTC)
# The C parser: on Python 3.11+ it reads every extended and basic ISO-8601 form with ``Z`` or an offset.
_FROMISO: Callable[[Any], datetime] = datetime.fromisoformat  # given any value: a TypeError is a miss too

# What to do with a record whose date cannot be read.
ON_UNREADABLE_DATE = ("fail", "skip")

# ISO-8601 as the API and its SDKs write it, leniently: ``T``, ``t`` or a space; ``Z``, ``z`` or an offset
# with or without a colon; any number of fraction digits; basic (no separators) or extended form.
_ISO = re.compile(
    r"(\d{4})-?(\d\d)-?(\d\d)"
    r"(?:[Tt ](\d\d)(?::?(\d\d)(?::?(\d\d)(?:[.,](\d+))?)?)?)?"
    r"\s*(?:([Zz])|([+-])(\d\d)(?::?(\d\d))?)?"
)
# Epoch milliseconds. Fewer than 12 digits would be before 1973-03-03: more likely epoch *seconds*, so such
# values are refused as unreadable rather than misread as 1970.
_EPOCH_MS_TEXT = re.compile(r"\d{12,15}(?:\.\d+)?")
_EPOCH_MS_RANGE = (Decimal(10) ** 11, Decimal(253402300800000))  # [1973-03-03, 10000-01-01)


def _from_match(match: re.Match[str]) -> datetime | None:
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    micro = int((fraction or "")[:6].ljust(6, "0"))
    try:
        tz = _UTC
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            tz = timezone(-offset if sign == "-" else offset)
        return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                        micro, tzinfo=tz)
    except ValueError:  # month 13, hour 24, second 60, an offset of a day or more...
        return None


def _from_epoch_ms(value: Decimal) -> datetime | None:
    if not (value.is_finite() and _EPOCH_MS_RANGE[0] <= value < _EPOCH_MS_RANGE[1]):
        return None
    micros = int((value * 1000).to_integral_value(rounding=ROUND_FLOOR))
    return _EPOCH + timedelta(microseconds=micros)


def record_instant(value: Any) -> datetime | None:
    """The exact instant of a record's date, or ``None`` when it cannot be read.

    Accepts ISO-8601 text (``T``/``t``/space, ``Z``/``z``/offsets, any fraction digits, basic or extended;
    no offset means UTC), epoch milliseconds as numbers or digit strings (from 1973 on; shorter values look
    like epoch seconds and are refused), and datetimes. Relative words such as ``now`` are not dates.

    :param value: the record field's value.
    """
    if isinstance(value, str):
        text = value.strip()
        if _EPOCH_MS_TEXT.fullmatch(text):  # before the ISO parser, which reads some digit runs as dates
            return _from_epoch_ms(Decimal(text))
        try:
            parsed = _FROMISO(text)
        except ValueError:
            match = _ISO.fullmatch(text)
            return None if match is None else _from_match(match)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=_UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        try:
            return _from_epoch_ms(Decimal(value))
        except InvalidOperation:  # pragma: no cover - finite ints and floats always convert
            return None
    return None


def _utc(moment: datetime, name: str, value: Any) -> datetime:
    """``moment`` in UTC, naive taken as UTC; a clear error where UTC leaves the years 1-9999."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    try:
        u = moment.astimezone(_UTC)
    except OverflowError:
        raise ConstantContactInputError(
            f"{name}={value!r} is outside the dates the provider can handle: in UTC it falls outside the "
            "years 1-9999. Give a date within them."
        ) from None
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=_UTC)


def to_utc(value: Any, name: str) -> datetime | None:
    """Parse a datetime, pendulum value, date or ISO-8601 string into an aware UTC datetime.

    Naive values are taken as UTC, as Airflow does. ``None`` and ``""`` mean "not given". Only real dates
    are accepted: relative words such as ``now`` or ``yesterday`` are refused (use a template such as
    ``{{ data_interval_start }}`` for times relative to the run).

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
        text = value.strip()
        match = _ISO.fullmatch(text)
        moment = _from_match(match) if match is not None else None
        if moment is None:
            raise ConstantContactInputError(
                f"{name}={value!r} is not a date; give an ISO-8601 date or date and time such as "
                "2024-01-31 or 2024-01-31T00:00:00Z"
            )
        parsed = moment
    else:
        raise ConstantContactInputError(f"{name}={value!r} is neither a datetime nor an ISO-8601 string")
    return _utc(parsed, name, value)


def _ceil_ms(value: datetime, name: str) -> datetime:
    """Round up to the API's millisecond precision, so the API, file names and the filter agree."""
    if value.microsecond % 1000:
        try:
            value = value.replace(microsecond=value.microsecond - value.microsecond % 1000) + _ONE_MS
        except OverflowError:
            raise ConstantContactInputError(f"{name}={format_api(value)} is past the last date the provider "
                                            "can handle (9999-12-31T23:59:59.999Z)") from None
    return value


def format_api(value: datetime) -> str:
    """Format as the API's ``YYYY-MM-DDTHH:MM:SS.sssZ`` (UTC, milliseconds; four-digit years always)."""
    v = value.astimezone(_UTC)
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}."
            f"{v.microsecond // 1000:03d}Z")


@dataclass(frozen=True)
class Window:
    """A half-open window ``[start, end)`` on each record's own date; either side may be open.

    :param start: inclusive lower bound, sent to the API as ``created_since``.
    :param end: exclusive upper bound, applied on the client (the API has none).
    :param on_unreadable_date: ``fail`` (default): a page with a record whose date cannot be read fails
        with the count and an example; ``skip``: such records are left out and counted.
    """

    start: datetime | None = None
    end: datetime | None = None
    on_unreadable_date: str = "fail"

    @classmethod
    def of(cls, created_since: Any = None, created_before: Any = None, *,
           on_unreadable_date: str = "fail") -> Window:
        """Parse and check both bounds; an empty or inverted window is refused."""
        if on_unreadable_date not in ON_UNREADABLE_DATE:
            raise ConstantContactInputError(
                f"on_unreadable_date={on_unreadable_date!r} is not one of {', '.join(map(repr, ON_UNREADABLE_DATE))}")
        start = to_utc(created_since, "created_since")
        end = to_utc(created_before, "created_before")
        if start is not None:
            start = _ceil_ms(start, "created_since")
        if end is not None:
            end = _ceil_ms(end, "created_before")
        if start is not None and end is not None and start >= end:
            raise ConstantContactInputError(
                f"empty or inverted window: created_before ({format_api(end)}) must be after "
                f"created_since ({format_api(start)})"
            )
        return cls(start, end, on_unreadable_date)

    @property
    def since_param(self) -> str | None:
        """The ``created_since`` query value, or ``None``."""
        return None if self.start is None else format_api(self.start)

    def filter(self, records: list[dict], report: Report | None) -> tuple[list[dict], int]:
        """Keep the records inside the window; return them and how many had no readable date (see
        :meth:`sort_out`)."""
        kept, undated, _ = self.sort_out(records, report)
        return kept, undated

    def sort_out(self, records: list[dict], report: Report | None) -> tuple[list[dict], int, int]:
        """Keep the records inside the window; return them, how many had no readable date, and how many are
        dated at or after the window's end (what a pull at that moment would not have seen).

        A kept record's date in any other form (epoch milliseconds, a space, lowercase ``z``, an offset,
        more fraction digits...) is rewritten in place as the API's canonical text
        (``2012-12-06T13:06:14.762Z``, UTC, milliseconds), so every file holds one date form: the one the
        shipped JSON Schemas (``format: date-time``) and typed loaders (``TIMESTAMPTZ``) expect.

        With ``on_unreadable_date="fail"`` a page holding such a record raises
        :class:`~airflow_provider_cc.exceptions.ConstantContactDataError` instead.
        """
        low = _MIN if self.start is None else self.start
        high = _MAX if self.end is None else self.end
        parse = _FROMISO
        kept: list[dict] = []
        undated = later = 0
        example: Any = None
        field = None if report is None else report.date_field
        for record in records:
            key = field or date_field_of(record, None)
            stamp: Any = record.get(key)
            try:
                # Hot path: the API's own form parses in C and compares as an aware instant. A naive
                # result (no offset, digit runs) cannot compare and takes the lenient path below.
                instant = parse(stamp)
                if not low <= instant < high:
                    later += instant >= high
                    continue
                # Kept as is only in the canonical form YYYY-MM-DDTHH:MM:SS.sssZ (the C parser also
                # reads a space, a comma, week dates, offsets, other fraction lengths).
                if len(stamp) == 24 and stamp[23] == "Z" and stamp[19] == "." and stamp[10] == "T" and stamp[7] == "-":
                    kept.append(record)
                    continue
            except (TypeError, ValueError):
                pass
            moment = record_instant(stamp)
            if moment is None:
                if not undated:
                    example = stamp
                undated += 1
            elif low <= moment < high:
                record[key] = format_api(moment)  # the files' one date form, whatever the API sent
                kept.append(record)
            else:
                later += moment >= high
        if undated and self.on_unreadable_date == "fail":
            name = field or "date field"
            raise ConstantContactDataError(
                f"{undated} of {len(records)} records on this page have a {name} that is not a date the "
                f"provider can read (e.g. {repr(example)[:60]}), so they cannot be placed in the window. "
                "Pass on_unreadable_date='skip' to leave such records out (they are counted in the log)."
            )
        return kept, undated, later

    def as_dict(self) -> dict[str, str | None]:
        """JSON-friendly form for manifests and logs."""
        return {"created_since": self.since_param, "created_before": None if self.end is None else format_api(self.end)}


def _previous_scheduled_time(context: Mapping[str, Any], end: datetime) -> datetime:
    """The start of a zero-width run's window: the DAG timetable's last scheduled time before ``end``.

    It depends only on the timetable and the run's own time, never on which runs succeeded, so a failed
    run, a rerun or a cleared run pulls the same window and rewrites the same file.
    """
    dag = context.get("dag")
    timetable = core_timetable(getattr(dag, "timetable", None))
    # The cron and timedelta timetables' own inverse of "next scheduled time" (the scheduler's DST rules).
    previous = getattr(timetable, "_get_prev", None)
    if previous is not None:
        tick = to_utc(previous(pendulum.instance(end)), "the previous scheduled time")
        if tick is not None and tick < end:
            return tick
    raise ConstantContactInputError(
        f"this run's data interval is zero-width ({format_api(end)}) and the DAG's timetable "
        f"({type(timetable).__name__}) has no earlier scheduled time to start the window from. Pass "
        "created_since=..., or schedule the DAG with a cron or a data-interval timetable such as "
        "CronDataIntervalTimetable('0 3 * * *', timezone='UTC')."
    )


def resolve(context: Mapping[str, Any], created_since: Any = None, created_before: Any = None, *,
            on_unreadable_date: str = "fail") -> Window:
    """The operators' window rule, in order:

    1. explicit ``created_since`` / ``created_before`` win over the run's data interval;
    2. otherwise ``[data_interval_start, data_interval_end)``;
    3. a zero-width interval (a cron or timedelta trigger timetable, Airflow 3's default for a cron
       string) starts at the timetable's previous scheduled time: ``[previous tick, this run)``, for the
       first run as for any other, whatever earlier runs did. A DAG without a schedule has no previous
       tick and needs ``created_since``;
    4. a run without a data interval (manual or asset-triggered run in Airflow 3) needs an explicit
       ``created_since``; its end defaults to the run's ``run_after``;
    5. a missing, empty or inverted window fails with a message saying what to pass. Never a silent
       empty pull.

    :param context: the task's context.
    :param created_since: explicit start, or ``None``.
    :param created_before: explicit end, or ``None``.
    :param on_unreadable_date: see :class:`Window`.
    """
    start = to_utc(created_since, "created_since")
    end = to_utc(created_before, "created_before")
    interval_start = to_utc(context.get("data_interval_start"), "data_interval_start")
    interval_end = to_utc(context.get("data_interval_end"), "data_interval_end")
    if start is None and interval_start is not None and interval_start == interval_end:
        start = _previous_scheduled_time(context, interval_start)
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
    return Window.of(start, end, on_unreadable_date=on_unreadable_date)
