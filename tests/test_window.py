"""The window rule: parsing, API format, the half-open filter and resolving a run's window."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from airflow_provider_cc._compat import AIRFLOW_V_3, DAG
from airflow_provider_cc.exceptions import ConstantContactDataError, ConstantContactInputError
from airflow_provider_cc.reports import REPORTS
from airflow_provider_cc.window import Window, format_api, record_instant, resolve, to_utc

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
    window = Window.of("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", on_unreadable_date="skip")
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


def test_no_interval_needs_created_since_and_then_ends_at_run_after():
    with pytest.raises(ConstantContactInputError, match="no data interval.*created_since"):
        resolve({"dag_run": SimpleNamespace(run_after=END)})
    window = resolve({"dag_run": SimpleNamespace(run_after=END)}, "2024-01-01")
    assert window == Window.of(START, END)


def test_inverted_window_fails():
    with pytest.raises(ConstantContactInputError, match="empty or inverted"):
        resolve({"data_interval_start": START, "data_interval_end": END}, "2024-01-03")


# ---- record dates: every form the API may send, read to the exact instant -------------------------------

NOON = datetime(2024, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01T12:00:00.000Z", NOON),
        ("2024-01-01 12:00:00.000Z", NOON),  # a space for the T: 24 characters, like the canonical form
        ("2024-01-01T12:00:00.000z", NOON),
        ("2024-01-01t12:00:00Z", NOON),
        ("2024-01-01T12:00:00Z", NOON),
        ("2024-01-01T12:00Z", NOON),
        ("2024-01-01T13:00:00.000+01:00", NOON),
        ("2024-01-01T13:00:00+0100", NOON),
        ("2024-01-01T07:00:00-05", NOON),
        ("20240101T120000Z", NOON),
        ("2024-01-01T12:00:00", NOON),  # no offset: UTC
        (" 2024-01-01T12:00:00.000Z\n", NOON),
        ("2024-01-01T12:00:00.123456Z", NOON.replace(microsecond=123456)),
        ("2024-01-01T12:00:00.1234569Z", NOON.replace(microsecond=123456)),  # finer than µs: cut off
        ("2024-01-01T12:00:00,5Z", NOON.replace(microsecond=500000)),
        (1704110400000, NOON),  # epoch milliseconds
        ("1704110400000", NOON),
        (1704110400000.5, NOON.replace(microsecond=500)),
        ("1704110400123.25", NOON.replace(microsecond=123250)),
        ("9999-12-31T23:00:00-05:00", datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))),
    ],
)
def test_record_instant_reads_every_form(value, expected):
    assert record_instant(value) == expected


@pytest.mark.parametrize(
    "value",
    [None, "", "garbage", "now", "today", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z",
     "2024-01-01T12:00:00+25:00", "2024-01-01T12:00:00.000 UTC", True, float("nan"), float("inf"),
     1704110400, "1704110400", [1704110400000], {"date": "2024-01-01"}],
)
def test_record_instant_refuses_what_is_not_a_date(value):
    """Epoch *seconds* (10 digits) are refused, not misread as January 1970."""
    assert record_instant(value) is None


def test_a_space_separated_date_is_read_not_compared_as_text():
    """It has the canonical length and a trailing Z, and used to skip parsing: compared as text,
    ' ' sorts before 'T' and the record fell out of its window."""
    window = Window.of("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")
    records = [{"send_date": "2024-01-01 12:00:00.000Z"}, {"send_date": "2024-01-02 00:00:00.000Z"},
               {"send_date": "2024-01-01 00:00:00.000Z"}]
    assert window.filter(records, REPORTS["sends"]) == ([records[0], records[2]], 0)


def test_lowercase_z_and_epoch_milliseconds_are_kept_where_they_belong():
    window = Window.of("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")
    inside = [{"send_date": "2024-01-01T12:00:00.000z"}, {"send_date": 1704110400000},
              {"send_date": "1704110400000"}, {"send_date": "2024-01-01t12:00:00z"}]
    outside = [{"send_date": "2024-01-02T00:00:00.000z"}, {"send_date": 1704153600000},  # = the end
               {"send_date": "1704067199999"}]  # 1 ms before the start
    assert window.filter(inside + outside, REPORTS["sends"]) == (inside, 0)


def test_kept_dates_in_other_forms_are_written_in_the_canonical_form():
    """Files hold one date form, the one the JSON Schemas (date-time) and typed loaders expect."""
    window = Window.of("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")
    forms = ["2024-01-01T12:00:00.000Z", "2024-01-01 12:00:00.000Z", "2024-01-01T12:00:00.000z", 1704110400000,
             "1704110400000", "2024-01-01T13:00:00.000+01:00", "2024-01-01T12:00:00.0009Z", "2024-01-01T12:00:00,000Z",
             "2024-W01-1T12:00:00.000Z", "20240101T120000Z", datetime(2024, 1, 1, 12), " 2024-01-01T12:00:00Z"]
    records = [{"send_date": form, "n": i} for i, form in enumerate(forms)]
    kept, undated = window.filter(records, REPORTS["sends"])
    assert undated == 0 and [r["n"] for r in kept] == list(range(len(forms)))
    assert [r["send_date"] for r in kept] == ["2024-01-01T12:00:00.000Z"] * len(forms)
    mixed = [{"activity_type": "EMAIL_OPEN", "open_date": "1704110400123"},
             {"activity_type": "EMAIL_CLICK", "click_date": "2024-01-01 12:00:00.5z"}]
    assert [r.get("open_date") or r.get("click_date") for r in window.filter(mixed, None)[0]] == [
        "2024-01-01T12:00:00.123Z", "2024-01-01T12:00:00.500Z"]


@pytest.mark.parametrize(
    ("stamp", "first_day"),
    [
        ("2024-01-01T23:59:59.9995Z", True),  # 0.5 ms before the boundary: the day it happened
        ("2024-01-01T23:59:59.999999Z", True),
        ("2024-01-01T23:59:59.9999999Z", True),  # finer than a microsecond
        ("2024-01-02T00:00:00.0000001Z", False),
        ("2024-01-02T00:00:00.000Z", False),
        ("2024-01-02T00:00:00.0004Z", False),
        ("2024-01-02T01:00:00.0004+01:00", False),
        ("2024-01-02T00:59:59.9996+01:00", True),
        (1704153599999.6, True),  # epoch ms with a fraction
        (1704153600000.0, False),
    ],
)
def test_sub_millisecond_records_at_a_boundary_land_in_exactly_one_window(stamp, first_day):
    """The decision is the exact instant against the half-open window: consecutive windows neither drop
    nor double a record however close to their shared boundary it is."""
    day1 = Window.of("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")
    day2 = Window.of("2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z")
    record = {"open_date": stamp}
    in_day1 = day1.filter([record], REPORTS["opens"])[0] == [record]
    in_day2 = day2.filter([record], REPORTS["opens"])[0] == [record]
    assert (in_day1, in_day2) == (first_day, not first_day)


def test_unreadable_dates_fail_by_default_with_the_count_and_an_example():
    window = Window.of("2024-01-01", "2024-01-02")
    records = [{"send_date": "2024-01-01T01:00:00.000Z"}, {"send_date": "soon"}, {"send_date": None}, {}]
    words = r"3 of 4 records .* send_date .*'soon'.*on_unreadable_date='skip'"
    with pytest.raises(ConstantContactDataError, match=words):
        window.filter(records, REPORTS["sends"])


def test_skip_leaves_unreadable_dates_out_and_counts_them():
    window = Window.of("2024-01-01", "2024-01-02", on_unreadable_date="skip")
    records = [{"send_date": "2024-01-01T01:00:00.000Z"}, {"send_date": "soon"}, {"send_date": None}]
    assert window.filter(records, REPORTS["sends"]) == ([records[0]], 2)


def test_the_unreadable_date_option_is_checked():
    with pytest.raises(ConstantContactInputError, match="on_unreadable_date='drop' is not one of 'fail', 'skip'"):
        Window.of("2024-01-01", "2024-01-02", on_unreadable_date="drop")


# ---- bounds given by users ---------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["now", "today", "yesterday", "tomorrow", "Now", " now "])
def test_relative_words_are_not_dates(word):
    """pendulum parses these as the current time; a window bound must be a real date."""
    with pytest.raises(ConstantContactInputError, match="created_since=.* is not a date"):
        to_utc(word, "created_since")


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00",
     pendulum.datetime(9999, 12, 31, 23, tz="America/New_York"),
     datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=2)))],
)
def test_dates_that_leave_the_years_1_to_9999_in_utc_are_a_clear_input_error(value):
    with pytest.raises(ConstantContactInputError, match="created_before=.*outside the years 1-9999"):
        Window.of("2024-01-01", value)


def test_the_last_representable_millisecond_cannot_be_rounded_past():
    with pytest.raises(ConstantContactInputError, match="past the last date"):
        Window.of("2024-01-01", "9999-12-31T23:59:59.9995Z")


def test_format_api_always_writes_four_digit_years():
    assert format_api(datetime(999, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)) == "0999-01-02T03:04:05.006Z"


# ---- zero-width runs: the window comes from the timetable, never from run history --------------------------

def _cron_trigger_dag(cron: str = "0 3 * * *", timezone_name: str = "UTC") -> DAG:
    """A DAG scheduled by a cron trigger timetable: a plain cron string on Airflow 3, explicit on 2."""
    schedule: Any = cron
    if not AIRFLOW_V_3:
        from airflow.timetables.trigger import CronTriggerTimetable

        schedule = CronTriggerTimetable(cron, timezone=timezone_name)
    elif timezone_name != "UTC":
        schedule = _sdk_or_core("CronTriggerTimetable")(cron, timezone=timezone_name)
    return DAG(dag_id=f"zero_width_{abs(hash((cron, timezone_name)))}", schedule=schedule,
               start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)


def _sdk_or_core(name: str) -> Any:
    """A timetable class where DAG authors import it: ``airflow.sdk`` on 3.1+, core before."""
    import importlib

    try:
        return getattr(importlib.import_module("airflow.sdk"), name)
    except (ImportError, AttributeError):
        return getattr(importlib.import_module("airflow.timetables.trigger"), name)


def _zero_width(moment: datetime, dag: Any) -> dict[str, Any]:
    return {"data_interval_start": moment, "data_interval_end": moment, "dag": dag}


def test_zero_width_run_starts_at_the_previous_cron_tick():
    dag = _cron_trigger_dag()
    run_at = pendulum.datetime(2024, 1, 5, 3)
    assert resolve(_zero_width(run_at, dag)) == Window.of(pendulum.datetime(2024, 1, 4, 3), run_at)


def test_the_first_run_starts_at_the_tick_before_it_whatever_the_start_date():
    """The DAG starts 2024-01-01T00:00: its first run (01-01T03:00) pulls from the tick before, like any run."""
    dag = _cron_trigger_dag()
    first = pendulum.datetime(2024, 1, 1, 3)
    assert resolve(_zero_width(first, dag)) == Window.of(pendulum.datetime(2023, 12, 31, 3), first)


def test_a_manual_run_between_ticks_pulls_from_the_last_tick():
    dag = _cron_trigger_dag()
    manual = pendulum.datetime(2024, 1, 5, 10, 17)
    assert resolve(_zero_width(manual, dag)) == Window.of(pendulum.datetime(2024, 1, 5, 3), manual)


def test_the_timetable_s_own_dst_rules_apply():
    """03:00 Paris time: the night clocks go forward the window is 23 hours long."""
    dag = _cron_trigger_dag(timezone_name="Europe/Paris")
    run_at = pendulum.datetime(2024, 3, 31, 1)  # 03:00 CEST
    window = resolve(_zero_width(run_at, dag))
    assert window == Window.of(pendulum.datetime(2024, 3, 30, 2), run_at)  # 03:00 CET the day before


def test_a_timedelta_trigger_timetable_steps_back_one_delta():
    timetable = _sdk_or_core("DeltaTriggerTimetable")(timedelta(hours=6))
    dag = DAG(dag_id="zero_width_delta", schedule=timetable, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    run_at = pendulum.datetime(2024, 1, 5, 12)
    assert resolve(_zero_width(run_at, dag)) == Window.of(pendulum.datetime(2024, 1, 5, 6), run_at)


def test_a_zero_width_run_of_an_unscheduled_dag_asks_for_created_since():
    dag = DAG(dag_id="zero_width_unscheduled", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    with pytest.raises(ConstantContactInputError, match=r"zero-width .*NullTimetable.*created_since="):
        resolve(_zero_width(END, dag))
    assert resolve(_zero_width(END, dag), "2024-01-01") == Window.of(START, END)


def test_previous_success_does_not_move_a_zero_width_window():
    ctx = {**_zero_width(pendulum.datetime(2024, 1, 5, 3), _cron_trigger_dag()),
           "prev_data_interval_end_success": pendulum.datetime(2024, 1, 2, 3)}
    assert resolve(ctx).start == pendulum.datetime(2024, 1, 4, 3)


def test_a_failed_first_run_and_a_rerun_do_not_move_the_next_windows(airflow_db, emulator, tmp_path, monkeypatch):
    """Through real Airflow runs of a cron-trigger DAG (the cron-string example on Airflow 3): run 1 fails,
    run 2 still pulls [tick 1, tick 2), and rerunning run 2 after run 3 rewrites the same file with the
    same bytes, and nothing else."""
    from airflow_provider_cc.emulator import FaultConfig
    from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
    from tests.conftest import dag_test, load_dags

    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT", f"file://{tmp_path}/")
    if AIRFLOW_V_3:  # dag.test runs DAGs from the DAGs folder; a cron string is a CronTriggerTimetable
        dag = load_dags()[0]["constant_contact_cron_trigger"]
    else:
        # A run's note refers to the web app's users: register that table for dag.test's flushes (its
        # import warns about Flask and SQLAlchemy deprecations that are not ours).
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import airflow.providers.fab.auth_manager.models  # noqa: F401

        dag = _cron_trigger_dag()
        with dag:
            ConstantContactCampaignTrackingOperator(task_id="pull_opens", campaign_id=emulator.campaign_ids()[0],
                                                    report="opens", destination=f"file://{tmp_path}/")
    ticks = [pendulum.datetime(2024, 1, day, 3, tz="UTC") for day in (2, 3, 4)]

    emulator.set_faults(FaultConfig(error_rate=1.0))
    first = dag_test(dag, ticks[0])
    assert first.state == "failed" and first.data_interval_start == first.data_interval_end
    emulator.set_faults(FaultConfig())
    assert dag_test(dag, ticks[1]).state == "success"
    assert dag_test(dag, ticks[2]).state == "success"

    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    written = files()
    assert sorted(written) == ["20240102T030000Z_20240103T030000Z.jsonl", "20240103T030000Z_20240104T030000Z.jsonl"]
    assert dag_test(dag, ticks[1]).state == "success"
    assert files() == written
