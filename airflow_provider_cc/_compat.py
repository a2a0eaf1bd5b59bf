"""The one module that knows where Airflow 2 and Airflow 3 keep things. Import them from here.

Each name is looked up where the newest Airflow keeps it first, then in the places 3.0 and 2.x used,
so one missing name in an older 3.x release does not send everything down the 2.x paths.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any


def _first(name: str, *modules: str) -> Any:
    for module in modules:
        try:
            return getattr(import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"{name} not found in {', '.join(modules)}")


try:
    import airflow.sdk  # noqa: F401

    AIRFLOW_V_3 = True
except ImportError:
    AIRFLOW_V_3 = False

if TYPE_CHECKING:  # type checkers see the Airflow 3 classes
    from airflow.sdk import (
        DAG,
        Asset,
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
        AirflowTaskTerminated,
        TaskDeferred,
    )
    from airflow.sdk.log import mask_secret
else:
    DAG = _first("DAG", "airflow.sdk", "airflow")
    try:  # Airflow 2 calls an Asset a Dataset
        Asset = _first("Asset", "airflow.sdk")
    except ImportError:
        Asset = _first("Dataset", "airflow.datasets")
    BaseHook = _first("BaseHook", "airflow.sdk", "airflow.hooks.base")
    BaseOperator = _first("BaseOperator", "airflow.sdk", "airflow.models.baseoperator")
    BaseSensorOperator = _first("BaseSensorOperator", "airflow.sdk", "airflow.sensors.base")
    PokeReturnValue = _first("PokeReturnValue", "airflow.sdk", "airflow.sensors.base")
    Context = _first("Context", "airflow.sdk", "airflow.utils.context")
    ObjectStoragePath = _first("ObjectStoragePath", "airflow.sdk", "airflow.io.path")
    CronDataIntervalTimetable = _first("CronDataIntervalTimetable", "airflow.sdk", "airflow.timetables.interval")
    conf = _first("conf", "airflow.sdk", "airflow.configuration")
    _EXCEPTIONS = ("airflow.sdk.exceptions", "airflow.exceptions")
    AirflowException = _first("AirflowException", *_EXCEPTIONS)
    AirflowFailException = _first("AirflowFailException", *_EXCEPTIONS)
    AirflowSensorTimeout = _first("AirflowSensorTimeout", *_EXCEPTIONS)
    AirflowSkipException = _first("AirflowSkipException", *_EXCEPTIONS)
    AirflowTaskTerminated = _first("AirflowTaskTerminated", *_EXCEPTIONS)
    TaskDeferred = _first("TaskDeferred", *_EXCEPTIONS)
    _MASKERS = ("airflow.sdk.log", "airflow.sdk.execution_time.secrets_masker", "airflow.utils.log.secrets_masker")
    mask_secret = _first("mask_secret", *_MASKERS)

from airflow.triggers.base import BaseTrigger, TriggerEvent  # noqa: E402  (the same path on 2.x and 3.x)

if TYPE_CHECKING:
    from airflow.triggers.base import BaseEventTrigger
else:
    try:  # Airflow 3: the triggers an AssetWatcher runs
        BaseEventTrigger = _first("BaseEventTrigger", "airflow.triggers.base")
    except ImportError:  # Airflow 2 has no event-driven scheduling: such a trigger refuses to be made
        BaseEventTrigger = BaseTrigger
HAS_EVENT_TRIGGERS = BaseEventTrigger is not BaseTrigger

if TYPE_CHECKING:
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
else:  # Airflow 3 keeps it in the standard provider; 2.x in core
    DateTimeTrigger = _first("DateTimeTrigger", "airflow.providers.standard.triggers.temporal",
                             "airflow.triggers.temporal")


if TYPE_CHECKING:
    from airflow.sdk.lineage import get_hook_lineage_collector
else:  # 3.1+ keep it in the task SDK; 3.0 and 2.x in core
    get_hook_lineage_collector = _first("get_hook_lineage_collector", "airflow.sdk.lineage", "airflow.lineage.hook")


def add_hook_input(context: Any, uri: str) -> None:
    """Tell Airflow's hook lineage collector that ``context`` (a hook) read ``uri``: an input asset on Airflow 3,
    a dataset on 2.x (as ``ObjectStoragePath`` reports the files it reads and writes). The collector does nothing
    unless a lineage reader (the OpenLineage provider) is installed."""
    collector = get_hook_lineage_collector()
    add = getattr(collector, "add_input_asset", None) or getattr(collector, "add_input_dataset")  # noqa: B009  (2.x)
    add(context=context, uri=uri)


async def in_sync_thread(function: Any, *args: Any) -> Any:
    """Run blocking code that may call Airflow's sync-to-async bridges (Airflow 3.0's ``extra_dejson`` sends
    its secret masks with ``async_to_sync``, which refuses to run on the event loop's own thread)."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(function)(*args)


try:
    amask_secret = _first("amask_secret", "airflow.sdk.log")
except ImportError:

    async def amask_secret(secret: Any, name: str | None = None) -> None:
        """Before 3.1 the masker has no async form, and in a 3.0 triggerer it sends the mask through
        ``async_to_sync``: off the event loop's thread, then."""
        await in_sync_thread(mask_secret, secret, name)


async def aget_connection(conn_id: str) -> Any:
    """Fetch a connection without blocking the triggerer's event loop (3.1+ native, else a thread)."""
    getter = getattr(BaseHook, "aget_connection", None)
    if getter is not None:
        return await getter(conn_id)
    return await in_sync_thread(BaseHook.get_connection, conn_id)


def _in_execution_context() -> bool:
    """Whether this process talks to Airflow through a supervisor (an Airflow 3 task, trigger or DAG parse),
    as Airflow's own ``Variable`` decides; otherwise (Airflow 2, or a plain process) the metadata DB is used."""
    import sys

    return hasattr(sys.modules.get("airflow.sdk.execution_time.task_runner"), "SUPERVISOR_COMMS")


def get_connection(conn_id: str) -> Any:
    """A connection wherever this process may read it: through the task SDK in an Airflow 3 task or trigger,
    else through Airflow's secrets backends *and* the metadata DB (Airflow 2, and plain processes such as the
    login and refresh commands: on Airflow 3 the SDK's ``BaseHook.get_connection`` outside a task reads only
    environment variables and external backends, never the metadata DB)."""
    if AIRFLOW_V_3 and _in_execution_context():
        return BaseHook.get_connection(conn_id)
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


class VariableReadError(RuntimeError):
    """Airflow could not read a Variable (its message names no value and is safe to show)."""


def get_variable(key: str) -> str | None:
    """An Airflow Variable's text, or ``None`` when Airflow says it does not exist: through the task SDK in an
    Airflow 3 task or trigger, else from the metadata DB (Airflow 2's tasks and triggers, the login command,
    tests). Unlike ``Variable.get``, which reports a Variable it failed to read as missing (each secrets
    backend's error is logged and skipped), a failure raises. Only where :func:`set_variable` writes is read:
    no other secrets backend, no cached copy."""
    if AIRFLOW_V_3 and _in_execution_context():
        return _get_variable_through_supervisor(key)
    from airflow.models import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(Variable).filter(Variable.key == key).one_or_none()
        if row is None:
            return None
        value = row.val
        if value is None and row._val is not None:
            raise VariableReadError(f"the Variable {key} cannot be decrypted: it was written with another "
                                    "[core] fernet_key")
        return None if value is None else str(value)


def _get_variable_through_supervisor(key: str) -> str | None:
    """Airflow 3: ask the supervisor (the API server behind it) directly; an error answer raises."""
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import ErrorResponse, GetVariable, VariableResult

    send = getattr(task_runner.SUPERVISOR_COMMS, "send", None)
    if send is None:  # Airflow 3.0 has no synchronous send: its Variable.get, errors read as "missing"
        from airflow.sdk import Variable as SdkVariable

        value = SdkVariable.get(key, default=None)
        return None if value is None else str(value)
    answer = send(GetVariable(key=key))  # an error of the API server raises AirflowRuntimeError
    if isinstance(answer, VariableResult):
        return answer.value
    if isinstance(answer, ErrorResponse) and answer.error == ErrorType.VARIABLE_NOT_FOUND:
        return None
    error = getattr(answer, "error", None)
    raise VariableReadError(f"the API server answered {getattr(error, 'value', type(answer).__name__)} for the "
                            f"Variable {key}")


def set_variable(key: str, value: str, description: str | None = None) -> None:
    """Write an Airflow Variable where :func:`get_variable` reads it."""
    if AIRFLOW_V_3 and _in_execution_context():
        from airflow.sdk import Variable as SdkVariable

        SdkVariable.set(key, value, description=description)
        return
    from airflow.models import Variable

    Variable.set(key, value, description=description)


def core_timetable(timetable: Any) -> Any:
    """The scheduler's form of a DAG's timetable, which knows its previous and next times. Airflow 3.1+
    gives tasks a definition-only timetable from the SDK; 2.x and 3.0 give the scheduler's own."""
    try:
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:
        return timetable
    return coerce_to_core_timetable(timetable)


# Airflow 3.3+ attaches partition keys to asset events (``outlet_events[asset].add_partitions``); an event
# with one queues only partition-aware DAGs, so the operators add them only when asked.
try:
    from airflow.sdk.execution_time.context import OutletEventAccessor as _OutletEventAccessor

    PARTITIONED_ASSET_EVENTS = hasattr(_OutletEventAccessor, "add_partitions")
except ImportError:
    PARTITIONED_ASSET_EVENTS = False

__all__ = [
    "AIRFLOW_V_3",
    "DAG",
    "HAS_EVENT_TRIGGERS",
    "PARTITIONED_ASSET_EVENTS",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowTaskTerminated",
    "Asset",
    "BaseEventTrigger",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "CronDataIntervalTimetable",
    "DateTimeTrigger",
    "ObjectStoragePath",
    "PokeReturnValue",
    "TaskDeferred",
    "TriggerEvent",
    "VariableReadError",
    "add_hook_input",
    "aget_connection",
    "amask_secret",
    "conf",
    "core_timetable",
    "get_connection",
    "get_hook_lineage_collector",
    "get_variable",
    "in_sync_thread",
    "mask_secret",
    "set_variable",
]
