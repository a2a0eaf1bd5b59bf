"""Units, partitions of a window, and the state kept under a root."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.exceptions import (
    ConstantContactDataError,
    ConstantContactInputError,
    ConstantContactStateError,
)
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
from tests.conftest import run_threads

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


# ---- two runs of one window at once (issue 21 item 13) --------------------------------------------------------------
OPTIONS = {"reports": ["opens"], "file_format": "jsonl"}


def checkpoint(tmp_path) -> Checkpoint:
    return Checkpoint(window_state(ObjectStoragePath(f"file://{tmp_path}/"), "checkpoints", WEEK, OPTIONS), WEEK,
                      OPTIONS)


def commit(point: Checkpoint, *campaigns: str) -> None:
    for cid in campaigns:
        point.commit(Unit(cid, "opens"), [{"uri": f"file:///x/{cid}.jsonl", "records": 1}], records=1, pages=1)
    point.save()


def journal_objects(point: Checkpoint) -> list[str]:
    folder = point.journal
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_run_finishing_leaves_the_journal_of_another_run_of_the_window_alone(tmp_path):
    """B resumes A's window while A runs; A ends: B's journal objects stay (a B killed now loses nothing), and
    when both ended the journal is gone."""
    first = checkpoint(tmp_path)
    first.load()
    first.save_selection({"campaigns": 2})
    commit(first, "1")
    second = checkpoint(tmp_path)
    assert second.load() is True and set(second.done) == {"1/opens"}
    commit(second, "2")  # its first save: the head, holding A's object, which it removes
    commit(second, "3")
    mine = journal_objects(second)
    assert len(mine) == 1 and second._try in mine[0]
    commit(first, "4")
    first.save(complete=True, final=True)
    assert set(journal_objects(second)) >= set(mine), "the other run's journal objects are still there"
    second.save(complete=True, final=True)
    assert not second.journal.exists(), "both runs ended: no journal object, no empty folder"
    assert checkpoint(tmp_path).load() is False


def test_a_journal_object_folded_while_it_is_read_makes_the_checkpoint_be_read_again(tmp_path, monkeypatch):
    """B lists A's journal, then A ends (its head holds the journal, whose objects go) before B reads them: B reads
    the checkpoint again, finds the window complete, and starts over, with A's units as the previous run's."""
    import airflow_provider_cc.units as units

    first = checkpoint(tmp_path)
    first.load()
    commit(first, "1")
    commit(first, "2")
    commit(first, "3")
    assert len(journal_objects(first)) == 2
    real = units.read_json
    finished: list[bool] = []

    def read_json(path, what):
        if "journal object" in what and not finished:
            finished.append(True)
            first.save(complete=True, final=True)  # A ends between B's listing and B's first read
        return real(path, what)

    monkeypatch.setattr(units, "read_json", read_json)
    second = checkpoint(tmp_path)
    assert second.load() is False, "the window completed meanwhile: a new run of it starts over"
    assert finished and set(second.previous) == {"1/opens", "2/opens", "3/opens"} and second.done == {}


def test_a_checkpoint_changing_every_time_it_is_read_is_a_clear_error(tmp_path, monkeypatch):
    import airflow_provider_cc.units as units

    first = checkpoint(tmp_path)
    first.load()
    commit(first, "1")
    commit(first, "2")
    monkeypatch.setattr(units, "read_json", lambda path, what: None if "journal object" in what else {
        "done": {}, "complete": False, "generation": first.generation})
    with pytest.raises(ConstantContactStateError, match="changed each of the 3 times it was read: another run of "
                                                         "this window is writing it at the same time"):
        checkpoint(tmp_path).load()
    assert checkpoint(tmp_path).load(resume=False) is False


@pytest.mark.parametrize("error", [FileNotFoundError, FileExistsError], ids=["after", "while"])
def test_a_journal_folder_removed_after_or_while_it_is_made_is_made_again(tmp_path, monkeypatch, error):
    """The other try of the window removes the empty journal folder after this one made it (the temporary file's
    folder is gone), or while ``os.makedirs`` makes it (it found the folder existing, then not a folder: it
    raises "File exists"). The journal object is written again, once."""
    import airflow_provider_cc.sinks.commit as commit_module

    point = checkpoint(tmp_path)
    point.load()
    commit(point, "1")  # the head
    real, calls = commit_module.os.makedirs, []

    def makedirs(folder, exist_ok=False):
        calls.append(folder)
        if len(calls) == 1:
            raise error(17 if error is FileExistsError else 2, "the other try removed it")
        return real(folder, exist_ok=exist_ok)

    monkeypatch.setattr(commit_module.os, "makedirs", makedirs)
    commit(point, "2")  # a journal object
    assert calls[0] == calls[1] and len(journal_objects(point)) == 1  # (makedirs also makes the parents)


def test_two_runs_of_one_window_at_once_never_fail_on_the_journal(tmp_path):
    """Two tries of one window in two threads, each committing units one at a time and folding its journal, again
    and again: neither fails (a bare OSError removing the folder the other writes into was the old failure)."""
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            for n in range(15):
                point = checkpoint(tmp_path)
                point.load()
                point.save_selection({"campaigns": 20})
                for k in range(20):
                    commit(point, f"{name}{n}-{k}")
                point.save(complete=True, final=True)
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    run_threads([(run, ("a",)), (run, ("b",))])
    assert errors == []
    assert not checkpoint(tmp_path).journal.exists()
