"""``python -m airflow_provider_cc.schemas``: regenerate the shipped JSON Schemas from the catalogue."""

from __future__ import annotations

from airflow_provider_cc.schemas import write_all

if __name__ == "__main__":
    for path in write_all():
        print(path)
