"""Apache Airflow provider for the Constant Contact email-campaign tracking APIs (v2 and v3)."""

from __future__ import annotations

import sys
from importlib.util import find_spec

__version__ = "0.1.0"

if find_spec("airflow") is None:  # a checkout run with an interpreter other than its virtual environments'
    _MISSING = (f"Apache Airflow is not installed in this interpreter ({sys.executable}); use "
                ".venvs/airflow-3.3/bin/python (python3 scripts/run.py demo or test creates it), or install the "
                "provider into your Airflow's environment")
    if sys.argv[:1] == ["-m"]:  # `python -m airflow_provider_cc...` while runpy imports it: one line, no traceback
        sys.exit(_MISSING)
    raise ImportError(_MISSING)
