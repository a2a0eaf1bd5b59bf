"""What one account run is asked to do (:class:`Plan`), what it is wired to (:class:`Wiring`), and what its
steps and threads share while it runs (:class:`Run`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_cc.units import Partitioning, Unit
from airflow_provider_cc.window import Window

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime, timedelta

    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.budget import Budget, ThreadHooks
    from airflow_provider_cc.campaign_state import Activities, Coverage, SendTimes
    from airflow_provider_cc.reports import Column
    from airflow_provider_cc.stopping import Stopper
    from airflow_provider_cc.units import Checkpoint


class Output(Protocol):
    """Where files go: the operator's file output (``operators.output._FileOutput``)."""

    files_written: list[dict[str, Any]]

    def write_output(self, batches: Iterable[list[dict]], target: ObjectStoragePath, *, columns: tuple[str, ...],
                     identity: dict[str, str], window: Window, before_commit: Callable[[], None] | None = None,
                     types: tuple[Column, ...] = ()) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Plan:
    """One account run's arguments, checked (see :mod:`.arguments`).

    :param conn_id: the ``constant_contact`` or ``constant_contact_v3`` connection.
    :param settings: its settings, read and checked once, before any thread or request.
    :param reports: report names to pull.
    :param ids: explicit campaign ids, or ``None`` for every campaign that can have activity.
    :param window: the run's window.
    :param partitioning: its partitions.
    :param partition: the partition length asked for (``None``: one partition).
    :param horizon: campaigns sent before it are left out (``None``: no horizon).
    :param sent_within: the horizon as the user gave it, for messages.
    :param recheck_every: with a horizon, how often campaigns before it are checked.
    :param root: the root files go under.
    :param concurrency: units in flight at once.
    :param limit: page size.
    :param max_requests: the try's request budget (``None``: none).
    :param resume: skip units an earlier, unfinished try of the window committed.
    :param output_options: the options that shape a file's bytes.
    :param dimensions: write the dimension files (campaigns, v3 campaign activities, links) once complete.
    :param on_incomplete: what a completeness mismatch does: ``warn`` (log it) or ``fail`` the run.
    """

    conn_id: str
    settings: Any
    reports: list[str]
    ids: list[str] | None
    window: Window
    partitioning: Partitioning
    partition: timedelta | None
    horizon: datetime | None
    sent_within: timedelta | None
    recheck_every: timedelta | None
    root: ObjectStoragePath
    concurrency: int
    limit: int
    max_requests: int | None
    resume: bool
    output_options: dict[str, Any]
    dimensions: bool = False
    on_incomplete: str = "warn"

    @property
    def options(self) -> dict[str, Any]:
        """What names a window's checkpoint and manifest: the reports, output options and partition length, and
        explicit campaign ids (tasks mapped over campaigns share a root and may share a window)."""
        explicit = {} if self.ids is None else {"campaign_ids": sorted(self.ids)}
        return {"reports": sorted(self.reports), **self.output_options,
                "partition": None if self.partition is None else self.partition.total_seconds(), **explicit}


@dataclass
class Wiring:
    """What the run is wired to by the operator.

    :param log: the task's logger.
    :param output: writes one file and records it (``files_written``).
    :param stopper: set when the task is told to stop.
    :param inputs: the API resources read, for lineage (appended to).
    :param quality: the completeness check's results, for lineage (appended to).
    """

    log: Any  # a logging.Logger, or structlog's on Airflow 3
    output: Output
    stopper: Stopper
    inputs: list[dict[str, str]]
    quality: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Run:
    """Everything one execution shares between its steps and threads."""

    plan: Plan
    wiring: Wiring
    horizon: datetime | None
    budget: Budget
    hooks: ThreadHooks
    checkpoint: Checkpoint
    send_times: SendTimes
    coverage: Coverage
    activities: Activities
    lock: threading.Lock = field(default_factory=threading.Lock)
    files: list[dict[str, Any]] = field(default_factory=list)
    # The files each unit in flight committed so far: what a unit that turns out deleted leaves behind.
    partial: dict[Unit, list[dict[str, Any]]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)  # campaigns confirmed deleted during the run
    records: int = 0
    done: int = 0
    spent_before_pull: int = 0
    selected_now: bool = True  # this try chose the campaigns (False: carried from an earlier try)
    recheck: timedelta | None = None  # the re-check schedule in force (None: a window pulled before)
    starts: dict[Unit, datetime] = field(default_factory=dict)  # units pulled from before the window's start
    # v3: a (campaign, report)'s activity units still to commit in this run, by campaign-level key: coverage
    # is a campaign's (its totals are), so it is recorded once every one of them committed.
    siblings: dict[str, set[Unit]] = field(default_factory=dict)
    unclean: set[str] = field(default_factory=set)  # campaign-level keys with a record at or after the end
    # Dimension rows campaigns' answers gave (v2), by campaign and dimension: kept with the selection.
    described: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    dimensions: dict[str, int] = field(default_factory=dict)  # rows written per dimension
    # The completeness check: candidates {campaign: {report: activities}}, the API's counts (by summary key),
    # why (campaign, report)s were left out, and the per-(campaign, report) results.
    candidates: dict[str, dict[str, set[str | None]]] = field(default_factory=dict)
    counted: dict[str, dict[str, int]] = field(default_factory=dict)
    not_checked: dict[str, int] = field(default_factory=dict)
    quality: list[dict[str, Any]] = field(default_factory=list)

    @property
    def window(self) -> Window:
        """The run's window."""
        return self.plan.window

    @property
    def root(self) -> ObjectStoragePath:
        """The root files go under."""
        return self.plan.root

    @property
    def explicit(self) -> bool:
        """The campaigns came from the user (an unknown one is an error, not a skip)."""
        return self.plan.ids is not None

    @property
    def log(self) -> Any:
        """The task's logger."""
        return self.wiring.log

    def unit_window(self, unit: Unit) -> tuple[Window, Partitioning]:
        """The window a unit is pulled for, and its partitions: the run's, or from an earlier start (an old
        campaign's late activity) on the same partition grid."""
        start = self.starts.get(unit)
        if start is None or start == self.window.start:
            return self.window, self.plan.partitioning
        grid = self.coverage.grid
        window = Window.of(start, self.window.end, on_unreadable_date=self.window.on_unreadable_date)
        return window, Partitioning.of(window, grid.size, grid.anchor)
