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


@pytest.mark.parametrize("command", ["test", "demo"])
def test_what_the_command_starts_may_cache_its_bytecode(monkeypatch, command):
    """Where PYTHONDONTWRITEBYTECODE is set, each process the tests and the demo start would compile Airflow
    from source again (about 3 CPU-seconds each): the command drops it for everything it starts."""
    run = load_run_script()
    seen = []
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setattr(run.sys, "argv", ["run.py", command])
    monkeypatch.setattr(run, "venv", lambda airflow: ROOT / "python")
    monkeypatch.setattr(run, "test", lambda *args: seen.append(run.os.environ.get("PYTHONDONTWRITEBYTECODE")) or 0)
    monkeypatch.setattr(run.subprocess, "run", lambda cmd, **kwargs: seen.append(
        (kwargs.get("env") or run.os.environ).get("PYTHONDONTWRITEBYTECODE")) or type("Done", (), {"returncode": 0}))
    assert run.main() == 0
    assert seen == [None]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_each_test_runs_once_or_on_every_version_and_no_tests_at_all_fails(count):
    """Airflow-dependent tests run on every version; Airflow-independent ones on one: the first, but those marked
    ``last_version`` on the last (the runs end together)."""
    run = load_run_script()
    kinds = {"dependent": set(), "independent": {"airflow_independent"},
             "last": {"airflow_independent", "last_version"}}
    ran: dict[str, list[int]] = {kind: [] for kind in kinds}
    for index in range(count):
        options = run._once(index, count)  # [] or ["-m", expression]
        expression = options[1] if options else "True"
        for kind, marks in kinds.items():
            if eval(expression, {}, {m: m in marks for m in ("airflow_independent", "last_version")}):
                ran[kind].append(index)
    assert ran == {"dependent": list(range(count)), "independent": [0], "last": [count - 1]}

    assert run._no_tests({"ruff": 0, "pytest airflow 3.3": 5, "pytest airflow 2.11": 5}) == {
        "pytest airflow 3.3": 1, "pytest airflow 2.11": 1}
    assert run._no_tests({"pytest airflow 3.3": 5, "pytest airflow 2.11": 0}) == {
        "pytest airflow 3.3": 0, "pytest airflow 2.11": 0}
    assert run._no_tests({"pytest airflow 3.3": 5, "pytest airflow 2.11": 2}) == {
        "pytest airflow 3.3": 0, "pytest airflow 2.11": 2}
