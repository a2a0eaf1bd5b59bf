"""The window rule: parsing, API format, the half-open filter and resolving a run's window."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pendulum
import pytest

from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.reports import REPORTS
from airflow_provider_cc.window import Window, format_api, resolve, to_utc

UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-31T12:00:00Z", datetime(2024, 1, 31, 12, tzinfo=UTC)),
        ("2024-01-31T07:00:00-05:00", datetime(2024, 1, 31, 12, tzinfo=UTC)),
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=UTC)),
        (date(2024, 1, 31), datetime(2024, 1, 31, tzinfo=UTC)),
        (datetime(2024, 1, 31, 12), datetime(2024, 1, 31, 12, tzinfo=UTC)),
        (pendulum.datetime(2024, 1, 31, 13, tz="Europe/Paris"), datetime(2024, 1, 31, 12, tzinfo=UTC)),
    ],
)
def test_to_utc_accepts_the_usual_forms(value, expected):
    assert to_utc(value, "x") == expected


@pytest.mark.parametrize("value", ["yesterday-ish", "2024-13-01", 12345, ["2024-01-01"]])
def test_to_utc_names_the_bad_value(value):
    with pytest.raises(ConstantContactInputError, match="when="):
        to_utc(value, "when")


def test_format_api_is_utc_with_milliseconds():
    moment = datetime(2024, 1, 31, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=-5)))
    assert format_api(moment) == "2024-01-31T12:08:09.123Z"


def test_sub_millisecond_bounds_round_up_consistently():
    window = Window.of("2024-01-01T00:00:00.0004Z", "2024-01-01T00:00:00.0014Z")
    assert window.since_param == "2024-01-01T00:00:00.001Z"
    recs = [{"send_date": f"2024-01-01T00:00:00.00{i}Z"} for i in range(4)]
    assert Window.filter(window, recs, REPORTS["sends"])[0] == recs[1:2]


def test_filter_is_half_open_and_lenient_on_record_formats():
    window = Window.of("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")
    records = [
        {"open_date": "2024-01-02T00:00:00.000Z"},  # at the end: out
        {"open_date": "2024-01-01T23:59:59.999Z"},
        {"open_date": "2024-01-01T18:00:00-06:00"},  # 2024-01-02T00:00Z: out
        {"open_date": "2024-01-01T12:00:00Z"},  # no milliseconds
        {"open_date": "2024-01-01T00:00:00.000Z"},  # at the start: in
        {"open_date": "2023-12-31T23:59:59.999Z"},
        {"open_date": None},
        {},
    ]
    kept, undated = window.filter(records, REPORTS["opens"])
    assert kept == [records[1], records[3], records[4]] and undated == 2


def test_filter_of_mixed_types_uses_each_record_s_date_field():
    window = Window.of("2024-01-01", "2024-01-02")
    records = [{"activity_type": "EMAIL_SEND", "send_date": "2024-01-01T01:00:00.000Z"},
               {"activity_type": "EMAIL_CLICK", "click_date": "2024-01-03T01:00:00.000Z"},
               {"activity_type": "EMAIL_NEW", "new_date": "2024-01-01T02:00:00.000Z"}]
    assert window.filter(records, None) == ([records[0], records[2]], 0)


START, END = pendulum.datetime(2024, 1, 1), pendulum.datetime(2024, 1, 2)


def test_resolve_uses_the_data_interval():
    window = resolve({"data_interval_start": START, "data_interval_end": END})
    assert window.as_dict() == {"created_since": "2024-01-01T00:00:00.000Z",
                                "created_before": "2024-01-02T00:00:00.000Z"}


def test_explicit_bounds_win():
    window = resolve({"data_interval_start": START, "data_interval_end": END}, "2023-06-01", None)
    assert window.since_param == "2023-06-01T00:00:00.000Z" and window.end == END


def test_zero_width_interval_continues_from_the_previous_success():
    ctx = {"data_interval_start": END, "data_interval_end": END, "prev_data_interval_end_success": START}
    assert resolve(ctx) == Window.of(START, END)


def test_first_zero_width_run_starts_at_the_dag_start_date():
    ctx = {"data_interval_start": END, "data_interval_end": END, "dag": SimpleNamespace(start_date=START)}
    assert resolve(ctx) == Window.of(START, END)


def test_zero_width_interval_with_nothing_to_continue_from_fails_clearly():
    with pytest.raises(ConstantContactInputError, match="zero-width.*CronDataIntervalTimetable"):
        resolve({"data_interval_start": END, "data_interval_end": END, "dag": SimpleNamespace(start_date=END)})


def test_no_interval_needs_created_since_and_then_ends_at_run_after():
    with pytest.raises(ConstantContactInputError, match="no data interval.*created_since"):
        resolve({"dag_run": SimpleNamespace(run_after=END)})
    window = resolve({"dag_run": SimpleNamespace(run_after=END)}, "2024-01-01")
    assert window == Window.of(START, END)


def test_inverted_window_fails():
    with pytest.raises(ConstantContactInputError, match="empty or inverted"):
        resolve({"data_interval_start": START, "data_interval_end": END}, "2024-01-03")
