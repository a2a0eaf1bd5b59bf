"""Ready to release: the changelog's newest release is the package's version, the release steps are written
down as the tools run them, CI runs the very test command, pre-commit runs the test command's ruff and mypy."""

from __future__ import annotations

import re
import shlex
import subprocess
from datetime import date

import pytest
import yaml

import airflow_provider_cc
from tests.conftest import ROOT

pytestmark = pytest.mark.airflow_independent

HEADING = re.compile(r"^## \[(?P<name>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?\s*$", re.MULTILINE)
VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def sections() -> list[tuple[str, str | None]]:
    return [(m["name"], m["date"]) for m in HEADING.finditer((ROOT / "CHANGELOG.md").read_text())]


def test_the_newest_released_changelog_entry_is_the_package_version():
    """The rule written at the changelog's top: an optional [Unreleased] first, then releases, newest first."""
    found = sections()
    assert found, "Keep a Changelog headings: ## [X.Y.Z] - YYYY-MM-DD"
    unreleased = [name for name, _ in found if name == "Unreleased"]
    assert unreleased in ([], ["Unreleased"]) and (not unreleased or found[0][0] == "Unreleased"), (
        "at most one [Unreleased] section, and only on top")
    released = [(name, when) for name, when in found if name != "Unreleased"]
    assert released[0][0] == airflow_provider_cc.__version__, (
        f"__version__ is {airflow_provider_cc.__version__}, the newest release in CHANGELOG.md {released[0][0]}")
    versions = []
    for name, when in released:
        assert VERSION.match(name) and when is not None, f"[{name}] needs a version X.Y.Z and a date"
        date.fromisoformat(when)
        versions.append(tuple(int(part) for part in name.split(".")))
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions), "newest first"


def test_the_release_steps_are_written_down_as_the_tools_run_them():
    steps = (ROOT / "CONTRIBUTING.md").read_text().split("## Releasing", 1)[1]
    for step in ("**Version.**", "**Test.**", "**Build.**", "**Check.**", "**Tag.**", "**Publish.**"):
        assert step in steps
    assert "airflow_provider_cc/__init__.py" in steps and (ROOT / "airflow_provider_cc/__init__.py").exists()
    assert 'version = {path = "airflow_provider_cc/__init__.py"}' in (ROOT / "pyproject.toml").read_text() or (
        '[tool.hatch.version]\npath = "airflow_provider_cc/__init__.py"' in (ROOT / "pyproject.toml").read_text()), (
        "the version the steps tell you to set is the one the build reads")
    assert "-m build --outdir dist ." in steps and "-m twine check --strict dist/*" in steps
    assert 'git tag -a vX.Y.Z' in steps and "## [Unreleased]" in steps
    # The same build and check run in tests/test_packaging.py on every test command.
    packaging = (ROOT / "tests" / "test_packaging.py").read_text()
    assert '"-m", "build"' in packaging and '"twine", "check", "--strict"' in packaging


def test_ci_runs_the_very_test_command_and_airflow_3_0_on_a_schedule():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "schedule"} <= set(triggers)
    runs = {job: [step.get("run") for step in spec["steps"] if step.get("run")]
            for job, spec in workflow["jobs"].items()}
    assert ["bash .ci/run"] in runs.values(), "the default matrix through .ci/run"
    assert ["python3 scripts/run.py test --airflow 3.0"] in runs.values()
    scheduled = next(job for job, spec in workflow["jobs"].items()
                     if runs[job] == ["python3 scripts/run.py test --airflow 3.0"])
    assert "schedule" in workflow["jobs"][scheduled]["if"]
    assert "exec python3 scripts/run.py test" in (ROOT / ".ci" / "run").read_text()
    assert all(spec.get("timeout-minutes", 360) <= 90 for spec in workflow["jobs"].values())


def test_pre_commit_runs_the_test_commands_ruff_and_mypy():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) >= {"ruff", "mypy"}
    for hook_id in ("ruff", "mypy"):
        command = shlex.split(hooks[hook_id]["entry"])
        assert command[:3] == [".venvs/airflow-3.3/bin/python", "-m", hook_id], "the test command's environment"
        files = [] if hooks[hook_id].get("pass_filenames") is False else ["airflow_provider_cc/lineage.py"]
        proc = subprocess.run([str(ROOT / command[0]), *command[1:], *files], cwd=ROOT, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
