"""The one module that knows where Airflow 2 and Airflow 3 keep things. Import them from here."""

from __future__ import annotations

from typing import Any

try:  # Airflow 3.x: the task SDK
    from airflow.sdk import (
        DAG,
        BaseHook,
        BaseOperator,
        BaseSensorOperator,
        Context,
        CronDataIntervalTimetable,
        ObjectStoragePath,
        PokeReturnValue,
        conf,
    )
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
    from airflow.sdk.log import amask_secret, mask_secret

    AIRFLOW_V_3 = True
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.configuration import conf  # type: ignore[no-redef]
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    from airflow.io.path import ObjectStoragePath  # type: ignore[no-redef]
    from airflow.models.baseoperator import BaseOperator  # type: ignore[no-redef]
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue  # type: ignore[no-redef]
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[no-redef]
    from airflow.utils.context import Context  # type: ignore[no-redef]
    from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]

    async def amask_secret(secret: Any, name: str | None = None) -> None:  # type: ignore[misc]
        """Airflow 2's masker is in-process only: nothing to await."""
        mask_secret(secret, name)

    AIRFLOW_V_3 = False

from airflow.triggers.base import BaseTrigger, TriggerEvent


async def aget_connection(conn_id: str) -> Any:
    """Fetch a connection without blocking the triggerer's event loop (3.1+ native, else a thread)."""
    getter = getattr(BaseHook, "aget_connection", None)
    if getter is not None:
        return await getter(conn_id)
    from asgiref.sync import sync_to_async

    return await sync_to_async(BaseHook.get_connection)(conn_id)


__all__ = [
    "AIRFLOW_V_3",
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "CronDataIntervalTimetable",
    "ObjectStoragePath",
    "PokeReturnValue",
    "TaskDeferred",
    "TriggerEvent",
    "aget_connection",
    "amask_secret",
    "conf",
    "mask_secret",
]
