"""Units, partitions of a window, and the state kept under a root."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.exceptions import ConstantContactDataError, ConstantContactInputError
from airflow_provider_cc.reports import REPORTS
from airflow_provider_cc.units import (
    Checkpoint,
    Partitioning,
    Unit,
    state_path,
    window_file,
    window_state,
)
from airflow_provider_cc.window import Window, format_api, to_utc

DAY = timedelta(days=1)
WEEK = Window.of("2024-01-01T03:00:00Z", "2024-01-08T03:00:00Z")


def opens(*stamps: str) -> list[dict]:
    return [{"activity_type": "EMAIL_OPEN", "contact_id": str(i), "open_date": s} for i, s in enumerate(stamps)]


def test_a_unit_has_a_stable_key_and_label():
    unit = Unit("1100394165000", "opens")
    assert (unit.key, unit.label) == ("1100394165000/opens", "campaign 1100394165000 opens")


def test_without_a_size_the_window_is_one_partition():
    parts = Partitioning.of(WEEK)
    assert len(parts) == 1 and parts.window_of(0) == WEEK


def test_daily_partitions_of_a_week_are_contiguous_and_aligned():
    parts = Partitioning.of(WEEK, DAY, "2023-06-01T03:00:00Z")
    windows = [parts.window_of(i) for i in range(len(parts))]
    assert len(windows) == 7 and windows[0].start == WEEK.start and windows[-1].end == WEEK.end
    assert all(a.end == b.start and b.end - b.start == DAY for a, b in pairwise(windows))


def test_a_record_on_a_boundary_belongs_to_the_partition_it_starts():
    parts = Partitioning.of(WEEK, DAY)
    assert parts.index_of(to_utc("2024-01-02T03:00:00.000Z", "t")) == 1
    assert parts.index_of(to_utc("2024-01-02T02:59:59.999Z", "t")) == 0
    assert parts.index_of(to_utc("2024-01-08T02:59:59.999Z", "t")) == 6


@pytest.mark.parametrize(("window", "size", "anchor", "message"), [
    (WEEK, DAY, "2024-01-01T00:00:00Z", "created_since .2024-01-01T03:00:00.000Z. falls inside a partition"),
    (Window.of("2024-01-01T03:00:00Z", "2024-01-08T05:00:00Z"), DAY, None, "created_before .2024-01-08T05"),
    (WEEK, timedelta(0), None, "positive datetime.timedelta"),
    (WEEK, "1 day", None, "positive datetime.timedelta"),
    (WEEK, timedelta(microseconds=1500), None, "whole milliseconds"),
    (WEEK, None, "2024-01-01T03:00:00Z", "partition_anchor needs partition"),
    (WEEK, timedelta(seconds=1), None, "more than 100,000"),
    (Window.of("2024-01-01T03:00:00Z"), DAY, None, "both created_since and created_before"),
])
def test_bad_partitions_are_refused_with_the_reason(window, size, anchor, message):
    with pytest.raises(ConstantContactInputError, match=message):
        Partitioning.of(window, size, anchor)


def test_split_groups_a_newest_first_stream_by_partition_lazily():
    parts = Partitioning.of(WEEK, DAY)
    pages = [opens("2024-01-07T10:00:00.000Z", "2024-01-07T03:00:00.000Z", "2024-01-05T12:00:00.000Z"),
             opens("2024-01-05T11:00:00.000Z", "2024-01-01T03:00:00.000Z")]
    fetched: list[int] = []

    def stream():
        for number, page in enumerate(pages):
            fetched.append(number)
            yield page

    groups = parts.split(stream(), REPORTS["opens"])
    window, batches = next(groups)
    assert (format_api(window.start), fetched) == ("2024-01-07T03:00:00.000Z", [0]), "one page read so far"
    assert [r["open_date"] for b in batches for r in b] == ["2024-01-07T10:00:00.000Z", "2024-01-07T03:00:00.000Z"]
    rest = [(format_api(w.start), [r["open_date"] for b in bs for r in b]) for w, bs in groups]
    assert rest == [("2024-01-05T03:00:00.000Z", ["2024-01-05T12:00:00.000Z", "2024-01-05T11:00:00.000Z"]),
                    ("2024-01-01T03:00:00.000Z", ["2024-01-01T03:00:00.000Z"])]


def test_split_refuses_a_record_of_a_partition_already_written():
    parts = Partitioning.of(WEEK, DAY)
    pages = [opens("2024-01-05T12:00:00.000Z", "2024-01-03T12:00:00.000Z", "2024-01-06T12:00:00.000Z")]
    groups = parts.split(iter(pages), REPORTS["opens"])
    for _window, batches in groups:
        list(batches)
        break
    list(next(groups)[1])
    with pytest.raises(ConstantContactDataError, match="arrived after older records"):
        next(groups)


def test_a_checkpoint_resumes_until_its_window_completes(tmp_path):
    root = ObjectStoragePath(f"file://{tmp_path}/")
    options = {"reports": ["opens"], "file_format": "jsonl"}
    path = state_path(root, "account", "checkpoints", window_file(WEEK, options, "json"))
    assert window_state(root, "checkpoints", WEEK, options) == path
    assert path.name.startswith("20240101T030000Z_20240108T030000Z.") and "_state" in str(path)
    first = Checkpoint(path, WEEK, options)
    assert first.load() is False, "nothing to resume yet"
    entries = [{"uri": f"file:///x/{n}.jsonl", "records": n} for n in (1, 2)]
    first.commit(Unit("1", "opens"), entries, records=3, pages=1)
    first.save()
    again = Checkpoint(path, WEEK, options)
    assert again.load() is True and again.done == {"1/opens": {"records": 3, "pages": 1, "files": entries}}
    assert again.files_of(Unit("1", "opens")) == entries and again.files_of(Unit("2", "opens")) == []
    again.save(complete=True)
    assert Checkpoint(path, WEEK, options).load() is False, "a completed window starts over"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [path.name], "no temporary object left"
    assert window_file(WEEK, {**options, "file_format": "csv"}, "json") != path.name
