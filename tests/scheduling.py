"""How the test command's xdist workers draw tests: one unit at a time, in the order tests/conftest.py sorts them
(the longest first); a unit is one test, or every test of a module or folder that shares an expensive fixture."""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScopeScheduling


class Units(LoadScopeScheduling):
    """xdist's ``loadscope`` scheduling over our units, in collection order: each test is a unit of its own, except
    the tests whose node id starts with one of ``groups`` (one unit per prefix, so one worker makes their module-
    or session-scoped fixture). A worker holds one unit beyond the one it runs, no more, so none is left with a
    queue at the end while another is idle.

    xdist's own ``loadgroup`` would group tests marked ``xdist_group``, but it names their unit by rewriting the
    test's node id, which pytest 9.2's structured node ids ignore: the tests were spread over the workers without a
    word (pytest-dev/pytest-xdist#1386).

    :param groups: node id prefixes, each one unit.
    """

    def __init__(self, config: Any, log: Any, groups: tuple[str, ...]) -> None:
        super().__init__(config, log)
        self.groups = groups

    def _split_scope(self, nodeid: str) -> str:
        return next((prefix for prefix in self.groups if nodeid.startswith(prefix)), nodeid)

    def _reschedule(self, node: Any) -> None:
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) > 1:  # loadscope's is 2: a third test queued
            return
        self._assign_work_unit(node)
