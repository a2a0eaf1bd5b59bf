"""A checkout's commands run with an interpreter that lacks Airflow say what to use instead."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.airflow_independent


@pytest.mark.parametrize("module", ["airflow_provider_cc.emulator", "airflow_provider_cc.auth",
                                    "airflow_provider_cc.schemas"])
def test_python_dash_m_without_airflow_says_which_python_to_use_in_one_line(module):
    # The base interpreter without its site-packages (-S): Python, the checkout, and no Airflow.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys._base_executable, "-S", "-m", module, "--help"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and proc.stdout == "", proc.stdout
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], "one line, no traceback"
    assert proc.stderr.startswith("Apache Airflow is not installed in this interpreter (")
    assert "use .venvs/airflow-3.3/bin/python" in proc.stderr


def test_importing_it_without_airflow_is_an_import_error_saying_so():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys._base_executable, "-S", "-c", "import airflow_provider_cc"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "ImportError: Apache Airflow is not installed in this interpreter" in proc.stderr
