"""tests/scheduling.py: the test command's xdist units, checked on a real xdist run (xdist's own grouping was
silently ignored under pytest 9.2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

CONFTEST = '''
from tests.scheduling import Units


def pytest_xdist_make_scheduler(config, log):
    return Units(config, log, ("test_grouped.py",))
'''
TESTS = '''
import json, os, time


def record(name, seconds):
    time.sleep(seconds)
    with open(os.environ["CC_WHERE"], "a") as out:
        out.write(json.dumps([name, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
'''


def test_a_groups_tests_run_on_one_worker_and_the_others_are_spread(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    # The group's tests are quick, the others take a moment: the worker that runs the group then draws others too.
    for module, seconds in (("test_grouped", 0), ("test_single", 0.3)):
        (tmp_path / f"{module}.py").write_text(TESTS + "".join(
            f"\n\ndef test_{k}():\n    record('{module}', {seconds})\n" for k in range(6)))
    where = tmp_path / "where.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CC_WHERE": str(where)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "--dist",
                           "loadscope", "--no-loadscope-reorder", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = [json.loads(line) for line in where.read_text().splitlines()]
    workers = {module: {worker for name, worker in ran if name == module} for module in ("test_grouped", "test_single")}
    assert len(ran) == 12 and len(workers["test_grouped"]) == 1, ran
    assert len(workers["test_single"]) == 2, ran  # one test a unit: both workers draw them
