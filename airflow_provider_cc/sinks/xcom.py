"""The XCom sink: all records as one list, capped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_cc.exceptions import ConstantContactInputError

if TYPE_CHECKING:
    from collections.abc import Iterable


def collect(batches: Iterable[list[dict]], cap: int, label: str) -> list[dict]:
    """All records as one list for XCom; stops fetching as soon as the cap is passed."""
    records: list[dict] = []
    for batch in batches:
        records.extend(batch)
        if len(records) > cap:
            raise ConstantContactInputError(
                f"{label}: more than max_xcom_records={cap} records in this window; XCom is for small "
                "results. Set destination='s3://bucket/prefix/' (or file://...) to write the records to "
                "storage and get a small manifest in XCom, or raise max_xcom_records."
            )
    return records
