"""Fixtures of the single-fault suite: a fresh world per test, and what clean runs of each scenario give."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.invariants.checker import Run, run_phase
from tests.invariants.scenarios import World

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.invariants.scenarios import Scenario


@dataclass
class Reference:
    """A clean run of every window of a scenario on a fresh account: what it returned and wrote, and which
    routes it called."""

    runs: list[Run]
    files: dict[str, bytes]
    expected: dict[tuple[str, str], dict[str, bytes]]
    served: Counter[str] = field(default_factory=Counter)

    @property
    def values(self) -> dict[tuple[str, str], Any]:
        return {run.window: run.value for run in self.runs}


_REFERENCES: dict[str, Reference] = {}


def reference(scenario: Scenario) -> Reference:
    """The scenario's clean runs (made once per process)."""
    if scenario.name not in _REFERENCES:
        from tests.invariants.checker import data_files

        with tempfile.TemporaryDirectory(prefix="cc-invariants-") as tmp, pytest.MonkeyPatch.context() as patch:
            world = World(Path(tmp), patch)
            try:
                scenario.prepare(world)
                expected = ({w: scenario.expected(world, w) for w in scenario.windows}
                            if scenario.compares == "files" else {})
                runs = run_phase(world, scenario, "reference")
                _REFERENCES[scenario.name] = Reference(runs, data_files(world.root), expected, world.emu.served)
            finally:
                world.stop()
    return _REFERENCES[scenario.name]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A fresh emulator, root and token store behind the v2 and v3 connections."""
    found = World(tmp_path, monkeypatch)
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="session", autouse=True)
def warm() -> None:
    """Clean runs of a few scenarios first: the imports a first run pays (object storage's file systems, which the
    cross-reference's tables reach through ``ObjectStoragePath.fs``, the token store, the login command) are not
    paid inside a pair's deadline."""
    from tests.invariants.scenarios import SCENARIOS

    for name in ("tracking_v2", "account_v3", "xrefs_v3", "login"):
        reference(SCENARIOS[name])
