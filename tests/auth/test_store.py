"""The default token store, written from inside a real Airflow task (dag.test: the task SDK's Variable API on
Airflow 3, the metadata DB on 2.11), then read by another process; and the stores' own rules."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from airflow_provider_cc.auth.lease import Holder, process_start
from airflow_provider_cc.auth.store import (
    AirflowVariableStore,
    FileTokenStore,
    RedisTokenStore,
    TokenState,
    TokenStore,
    open_store,
    store_key,
)
from airflow_provider_cc.exceptions import ConstantContactTokenStoreError
from tests import warm
from tests.conftest import ROOT, copy_migrated_db, start_v3

OTHER_PROCESS = """
import json, sys
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
hook = ConstantContactV3Hook()
hook.get_campaign(sys.argv[1])
print(json.dumps({"token_calls": hook.tokens.token_calls, "key": hook.tokens.store.key}))
"""


DAG_FILE = """
import os
import pendulum
try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task

with DAG("cc_v3_token_store", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    @task
    def pull():
        from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

        hook = ConstantContactV3Hook()
        hook.get_campaign(os.environ["CC_CAMPAIGN"])
        return hook.tokens.store.key

    pull()
"""

# dag.test in a process of its own (Airflow 3 runs the task through its in-process supervisor, so the task's
# Variable write goes through the task SDK), then the Variable's row read from the metadata DB.
RUN_DAG = """
import inspect, json, sys
import pendulum
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
from airflow_provider_cc._compat import AIRFLOW_V_3
options = {"include_examples": False} if "include_examples" in inspect.signature(DagBag).parameters else {}
dag = DagBag(dag_folder=sys.argv[1], **options).dags["cc_v3_token_store"]
when = pendulum.datetime(2024, 1, 2, tz="UTC")
run = dag.test(logical_date=when) if AIRFLOW_V_3 else dag.test(execution_date=when)
from airflow.models import Variable
from airflow.utils.session import create_session
with create_session() as session:
    keys = [v.key for v in session.query(Variable).filter(Variable.key.like("constant_contact_v3_tokens__%")).all()]
print("RESULT " + json.dumps({"states": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
                              "variables": keys}))
"""


def test_a_task_writes_the_default_store_and_another_process_reads_it(monkeypatch, tmp_path, migrated_db):
    emu = start_v3(monkeypatch, "airflow")
    try:
        cid = next(iter(emu.v3.view.campaigns))
        home, dags = tmp_path / "home", tmp_path / "dags"
        for folder in (home, dags):
            folder.mkdir()
        (dags / "cc_v3_token_store.py").write_text(DAG_FILE)
        # A home of its own whose DAGs folder holds the DAG (Airflow 3's dag.test runs only a DAG it can parse).
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__FERNET_KEY": os.environ[
                        "AIRFLOW__CORE__FERNET_KEY"], "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db", "CC_CAMPAIGN": cid})
        copy_migrated_db(migrated_db, home / "airflow.db")  # what `airflow db migrate` makes, made once per run
        ran = subprocess.run([sys.executable, "-c", RUN_DAG, str(dags)], capture_output=True, text=True, cwd=ROOT,
                             timeout=900, env=env)
        assert ran.returncode == 0, ran.stderr[-3000:]
        result = json.loads(next(line for line in ran.stdout.splitlines() if line.startswith("RESULT "))[7:])
        other = subprocess.run([sys.executable, "-c", OTHER_PROCESS, cid], capture_output=True, text=True, cwd=ROOT,
                               timeout=600, env=env)
        assert other.returncode == 0, other.stderr[-2000:]
        again = json.loads(other.stdout.strip().splitlines()[-1])
    finally:
        emu.stop()
    assert result["states"] == {"pull": "success"}
    assert again["key"] in result["variables"], "the task wrote the Variable"
    assert again["token_calls"] == 0, "the other process used the task's stored access token"
    assert [c[2] for c in emu.v3.oauth.token_calls if c[1] == "refresh_token"] == ["ok"]


def test_file_store_writes_atomically_with_private_permissions_and_names_a_corrupt_file(tmp_path):
    store = FileTokenStore(str(tmp_path / "dir"), "k")
    assert store.read() is None
    store.write(TokenState(refresh_token="r-1", access_token="a-1", generation=1))
    assert (tmp_path / "dir" / "k.json").stat().st_mode & 0o777 == 0o600
    assert store.read().generation == 1  # type: ignore[union-attr]
    assert [p.name for p in (tmp_path / "dir").iterdir()] == ["k.json"], "no temporary file left"
    (tmp_path / "dir" / "k.json").write_text("{not json")
    with pytest.raises(ConstantContactTokenStoreError, match="not a token state"):
        store.read()


def test_store_specs_and_the_variable_name_masks_in_airflow():
    from airflow_provider_cc._compat import AIRFLOW_V_3

    assert isinstance(open_store("airflow", "chain", "client"), AirflowVariableStore)
    assert isinstance(open_store("/tmp/x", "chain", "client"), FileTokenStore)
    key = store_key("chain", "client")
    assert "client" not in key, "the client id is hashed"
    if AIRFLOW_V_3:
        from airflow.sdk._shared.secrets_masker.secrets_masker import should_hide_value_for_key
    else:
        from airflow.utils.log.secrets_masker import should_hide_value_for_key
    assert should_hide_value_for_key(key), "Airflow masks the Variable's value in the UI"


# ---- a lock whose holder died, a lock kept alive, a lock lost -----------------------------------------------------
HOLD = """
import sys, time
from airflow_provider_cc.auth.store import AirflowVariableStore, RedisTokenStore
kind, url, key = sys.argv[1:4]
store = RedisTokenStore(url, key) if kind == "redis" else AirflowVariableStore(key, settle=0.05)
with store.lock(60):
    print("held", flush=True)
    time.sleep(120)
"""


def _store(kind: str, request: pytest.FixtureRequest) -> tuple[TokenStore, str]:
    if kind == "redis":
        url = request.getfixturevalue("redis_server").url
        return RedisTokenStore(url, "k-dead-holder"), url
    request.getfixturevalue("airflow_db")
    return AirflowVariableStore(f"k-dead-holder-{os.getpid()}", settle=0.05), "-"


@pytest.mark.parametrize("kind", ["airflow", pytest.param("redis", marks=pytest.mark.airflow_independent)])
def test_a_lock_whose_holder_was_killed_is_taken_over_at_once_on_its_host(request, caplog, kind):
    """The store's lock outlives the process killed holding it; a waiter on the same host sees that its holder is
    gone and takes it over, instead of waiting for the lock's time to live (formerly 120 s)."""
    store, url = _store(kind, request)
    holder = warm.start(HOLD, kind, url, store.key, cwd=str(ROOT))  # a process of its own, forked warm
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    finally:
        holder.kill()
        holder.wait(timeout=30)
        holder.close()
    caplog.set_level(logging.WARNING)
    with store.lock(20):  # within 20 s, well under the old 120-s lock: at once when the holder is seen dead
        pass
    assert f"PID {holder.pid} on this host) is gone" in caplog.text


@pytest.mark.airflow_independent
def test_a_live_holder_keeps_its_redis_lock_past_its_time_to_live(redis_server):
    """The heartbeat renews the lock while it is held: a waiter never takes over a live holder's lock, however
    long the refresh takes; once released, the lock is free at once."""
    holder, waiter = RedisTokenStore(redis_server.url, "k-live"), RedisTokenStore(redis_server.url, "k-live")
    holder.lock_ttl = waiter.lock_ttl = 1.0
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.lock(10):
            held.set()
            done.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(ConstantContactTokenStoreError, match="held the token lock for more than 3 s"), \
                waiter.lock(3):  # three times the lock's time to live
            pass
    finally:
        done.set()
        thread.join(30)
    with waiter.lock(10):
        pass


@pytest.mark.airflow_independent
def test_a_redis_lock_lost_while_held_stops_token_calls_and_fences_writes(redis_server):
    store = RedisTokenStore(redis_server.url, "k-lost")
    store.lock_ttl = 0.6
    client = redis_server.client()
    store.write(TokenState(refresh_token="r-1", generation=1))
    with store.lock(10):
        client.delete(store._lock_key)  # the lock expired (Redis out of reach for longer); nobody took it
        store.write(TokenState(refresh_token="r-2", generation=2))  # over the state the refresh started from
    assert store.read().refresh_token == "r-2"  # type: ignore[union-attr]
    with store.lock(10):
        client.delete(store._lock_key)
        client.set(store._state_key, TokenState(refresh_token="r-3", generation=3).to_json())  # another's refresh
        with pytest.raises(ConstantContactTokenStoreError, match="lock was lost before the new tokens were written"):
            store.write(TokenState(refresh_token="r-4", generation=3))
    with store.lock(10):
        client.set(store._lock_key, "another-process")  # taken over by another process
        with pytest.raises(ConstantContactTokenStoreError, match="nothing was written"):
            store.write(TokenState(refresh_token="r-5", generation=4))
        deadline = time.monotonic() + 30
        while not store._owner.heartbeat.lost and time.monotonic() < deadline:  # the next beat sees it
            time.sleep(0.05)
        with pytest.raises(ConstantContactTokenStoreError, match="token lock was lost while this process held it"):
            store.confirm_held()
        client.delete(store._lock_key)
    assert store.read().refresh_token == "r-3"  # type: ignore[union-attr]
    client.close()


def test_a_held_variable_lease_is_renewed(airflow_db):
    store = AirflowVariableStore(f"k-renewed-{os.getpid()}", settle=0.05)
    store.lock_ttl = 1.2
    with store.lock(10):
        first = store._lease()[1]
        deadline = time.monotonic() + 30
        while store._lease()[1] <= first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store._lease()[1] > first, "renewed while held"
        store.confirm_held()
    assert store._lease()[0] == "", "released"


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_a_holder_is_dead_only_when_its_process_on_this_host_is_gone():
    me = Holder.new()
    assert Holder.decode(me.encode()) == me and not me.dead()
    assert Holder(me.owner, me.host, me.pid, "1").dead(), "its PID is another process's now"
    assert not Holder(me.owner, "another-host", 2 ** 22 + 1, "1").dead(), "another host's holder: only its TTL"
    assert not Holder.decode("0123456789abcdef").dead(), "an older version's lock names no process"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start(child.pid)
        assert started is not None and not Holder("o", me.host, child.pid, started).dead()
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped: a zombie
        assert Holder("o", me.host, child.pid, started).dead(), "a zombie is dead"
    finally:
        child.kill()
        child.wait(timeout=30)
    assert Holder("o", me.host, child.pid, started).dead()


# ---- an Airflow store that cannot be read is failing, never free or empty -------------------------------------------
class Outage(AirflowVariableStore):
    """Airflow's Variables during a metadata-DB outage: every read answers "missing" (the API server's 404 for a
    Variable it failed to read), every write fails. ``after_lease``: the outage starts once a lease is written."""

    down = False
    after_lease = False

    def _get(self, key: str) -> str | None:
        return None if self.down else super()._get(key)

    def _set(self, key: str, value: str) -> None:
        if self.down:
            raise ConstantContactTokenStoreError(f"the Airflow Variable {key} cannot be written (OperationalError)")
        super()._set(key, value)
        if self.after_lease and key == self._lease_key and value:
            self.down = True


def test_a_lease_that_reads_back_missing_is_a_store_error_and_blocks_no_later_refresh(airflow_db, monkeypatch):
    from airflow_provider_cc.auth import store as store_module

    key = f"k-outage-{os.getpid()}"
    store = Outage(key, settle=0.05)
    store.after_lease = True
    with pytest.raises(ConstantContactTokenStoreError, match="lease this process had just written reads as missing"
                                                              ".*Task retries apply"), store.lock(10):
        pass
    store.down = store.after_lease = False  # the DB is back
    monkeypatch.setattr(store_module, "_ABANDONED", set())  # as another process sees it
    with AirflowVariableStore(key, settle=0.05).lock(10):  # not the failed try's whole lease (30 s; formerly 120)
        pass


def test_tokens_that_read_missing_while_the_held_lease_does_too_are_a_store_error(airflow_db):
    store = Outage(f"k-outage-read-{os.getpid()}", settle=0.05)
    store.write(TokenState(refresh_token="r-1"))
    with store.lock(10):
        store.down = True
        with pytest.raises(ConstantContactTokenStoreError, match="reads as missing, and so does the lease"):
            store.read()
        store.down = False
        assert store.read().refresh_token == "r-1"  # type: ignore[union-attr]


def test_a_variable_the_metadata_db_cannot_read_is_a_store_error_not_missing(airflow_db):
    """Airflow's Variable.get logs a failed read and answers "missing"; the store reads the row itself, so a
    metadata DB that fails (here: its file replaced by an empty one, "no such table") is an error."""
    from airflow import settings

    store = AirflowVariableStore(f"k-broken-db-{os.getpid()}")
    store.write(TokenState(refresh_token="r-1"))
    path = settings.engine.url.database
    files = [f"{path}{suffix}" for suffix in ("", "-wal", "-shm")]
    settings.engine.dispose()
    moved = [name for name in files if os.path.exists(name)]
    for name in moved:
        os.rename(name, f"{name}.away")
    try:
        with pytest.raises(ConstantContactTokenStoreError, match="cannot be read .*task retries apply"):
            store.read()
    finally:
        settings.engine.dispose()
        for name in files:
            if os.path.exists(name):
                os.remove(name)
        for name in moved:
            os.rename(f"{name}.away", name)
    assert store.read().refresh_token == "r-1"  # type: ignore[union-attr]


def test_in_an_airflow_3_task_a_variable_read_the_api_server_failed_is_an_error_not_missing(monkeypatch):
    """Airflow 3's Variable.get in a task answers "missing" for any error of the supervisor or the API server;
    the store asks the supervisor itself and tells the two apart."""
    from airflow_provider_cc._compat import AIRFLOW_V_3

    if not AIRFLOW_V_3:
        pytest.skip("the task SDK is Airflow 3's")
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import ErrorResponse, VariableResult

    class Supervisor:
        def __init__(self, answer: Any) -> None:
            self.answer = answer

        def send(self, message: Any) -> Any:
            assert message.key == store.key
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    store = AirflowVariableStore("k-sdk")
    failed = AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR, detail={"status_code": 500}))
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Supervisor(failed), raising=False)
    with pytest.raises(ConstantContactTokenStoreError, match="cannot be read"):
        store.read()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Supervisor(ErrorResponse(
        error=ErrorType.VARIABLE_NOT_FOUND, detail={"key": "k-sdk"})))
    assert store.read() is None
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Supervisor(VariableResult(
        key="k-sdk", value=TokenState(refresh_token="r-1").to_json())))
    assert store.read().refresh_token == "r-1"  # type: ignore[union-attr]
