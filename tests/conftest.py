"""Shared fixtures: an isolated Airflow home, the emulator on a free port, a scripted HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
# A copy of ../shared/reference/sdk-fixtures: real sample responses from Constant Contact's own SDKs.
FIXTURES = ROOT / "tests" / "sdk_fixtures"

# Airflow reads its configuration at import: set it before anything imports airflow.
_HOME = tempfile.mkdtemp(prefix="cc-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# Airflow 2.11 warns on every import unless timers are in milliseconds, as Airflow 3 always does.
os.environ["AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ.pop("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", None)
# One Fernet key for every process of the test session, as a deployment shares one (otherwise the first
# subprocess writes a generated key into the home's airflow.cfg, and Variables it writes cannot be read here).
if not os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
    from cryptography.fernet import Fernet

    os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()

import pytest  # noqa: E402

from airflow_provider_cc.emulator import DataConfig, Emulator, FaultConfig  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# Airflow 3's backfill of the daily example is made on the system test's deployment and run by its scheduler
# (tests/system/test_scheduler.py); test_example_backfill.py is Airflow 2's `airflow dags backfill`.
collect_ignore = [] if version("apache-airflow").startswith("2.") else ["test_example_backfill.py"]

FAST_RETRY = {"requests_per_second": 0, "backoff": 0.01, "max_retries": 10}

# Tests that do not depend on the Airflow version: the emulator is plain HTTP, the benchmarks and the demo run
# on the default Airflow, where their figures come from, the documentation site, the release files and the test
# tooling are the same whichever Airflow runs them. The hook's HTTP (transport, paging, limiters, answer
# checks, the login flows) and the single-fault suite exercise the provider's own code: what of Airflow they
# pass through (connections, exceptions, operators, ObjectStoragePath) is tested on every version by
# tests/hooks/test_connection*.py, the operator, sensor, trigger, storage and example-DAG tests. Marked
# ``airflow_independent``; scripts/run.py runs them once: with its first Airflow version, but those of
# ``LAST_VERSION`` (also marked ``last_version``) with its last, so that the versions' runs end together
# (measured: the 3.3 run went on alone for two minutes, its cores a quarter idle).
# The account engine's own decisions run once too (ENGINE), as the single-fault suite does: what a hostile or
# odd answer does to a run, re-checks, the switch-over views, the dimension files and the completeness check,
# what DuckDB reads back, the catalogue's schemas. They reach Airflow only through the operators' ``execute``,
# which tests/operators/ run on every version. Run twice, they cost 40 CPU-seconds on 3.3 and 31 on 2.11. The
# first three run with the last version, the others with the first, so that the versions' runs end together.
ENGINE = ("tests/operators/test_account_integrity.py", "tests/operators/test_account_recheck.py",
          "tests/test_switchover.py", "tests/account/", "tests/test_duckdb_load.py", "tests/test_reports.py")
AIRFLOW_INDEPENDENT = ("tests/emulator/", "tests/test_bench.py", "tests/test_docs.py", "tests/test_release.py",
                       "tests/test_reaper.py", "tests/test_run_command.py", "tests/test_scheduling.py",
                       "tests/test_demo.py", "tests/invariants/", "tests/auth/test_flows.py",
                       *(f"tests/hooks/test_{name}.py" for name in (
                           "campaigns", "constant_contact", "constant_contact_v3", "limiter", "paging",
                           "redis_limiter", "summaries", "transport", "transport_v3")),
                       "tests/test_packaging.py::test_twine", "tests/test_packaging.py::test_sdist_carries",
                       "tests/test_packaging.py::test_wheel_is", *ENGINE)
LAST_VERSION = ("tests/invariants/", *ENGINE[:3])
# Modules (and folders) whose tests share an expensive module- or session-scoped fixture (an account pulled
# once, the object-store servers): the test command schedules each as one unit (tests/scheduling.py), so one
# worker makes the fixture instead of every worker that draws one of its tests.
ONE_WORKER = ("tests/operators/test_account_recheck.py", "tests/operators/test_xrefs.py", "tests/test_switchover.py",
              "tests/test_duckdb_load.py", "tests/emulator/test_data.py", "tests/storage/")
# The longest tests (real Airflow processes, many subprocesses) and units (the cross-reference's: about a second a
# test, waiting on the token endpoint's one call a second), longest first: scripts/run.py hands each xdist worker
# one unit at a time (a test, or a group above), in this order, so no worker is left with a long one at the end.
LONGEST_FIRST = ("tests/system/test_scheduler.py", "tests/test_bench.py", "tests/system/", "tests/test_demo.py",
                 "tests/test_example_backfill.py", "tests/operators/test_xrefs.py",
                 "tests/operators/test_account_recheck.py", "tests/auth/test_tokens.py::test_eight_threads",
                 "tests/auth/test_store.py", "tests/test_assets.py", "tests/test_lineage.py",
                 "tests/hooks/test_connection.py::test_airflow", "tests/test_packaging.py", "tests/test_release.py",
                 "tests/emulator/test_cli.py", "tests/operators/test_stopping.py", "tests/hooks/test_redis_limiter.py",
                 "tests/storage/test_unfinished_uploads.py", "tests/test_example_dags.py", "tests/test_docs.py")


def _cpu_seconds() -> float:
    """CPU seconds of this process and of the subprocesses it waited for."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


# CC_TEST_CPU=N: the N tests that cost the most CPU seconds (their setup, call and teardown, with the
# subprocesses and servers they waited for), after the run. On a busy machine --durations measures the
# machine; this measures the tests.
# The JUnit file also has each test's start (``started_at``, Unix time): which tests run last, when one version's
# run has ended and fewer workers share the cores.
_CPU_STARTED: dict[str, tuple[float, float]] = {}


def pytest_runtest_logstart(nodeid: str) -> None:
    _CPU_STARTED[nodeid] = (_cpu_seconds(), time.time())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    if call.when == "teardown" and item.nodeid in _CPU_STARTED:
        cpu, started = _CPU_STARTED.pop(item.nodeid)
        outcome.get_result().user_properties.extend([("cpu_seconds", _cpu_seconds() - cpu),
                                                     ("started_at", round(started, 3))])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    wanted = int(os.environ.get("CC_TEST_CPU") or 0)
    if not wanted:
        return
    costs = sorted(((dict(r.user_properties).get("cpu_seconds", 0.0), r.nodeid)
                    for reports in terminalreporter.stats.values() for r in reports
                    if getattr(r, "when", None) == "teardown"), reverse=True)
    terminalreporter.write_sep("=", f"{wanted} tests with the most CPU seconds (of {sum(c for c, _ in costs):.0f})")
    for cost, nodeid in costs[:wanted]:
        terminalreporter.write_line(f"{cost:8.1f}  {nodeid}")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadscope`` (the test command's): our units (:mod:`tests.scheduling`)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from tests.scheduling import Units

    return Units(config, log, ONE_WORKER)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(AIRFLOW_INDEPENDENT):
            item.add_marker(pytest.mark.airflow_independent)
        if item.nodeid.startswith(LAST_VERSION):
            item.add_marker(pytest.mark.last_version)
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)),
                    len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the collection order otherwise


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """The folder ``name`` of this test run, made once however many xdist workers ask: the first calls
    ``make(folder)``, the others wait for it and get the same folder (theirs to read, not to change). A
    ``make`` that fails leaves the folder unmarked as done: the next asking empties it and tries again."""
    import fcntl
    import shutil

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = shared / name, shared / f"{name}.done"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite metadata DB of this Airflow (shared by the xdist workers): copy it
    (:func:`copy_migrated_db`) into a fresh Airflow home instead of running ``airflow db migrate`` there, about 15
    CPU-seconds each. Migrated once and kept between runs with the demo's (``kept_migrated_db`` in
    scripts/demo.py). Made without Airflow 2's default connections, which its migrate would encrypt with the
    Fernet key of the moment."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cc_demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)

    def migrate(home: Path) -> None:
        def run() -> bool:
            env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
            env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
                        "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",
                        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"})
            done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                                  text=True, timeout=900)
            assert done.returncode == 0, f"airflow db migrate failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            return True

        assert demo.kept_migrated_db(home / "airflow.db", run)

    return made_once(tmp_path_factory, "migrated-airflow-db", migrate) / "airflow.db"


def copy_migrated_db(template: Path, database: Path) -> None:
    """Put a freshly migrated metadata DB at ``database`` (an Airflow home's ``airflow.db``)."""
    import shutil

    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, database)


@pytest.fixture(scope="session")
def airflow_db(migrated_db: Path) -> str:
    """The session's Airflow home with a migrated SQLite metadata DB (for dag.test)."""
    copy_migrated_db(migrated_db, Path(_HOME) / "airflow.db")
    return _HOME


def start_emulator(monkeypatch: pytest.MonkeyPatch, data: DataConfig | None = None,
                   faults: FaultConfig | None = None, **extra: Any) -> Emulator:
    """Start an emulator and point ``constant_contact_default`` at it."""
    emu = Emulator(data or DataConfig(campaigns=2, contacts=200, activities=150), faults).start()
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.connection_json(**{**FAST_RETRY, **extra}))
    return emu


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A small emulator (2 SENT campaigns, 150 sends each) behind ``constant_contact_default``."""
    emu = start_emulator(monkeypatch)
    yield emu
    emu.stop()


class ScriptedServer(ThreadingHTTPServer):
    """Answers each path with a fixed ``(status, body, headers)``; records what it was asked."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.routes: dict[str, list[tuple[int, Any, dict[str, str]]]] = {}
        self.seen: list[str] = []
        self.headers: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, path_and_query: str, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Queue an answer; the last one queued for a path repeats."""
        self.routes.setdefault(path_and_query, []).append((status, body, headers or {}))


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedServer

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        self.server.headers.append(dict(self.headers))
        path, _, query = self.path.partition("?")
        query = "&".join(p for p in query.split("&") if not p.startswith("api_key="))
        key = f"{path}?{query}" if query else path
        answers = self.server.routes.get(key) or self.server.routes.get(path) or [(404, [], {})]
        status, body, headers = answers.pop(0) if len(answers) > 1 else answers[0]
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """A scripted server behind ``constant_contact_default``."""
    server = ScriptedServer()
    # A short poll: shutdown() waits for it, and the default 0.5 s cost half a second per test.
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    conn = {"conn_type": "constant_contact", "host": server.url, "password": "scripted-token",
            "extra": {"api_key": "scripted-key", **FAST_RETRY, "max_retries": 2}}
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps(conn))
    yield server
    server.shutdown()
    server.server_close()


class Proxy(ThreadingHTTPServer):
    """A hostile server in front of an emulator (its v2 API, and its v3 API's ``/v3/`` paths): each answer of
    the emulator's routes (no HTTP hop) passes through ``mutate(path, query, status, body) -> (status, body)``,
    which may rewrite it. Records what it was asked (path and query, api_key left out)."""

    daemon_threads = True

    def __init__(self, emu: Emulator, mutate: Any = None) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.emu = emu
        self.mutate = mutate or (lambda path, query, status, body: (status, body))
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> Proxy:
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def asked(self, path: str) -> int:
        """How many requests went to exactly ``path``."""
        with self.lock:
            return sum(1 for seen, _ in self.seen if seen == path)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Proxy

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        from urllib.parse import parse_qsl, urlsplit

        split = urlsplit(self.path)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        query = dict(pairs)
        with self.server.lock:
            self.server.seen.append((split.path, {k: v for k, v in query.items() if k != "api_key"}))
        v3 = self.server.emu.v3 if split.path.startswith("/v3/") else None
        reply = (self.server.emu.server.answer(split.path, query, self.headers) if v3 is None
                 else v3.answer(split.path, pairs, self.headers))
        if reply is None:
            self.close_connection = True
            return
        body = json.loads(reply[1]) if isinstance(reply[1], bytes) else reply[1]
        status, body = self.server.mutate(split.path, query, reply[0], body)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def start_proxy(monkeypatch: pytest.MonkeyPatch, emu: Emulator, mutate: Any = None, **extra: Any) -> Proxy:
    """A :class:`Proxy` in front of ``emu``, behind ``constant_contact_default``."""
    proxy = Proxy(emu, mutate).start()
    conn = {**emu.connection(**{**FAST_RETRY, "max_retries": 2, **extra}), "host": proxy.url}
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps(conn))
    return proxy
def run_threads(work: list[tuple[Any, tuple[Any, ...]]], timeout: float = 120) -> None:
    """Run ``(function, args)`` pairs in threads at once and wait for them (each at most ``timeout`` s)."""
    threads = [threading.Thread(target=function, args=args) for function, args in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


def as_output(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the provider emits for served records: ids as strings, nothing else changed."""
    out = []
    for record in records:
        record = dict(record)
        for key in ("id", "campaign_id", "contact_id", "link_id"):
            if isinstance(record.get(key), int):
                record[key] = str(record[key])
        out.append(record)
    return out


def load_dags() -> tuple[dict[str, Any], list[str], list[str]]:
    """Import example_dags with Airflow's DagBag: (dags by id, import errors, warnings from our code)."""
    import inspect
    import warnings

    try:  # Airflow 3.1+
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # 2.x and 3.0
        from airflow.models.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        options = {"include_examples": False} if "include_examples" in inspect.signature(DagBag).parameters else {}
        bag = DagBag(dag_folder=str(ROOT / "example_dags"), **options)
    ours = [f"{w.filename}:{w.message}" for w in caught
            if "airflow_provider_cc" in w.filename or "example_dags" in w.filename]
    return bag.dags, list(bag.import_errors.values()), ours


def dag_test(dag: Any, logical_date: Any, run_conf: dict[str, Any] | None = None) -> Any:
    """``dag.test`` on either Airflow; ``logical_date=None`` is a run without one (Airflow 3 only)."""
    from airflow_provider_cc._compat import AIRFLOW_V_3

    if AIRFLOW_V_3:
        return dag.test(logical_date=logical_date, run_conf=run_conf)
    # Airflow 2: dag.test first deletes an earlier run of the same DAG and date (another test's, in this
    # process's DB), which fails unless the web app's users table, that a run's note refers to, is registered
    # (apache/airflow#41119). Whether an earlier test imported it depended on the test order.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the import warns about Flask and SQLAlchemy deprecations, not ours
        import airflow.providers.fab.auth_manager.models  # noqa: F401
    return dag.test(execution_date=logical_date, run_conf=run_conf)


V3_CONN_ENV = "AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT"


def start_v3(monkeypatch: pytest.MonkeyPatch, store: str, data: DataConfig | None = None,
             faults: FaultConfig | None = None, options: Any = None, **extra: Any) -> Emulator:
    """Start an emulator and point ``constant_contact_v3_default`` at its v3 API (a chain of its own, tokens
    in ``store``: a directory, a Redis URL or ``airflow``)."""
    from airflow_provider_cc.emulator import V3Options

    emu = Emulator(data or DataConfig(campaigns=2, contacts=60, activities=50), faults,
                   v3=options or V3Options(device_interval=1)).start()
    monkeypatch.setenv(V3_CONN_ENV, emu.v3_connection_json(**{**FAST_RETRY, "oauth_store": store, **extra}))
    return emu


@pytest.fixture
def v3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Emulator]:
    """An emulator behind ``constant_contact_v3_default``, its tokens in a directory of the test's own."""
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"))
    yield emu
    emu.stop()
