"""Two runs of one window at once on one root (a manual run beside the scheduled one, a retry beside a late first
try), over real HTTP against the emulator: both succeed, and the files are those of a single run (issue 21,
item 13: one of them used to fail with a bare OSError removing the checkpoint's journal folder)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

import airflow_provider_cc.units as units
from airflow_provider_cc._compat import AIRFLOW_V_3
from airflow_provider_cc.emulator import DataConfig
from airflow_provider_cc.units import Checkpoint
from tests.conftest import start_emulator
from tests.operators.test_account import DAY, data_files, pull

if TYPE_CHECKING:
    from pathlib import Path

WAIT = 120  # seconds an orchestrated step waits for the other run at most: a run that never gets there fails


@pytest.fixture
def emu(monkeypatch):
    emulator = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300))
    yield emulator
    emulator.stop()


@pytest.fixture
def reference(emu, tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("reference")
    pull(root, partition=DAY, concurrency=2)
    return data_files(root)


def journal_objects(root: Path) -> int:
    return sum(1 for _ in (root / "_state/account/journal").rglob("*.json"))


def run_in(name: str, root: Path, outcome: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        if not AIRFLOW_V_3:  # Airflow 2's guard against execute() outside a task keeps its state per thread
            from airflow.models.baseoperator import ExecutorSafeguard

            ExecutorSafeguard._sentinel.callers = {}
        try:
            outcome[name] = pull(root, partition=DAY, concurrency=2)[1]
        except BaseException as exc:  # the test reports it
            outcome[name] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def test_a_run_that_reads_the_journal_while_the_other_run_folds_it_succeeds(emu, reference, monkeypatch, tmp_path):
    """Run B starts while run A commits, lists A's journal objects, and A ends (folding and removing them) before
    B reads them: B reads the checkpoint again, and both runs write a single run's files."""
    a_journaled, b_listed, a_folded = threading.Event(), threading.Event(), threading.Event()
    save, read_json = Checkpoint.save, units.read_json

    def orchestrated_save(self: Checkpoint, **kwargs: Any) -> None:
        mine = threading.current_thread().name == "a"
        if mine and kwargs.get("final"):
            b_listed.wait(WAIT)  # A ends only once B has listed A's journal
        save(self, **kwargs)
        if mine and kwargs.get("final"):
            a_folded.set()
        elif mine and journal_objects(tmp_path):
            a_journaled.set()

    def orchestrated_read(path: Any, what: str) -> Any:
        if threading.current_thread().name == "b" and "journal object" in what:
            b_listed.set()
            a_folded.wait(WAIT)  # B reads what it listed only after A folded it
        return read_json(path, what)

    monkeypatch.setattr(Checkpoint, "save", orchestrated_save)
    monkeypatch.setattr(units, "read_json", orchestrated_read)
    outcome: dict[str, Any] = {}
    first = run_in("a", tmp_path, outcome)
    assert a_journaled.wait(WAIT), "run A committed units into its journal"
    second = run_in("b", tmp_path, outcome)
    for thread in (first, second):
        thread.join(2 * WAIT)
    assert b_listed.is_set() and a_folded.is_set(), "the runs met where the test placed them"
    assert not isinstance(outcome["a"], BaseException), outcome["a"]
    assert not isinstance(outcome["b"], BaseException), outcome["b"]
    assert outcome["a"]["records"] == outcome["b"]["records"]
    assert data_files(tmp_path) == reference
    assert journal_objects(tmp_path) == 0, "no journal object left"


def test_two_runs_of_one_window_at_once_both_succeed_with_a_single_runs_files(emu, reference, tmp_path):
    """The second run starts once the first has committed units (it resumes them, or starts over if the first
    ended); twice, each time on a fresh root."""
    for pair in range(2):
        root = tmp_path / str(pair)
        outcome: dict[str, Any] = {}
        first = run_in("first", root, outcome)
        for _ in range(WAIT * 100):  # bounded: the first run journals or ends
            if journal_objects(root) or "first" in outcome:
                break
            threading.Event().wait(0.01)
        second = run_in("second", root, outcome)
        for thread in (first, second):
            thread.join(2 * WAIT)
        errors = {k: v for k, v in outcome.items() if isinstance(v, BaseException)}
        assert not errors, errors
        assert data_files(root) == reference
