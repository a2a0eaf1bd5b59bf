"""The default token store, written from inside a real Airflow task (dag.test: the task SDK's Variable API on
Airflow 3, the metadata DB on 2.11), then read by another process; and the stores' own rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from airflow_provider_cc.auth.store import AirflowVariableStore, FileTokenStore, TokenState, open_store, store_key
from airflow_provider_cc.exceptions import ConstantContactTokenStoreError
from tests.conftest import ROOT, start_v3

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


def test_a_task_writes_the_default_store_and_another_process_reads_it(monkeypatch, tmp_path):
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
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                       timeout=900)
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
