"""Asset (Airflow 3) / Dataset (Airflow 2) events for the files an operator wrote.

Give a file-writing operator ``outlets=[Asset("...")]`` (``Dataset`` on Airflow 2): when the task succeeds,
Airflow records an event on each outlet and schedules the DAGs that wait for it. ``AssetEventsMixin`` puts
the manifest of what the task wrote into each event's ``extra`` (``manifest_extra``), so a downstream DAG
knows which files are new without listing storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import Asset
from airflow_provider_cc.window import record_instant

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow_provider_cc._compat import BaseOperator, Context

    _Operator = BaseOperator
else:
    _Operator = object

# Event extras live in the metadata database: list at most this many files, count them all.
MAX_EXTRA_FILES = 100
# A partition key as Airflow's temporal partition mappers read one by default (their ``input_format``), in UTC.
PARTITION_KEY_FORMAT = "%Y-%m-%dT%H:%M:%S"


def partition_keys(files: Iterable[Mapping[str, Any]]) -> list[str]:
    """The partitions the event files hold, each as its window's start (:data:`PARTITION_KEY_FORMAT`, UTC):
    what a downstream DAG scheduled on partitions of the asset learns changed. Dimension files (named by the
    run's window, not a partition) add none.

    :param files: entries of an operator's ``files_written``.
    """
    keys = set()
    for entry in files:
        start = record_instant((entry.get("window") or {}).get("created_since")) if entry.get("report") else None
        if start is not None:
            keys.add(start.strftime(PARTITION_KEY_FORMAT))
    return sorted(keys)


def manifest_extra(files: Iterable[Mapping[str, Any]], *, max_files: int = MAX_EXTRA_FILES) -> dict[str, Any]:
    """A small, JSON-able summary of written files for an asset event's ``extra``.

    ``{"files": [{"uri", "records", "bytes"}, ...], "file_count", "records", "reports",
    "window": {"created_since", "created_before"}}``. ``files`` lists the first ``max_files`` entries
    (``file_count`` and ``records`` always cover all); ``window`` spans every file's window.

    :param files: entries of an operator's ``files_written``.
    :param max_files: cap on the listed files.
    """
    entries = list(files)
    windows = [e["window"] for e in entries if e.get("window")]
    extra: dict[str, Any] = {
        "files": [{"uri": e["uri"], "records": e["records"], "bytes": e.get("bytes")} for e in entries[:max_files]],
        "file_count": len(entries),
        "records": sum(e["records"] for e in entries),
        "reports": sorted({e["report"] for e in entries if e.get("report")}),
    }
    if windows:
        extra["window"] = {"created_since": min(str(w["created_since"]) for w in windows),
                           "created_before": max(str(w["created_before"]) for w in windows)}
    return extra


def announce_files(outlets: Iterable[Any], outlet_events: Any, files: Iterable[Mapping[str, Any]], *,
                   partitions: bool = False) -> int:
    """Put the manifest of ``files`` into the event extra of every ``Asset``/``Dataset`` outlet and, with
    ``partitions`` (Airflow 3.3+: ``add_partitions``), the partitions the files hold (:func:`partition_keys`):
    Airflow then records one event per partition, which queues only partition-aware DAGs.

    Aliases and other lineage objects are left alone. Returns how many events were filled; none when no
    file was written (XCom mode), so such an event carries Airflow's empty extra.
    """
    entries = list(files)
    if not entries:
        return 0
    extra = manifest_extra(entries)
    keys = partition_keys(entries)
    filled = 0
    for outlet in outlets:
        if isinstance(outlet, Asset):
            accessor = outlet_events[outlet]
            accessor.extra.update(extra)
            if partitions and keys:
                accessor.add_partitions(keys)
            filled += 1
    return filled


class AssetEventsMixin(_Operator):
    """After ``execute``, fill the event extra of the task's asset outlets from ``self.files_written`` (and,
    when the operator's ``asset_partitions`` is true, the partitions written)."""

    def post_execute(self, context: Context, result: Any = None) -> None:
        """Airflow's hook right after ``execute`` (both 2.x and 3.x call it before recording events)."""
        super().post_execute(context, result)
        outlets = getattr(self, "outlets", None) or ()
        if outlets:
            announce_files(outlets, context["outlet_events"], getattr(self, "files_written", None) or (),
                           partitions=bool(getattr(self, "asset_partitions", False)))
