"""The package as it will be published: sdist and wheel built by the standard front-end, checked by twine,
the wheel installed (not editable) into a clean virtual environment where Airflow finds the provider and the
sdist's example DAGs import.

The clean venv is kept between runs (``.venvs/clean/``): the first run makes it, about 20 s with uv's cache warm
(it is after the project's venvs were built with uv; without uv the install falls back to pip and downloads
Airflow, which takes minutes); a later run only puts its own wheel in place of the last one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import airflow_provider_cc
from tests.conftest import ROOT, load_dags, made_once

if TYPE_CHECKING:
    from collections.abc import Iterator

DIST = "airflow-provider-constant-contact"
PACKAGE = ROOT / "airflow_provider_cc"
EXTRAS = {"s3", "gcs", "azure", "parquet", "redis", "openlineage"}
MINUTES = 60


def _uv() -> str | None:
    local = ROOT / ".venvs" / "uv" / "bin" / "uv"
    return str(local) if local.exists() else shutil.which("uv")


def _run(cmd: list[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}"
    return proc


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without this test session's Airflow settings or any path to the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "OPENLINEAGE"))}
    return {**env, **extra}


def _package_files() -> set[str]:
    """Every file of the package in the checkout (sources, py.typed, JSON schemas...), as archive paths."""
    return {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")}


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build``: the sdist, then the wheel built from that sdist (so the sdist must be complete).
    Once per test run, whichever xdist workers run these tests."""

    def build(out: Path) -> None:
        cmd = [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)]
        uv = _uv()
        env = _clean_env()
        if uv:  # the same isolated build, its build requirements installed by uv (fast, cached)
            cmd[3:3] = ["--installer", "uv"]
            env["UV"] = uv
        _run(cmd, timeout=5 * MINUTES, env=env, cwd=out)

    out = made_once(tmp_path_factory, "dist", build)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "dir": out}


def test_twine_check_strict_passes(built):
    _run([sys.executable, "-m", "twine", "check", "--strict", str(built["sdist"]), str(built["wheel"])],
         timeout=2 * MINUTES)


def test_sdist_carries_what_a_user_needs(built):
    with tarfile.open(built["sdist"]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    examples = {str(p.relative_to(ROOT)) for p in (ROOT / "example_dags").glob("*.py")}
    licenses = {p.name for p in ROOT.glob("LICEN[CS]E*")} | {p.name for p in ROOT.glob("NOTICE*")}
    wanted = {"README.md", "CHANGELOG.md", "CONTRIBUTING.md", "SECURITY.md", "mkdocs.yml", "pyproject.toml",
              "PKG-INFO", "airflow_provider_cc/py.typed", "scripts/run.py", "tests/conftest.py", *examples,
              *licenses, *_package_files()}
    assert wanted - names == set()
    assert not [n for n in names if "__pycache__" in n or n.startswith((".venvs", ".airflow", "output/"))]


def test_wheel_is_the_package_with_its_data_and_metadata(built):
    with zipfile.ZipFile(built["wheel"]) as whl:
        names = set(whl.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(whl.read(info).decode())
        entry_points = whl.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert _package_files() - names == set(), "every package file ships, py.typed and JSON schemas included"
    assert {n.split("/")[0] for n in names} == {"airflow_provider_cc", info.split("/")[0]}, \
        "nothing outside the package (no top-level example_dags or tests)"
    assert metadata["Name"] == DIST and metadata["Version"] == airflow_provider_cc.__version__
    assert set(metadata.get_all("Provides-Extra")) >= EXTRAS
    assert "[apache_airflow_provider]" in entry_points and "get_provider_info:get_provider_info" in entry_points
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert f"pypi.org/project/{DIST}" not in " ".join(urls.values()), "points at a page that does not exist yet"
    assert all(u.startswith("https://") for u in urls.values())


def _pins() -> str:
    """This environment's distributions but the provider, one ``name==version`` a line, the way an Airflow
    constraints file pins a deployment."""
    names = {f"{dist.metadata['Name']}=={dist.version}" for dist in importlib.metadata.distributions()
             if dist.metadata["Name"] and re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower() != DIST}
    return "\n".join(sorted(names)) + "\n"


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, mode)
        yield


def _install(venv: Path, wheel: Path, constraints: Path) -> None:
    """Make ``venv`` with the wheel and this Airflow (a first install), or put this run's wheel in it instead of
    the last run's (every later run)."""
    python = venv / "bin" / "python"
    uv = _uv()
    if (venv / ".installed").exists():
        again = ([uv, "pip", "install", "-q", "--python", str(python), "--reinstall-package", DIST] if uv
                 else [str(python), "-m", "pip", "install", "-q", "--force-reinstall"])
        _run([*again, "--no-deps", str(wheel)], timeout=5 * MINUTES, env=_clean_env())
        return
    shutil.rmtree(venv, ignore_errors=True)  # a first install that did not end
    airflow = f"apache-airflow=={importlib.metadata.version('apache-airflow')}"
    if uv:
        _run([uv, "venv", "-q", "--python", sys.executable, str(venv)], timeout=2 * MINUTES, env=_clean_env())
        _run([uv, "pip", "install", "-q", "--python", str(python), "-c", str(constraints), str(wheel), airflow],
             timeout=10 * MINUTES, env=_clean_env())
    else:
        _run([sys.executable, "-m", "venv", str(venv)], timeout=2 * MINUTES, env=_clean_env())
        _run([str(python), "-m", "pip", "install", "-q", "-c", str(constraints), str(wheel), airflow],
             timeout=15 * MINUTES, env=_clean_env())
    (venv / ".installed").touch()


@pytest.fixture(scope="session")
def _clean_venv_made(built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A venv with the wheel (not editable), this session's Airflow and their dependencies, and nothing else,
    pinned to this environment's versions. Kept between runs in ``.venvs/clean/``, one per Airflow version,
    Python, pins and wheel requirements (any change of those makes a new one): a later run only reinstalls the
    provider from its own wheel, and pays neither the install nor the compiling of Airflow's modules on their
    first import again (about 7 CPU-seconds a version). Once per test run, as ``built``; returns the venv and its
    lock, which keeps another test run from reinstalling the provider while this one's tests use it."""
    with zipfile.ZipFile(built["wheel"]) as whl:
        info = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        requires = Parser().parsestr(whl.read(info).decode()).get_all("Requires-Dist") or []
    pins = _pins()
    key = hashlib.sha256("\n".join([sys.version, pins, *sorted(requires)]).encode()).hexdigest()[:16]
    airflow = importlib.metadata.version("apache-airflow")
    kept = ROOT / ".venvs" / "clean"
    kept.mkdir(parents=True, exist_ok=True)
    venv, lock = kept / f"airflow-{airflow}-{key}", kept / f"airflow-{airflow}-{key}.lock"

    def install(work: Path) -> None:
        (work / "constraints.txt").write_text(pins)
        with _locked(lock, fcntl.LOCK_EX):
            _install(venv, built["wheel"], work / "constraints.txt")
        for old in kept.glob(f"airflow-{airflow}-*"):  # an earlier set of pins of this Airflow
            if old.is_dir() and old != venv:
                shutil.rmtree(old, ignore_errors=True)
                old.with_name(old.name + ".lock").unlink(missing_ok=True)

    made_once(tmp_path_factory, "clean", install)
    return venv, lock


@pytest.fixture
def clean_venv(_clean_venv_made: tuple[Path, Path]) -> Iterator[Path]:
    """The kept clean venv, this run's wheel in it, for one test (no other run reinstalls it meanwhile)."""
    venv, lock = _clean_venv_made
    with _locked(lock, fcntl.LOCK_SH):
        yield venv


def _in_venv(venv: Path, args: list[str], home: Path) -> str:
    env = _clean_env(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
                     PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    return _run(args, timeout=5 * MINUTES, env=env, cwd=home).stdout


def test_installed_wheel_is_found_by_airflow(clean_venv, tmp_path):
    where = _in_venv(clean_venv, [str(clean_venv / "bin" / "python"), "-c",
                                  "import airflow_provider_cc; print(airflow_provider_cc.__file__)"], tmp_path)
    assert Path(where.strip()).is_relative_to(clean_venv), "the installed wheel, not the checkout"
    out = _in_venv(clean_venv, [str(clean_venv / "bin" / "airflow"), "providers", "get", DIST, "--full",
                                "-o", "json"], tmp_path)
    (info,), _ = json.JSONDecoder().raw_decode(out[out.index("[{"):])  # Airflow 3.0 logs to stdout first
    assert info["package-name"] == DIST and info["versions"][0] == airflow_provider_cc.__version__
    assert [c["connection-type"] for c in info["connection-types"]] == ["constant_contact", "constant_contact_v3"]


DAGBAG = """
import inspect, json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
options = {"include_examples": False} if "include_examples" in inspect.signature(DagBag).parameters else {}
bag = DagBag(dag_folder=sys.argv[1], **options)
print(json.dumps({"dags": sorted(bag.dags), "errors": {k: str(v) for k, v in bag.import_errors.items()}}))
"""


def test_sdist_example_dags_import_against_the_installed_wheel(built, clean_venv, tmp_path):
    with tarfile.open(built["sdist"]) as tar:
        tar.extractall(tmp_path / "sdist", filter="data")
    (examples,) = (tmp_path / "sdist").glob("*/example_dags")
    script = tmp_path / "dagbag.py"
    script.write_text(DAGBAG)
    out = _in_venv(clean_venv, [str(clean_venv / "bin" / "python"), str(script), str(examples)], tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert set(result["dags"]) == set(load_dags()[0]), "the same DAGs as in the development environment"
