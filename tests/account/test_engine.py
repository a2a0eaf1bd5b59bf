"""The account engine on its own, without an operator: plain values in, the same files and manifest out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.account import AccountEngine, Plan, Wiring
from airflow_provider_cc.dialects import dialect_for
from airflow_provider_cc.emulator import DataConfig
from airflow_provider_cc.exceptions import ConstantContactBudgetError
from airflow_provider_cc.operators.output import _FileOutput
from airflow_provider_cc.stopping import Stopper
from airflow_provider_cc.units import Partitioning
from airflow_provider_cc.window import Window
from tests.conftest import start_emulator
from tests.operators.test_account import DAY, WEEK, data_files, pull

if TYPE_CHECKING:
    from pathlib import Path


class Files(_FileOutput):
    """The file output alone (what the operator lends the engine)."""

    def __init__(self) -> None:
        self._init_output(file_format="jsonl", compression=None, storage_conn_id=None, parquet_compression="snappy",
                          csv_formula_guard=True)


@pytest.fixture
def account(monkeypatch):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300))
    yield emu
    emu.stop()


def plan(root: Path, **changes) -> Plan:
    api = dialect_for("constant_contact_default")
    window = Window.of(*WEEK)
    values = dict(conn_id="constant_contact_default", settings=api.hook.settings, reports=["opens", "sends"],
                  ids=None, window=window, partitioning=Partitioning.of(window, DAY), partition=DAY, horizon=None,
                  sent_within=None, recheck_every=None, root=ObjectStoragePath(f"file://{root}/"), concurrency=2,
                  limit=500, max_requests=None, resume=True, output_options=Files().output_options)
    return Plan(**{**values, **changes})


def test_the_engine_writes_what_the_operator_writes(account, tmp_path):
    files, inputs = Files(), []
    manifest = AccountEngine(plan(tmp_path / "engine"), Wiring(logging.getLogger("t"), files, Stopper("t"),
                                                                inputs)).run()
    _, by_operator = pull(tmp_path / "operator", reports=["opens", "sends"], partition=DAY, concurrency=2)
    assert data_files(tmp_path / "engine") == data_files(tmp_path / "operator") != {}
    assert manifest["records"] == by_operator["records"] and manifest["files_count"] == len(files.files_written)
    assert manifest["requests"] == by_operator["requests"]
    assert inputs and all(i["name"].endswith(("/opens", "/sends")) for i in inputs)


def test_a_budget_too_small_for_the_selection_stops_before_any_file(account, tmp_path):
    with pytest.raises(ConstantContactBudgetError, match="while choosing the campaigns"):
        AccountEngine(plan(tmp_path, max_requests=1), Wiring(logging.getLogger("t"), Files(), Stopper("t"), [])).run()
    assert data_files(tmp_path) == {}
