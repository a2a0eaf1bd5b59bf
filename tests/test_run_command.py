"""scripts/run.py's test command: what it installs for the tests a run selects."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import ROOT


def load_run_script():
    spec = importlib.util.spec_from_file_location("cc_run_script", ROOT / "scripts" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("args", "azurite", "chromium"), [
    ([], True, True),  # the whole suite
    (["-k", "storage", "--durations=20"], True, True),  # options only: still the whole suite
    (["tests"], True, True),
    (["tests/test_window.py"], False, False),
    (["tests/test_bench.py", "-x"], False, False),  # the benchmark smoke run uses moto's S3 only
    (["tests/storage/test_s3.py::test_the_upload"], True, False),
    (["tests/storage/"], True, False),
    (["tests/system/test_connection_form.py"], False, True),
    (["tests/hooks", "tests/storage/test_object_stores.py"], True, False),
])
def test_a_one_file_run_installs_only_what_its_tests_need(args, azurite, chromium):
    run = load_run_script()
    assert run._selects(args, run.NEEDS_AZURITE) is azurite
    assert run._selects(args, run.NEEDS_CHROMIUM) is chromium


def test_each_airflow_independent_test_runs_with_one_version_and_the_legs_share_them():
    """The default version's commands (demo, benchmarks, docs, packaging) with the first version; the other
    Airflow-independent tests with the last; the Airflow-dependent ones with every version."""
    from _pytest.mark.expression import Expression

    run = load_run_script()
    kinds = {"dependent": set(), "about the default version": {"airflow_independent"},
             "any version": {"airflow_independent", "any_version"}}

    def legs_running(kind: str, legs: int) -> list[int]:
        marks = kinds[kind]
        return [i for i in range(legs) if Expression.compile(run._leg_markers(i, legs)).evaluate(marks.__contains__)]

    assert legs_running("dependent", 2) == [0, 1] and legs_running("dependent", 3) == [0, 1, 2]
    assert legs_running("about the default version", 2) == [0] == legs_running("about the default version", 3)
    assert legs_running("any version", 2) == [1] and legs_running("any version", 3) == [2]


def test_this_file_is_marked_for_the_first_version_only(request):
    """The marking itself (tests/conftest.py), seen on this test: Airflow-independent, about the test command."""
    marks = {mark.name for mark in request.node.iter_markers()}
    assert "airflow_independent" in marks and "any_version" not in marks
