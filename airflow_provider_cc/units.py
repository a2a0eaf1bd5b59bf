"""Account-scale work, in one place: the unit of work, partitions of a window, and the state kept under a root.

* A :class:`Unit` is one report of one campaign, fetched once from the window's start (the API returns every
  record newer than ``created_since``, newest first, and has no upper bound).
* :class:`Partitioning` cuts a window into aligned partitions ``[p, p + size)`` and places each record of a
  unit's stream in its partition, so one pass over a long window writes, per partition, the file a run for
  that partition alone would write.
* :class:`Checkpoint` records, per window, which units are committed, so a stopped run's retry resumes;
  :class:`SendTimes` remembers when SENT campaigns were sent (a fact that does not change), so later runs
  need not ask. Both live under ``{root}_state/``, which lake readers skip (leading underscore).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.destinations import stamp
from airflow_provider_cc.exceptions import ConstantContactDataError, ConstantContactInputError
from airflow_provider_cc.sinks import write_file
from airflow_provider_cc.window import Window, format_api, record_instant, to_utc

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.reports import Report

STATE_DIR = "_state"
# A window cut finer than this is almost certainly a mistake (e.g. partition=timedelta(seconds=1) over a year).
MAX_PARTITIONS = 100_000


@dataclass(frozen=True, order=True)
class Unit:
    """One report of one campaign: the unit that is fetched, committed, counted and resumed.

    :param campaign_id: normalised numeric campaign id.
    :param report: campaign report name.
    """

    campaign_id: str
    report: str

    @property
    def key(self) -> str:
        """Stable text key, as stored in checkpoints: ``{campaign_id}/{report}``."""
        return f"{self.campaign_id}/{self.report}"

    @property
    def label(self) -> str:
        """Description for logs, e.g. ``campaign 1100394165000 opens``."""
        return f"campaign {self.campaign_id} {self.report}"


def _duration(value: timedelta) -> str:
    """``1 day``, ``6:00:00``...: how a partition size reads in messages."""
    return str(value).replace("1 day, 0:00:00", "1 day").replace(", 0:00:00", "")


@dataclass(frozen=True)
class Partitioning:
    """A window cut into contiguous partitions of one size, aligned to an anchor.

    Build it with :meth:`of`, which refuses a window that does not start and end on partition boundaries.

    :param window: the whole window.
    :param size: partition length; ``None``: the window is one partition.
    :param starts: every partition's start, ascending.
    """

    window: Window
    size: timedelta | None
    starts: tuple[datetime, ...]

    @classmethod
    def of(cls, window: Window, size: Any = None, anchor: Any = None) -> Partitioning:
        """Check and cut ``window``; ``anchor`` (default: the window's start) is one partition boundary.

        :param window: a closed window (both bounds set).
        :param size: ``None`` or a positive ``timedelta`` of whole milliseconds.
        :param anchor: any partition boundary (datetime or ISO-8601 text), e.g. the daily DAG's first run.
        """
        if window.start is None or window.end is None:
            raise ConstantContactInputError("partitioning needs a window with both created_since and created_before")
        if size is None:
            if anchor not in (None, ""):
                raise ConstantContactInputError("partition_anchor needs partition=timedelta(...) as well")
            return cls(window, None, (window.start,))
        if not isinstance(size, timedelta) or size <= timedelta(0) or size % timedelta(milliseconds=1):
            raise ConstantContactInputError(
                f"partition={size!r} must be a positive datetime.timedelta of whole milliseconds, "
                "e.g. timedelta(days=1)")
        origin = to_utc(anchor, "partition_anchor") or window.start
        misaligned = [(name, bound) for name, bound in (("created_since", window.start), ("created_before", window.end))
                      if (bound - origin) % size]
        if misaligned:
            name, bound = misaligned[0]
            raise ConstantContactInputError(
                f"the window [{format_api(window.start)}, {format_api(window.end)}) is not aligned to "
                f"partition={_duration(size)} from partition_anchor={format_api(origin)}: {name} "
                f"({format_api(bound)}) falls inside a partition, whose file would then hold only part of it. "
                "Give a window that starts and ends on partition boundaries, or set partition_anchor to one "
                "of your schedule's interval boundaries (e.g. the daily DAG's 03:00 UTC)."
            )
        count = (window.end - window.start) // size
        if count > MAX_PARTITIONS:
            raise ConstantContactInputError(
                f"partition={_duration(size)} cuts the window into {count:,} partitions (more than "
                f"{MAX_PARTITIONS:,}); choose a larger partition")
        return cls(window, size, tuple(window.start + k * size for k in range(count)))

    def __len__(self) -> int:
        return len(self.starts)

    def window_of(self, index: int) -> Window:
        """Partition ``index`` (0 is the oldest) as a window."""
        end = self.window.end if index == len(self.starts) - 1 else self.starts[index + 1]
        return Window(self.starts[index], end, self.window.on_unreadable_date)

    def index_of(self, moment: datetime) -> int:
        """The partition holding ``moment``, which must lie in the window."""
        return bisect.bisect_right(self.starts, moment) - 1

    def split(self, batches: Iterable[list[dict]], report: Report
              ) -> Iterator[tuple[Window, Iterator[list[dict]]]]:
        """Lazily group a unit's pages, newest first, by partition: ``(partition, its record batches)``.

        Each group must be consumed before the next is asked for (``itertools.groupby``); memory stays at
        one page. Only partitions with records appear. Records must come newest first, as the API sends
        them: a record of a partition already left behind fails, rather than write that partition twice.

        :param batches: kept records of a unit, page by page (already inside the window).
        :param report: the unit's report, for its date field.
        """
        field = report.date_field
        last: int | None = None
        for index, group in groupby(self._chunks(batches, field), key=itemgetter(0)):
            if last is not None and index > last:
                raise ConstantContactDataError(
                    f"{report.name}: a record dated in partition {format_api(self.starts[index])} arrived after "
                    "older records; the API sends records newest first, so the partition's file would be "
                    "incomplete. Pull this window without partition= (one file), or report it upstream."
                )
            last = index
            yield self.window_of(index), (records for _, records in group)

    def _chunks(self, batches: Iterable[list[dict]], field: str) -> Iterator[tuple[int, list[dict]]]:
        """``(partition index, records)`` runs of consecutive records in one partition."""
        if len(self.starts) == 1:
            for batch in batches:
                yield 0, batch
            return
        for batch in batches:
            begin, current = 0, None
            for position, record in enumerate(batch):
                moment = record_instant(record.get(field))
                if moment is None:  # the window's filter keeps no such record; a guard, not a path
                    raise ConstantContactDataError(f"a {field} of {record.get(field)!r} cannot be placed in a "
                                                   "partition")
                index = self.index_of(moment)
                if index != current:
                    if current is not None:
                        yield current, batch[begin:position]
                    begin, current = position, index
            if current is not None:
                yield current, batch[begin:]


# ---- state under the root ----------------------------------------------------------------------------------
def read_json(path: ObjectStoragePath) -> Any:
    """A JSON document written by :func:`write_json`, or ``None`` when there is none yet."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def write_json(path: ObjectStoragePath, document: dict[str, Any]) -> None:
    """One JSON object on one line, through the provider's atomic writer (never half a document)."""
    write_file([[document]], path, file_format="jsonl")


def state_path(root: ObjectStoragePath, *parts: str) -> ObjectStoragePath:
    """An object under ``{root}_state/``."""
    path = root / STATE_DIR
    for part in parts:
        path = path / part
    return path


def window_file(window: Window, options: dict[str, Any], suffix: str) -> str:
    """``{start}_{end}.{digest}.{suffix}``: a window's state file for one set of output options."""
    assert window.start is not None and window.end is not None
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{stamp(window.start)}_{stamp(window.end)}.{digest}.{suffix}"


def window_state(root: ObjectStoragePath, kind: str, window: Window, options: dict[str, Any]) -> ObjectStoragePath:
    """``{root}_state/account/{kind}/{start}_{end}.{digest}.json``: a window's checkpoint or manifest."""
    return state_path(root, "account", kind, window_file(window, options, "json"))


class Checkpoint:
    """Which units of one window (and one set of output options) are committed.

    Written atomically after units commit. A run that completes marks it complete: the next run of the
    window (a cleared task pulling late data) starts over, while the retry of a stopped run resumes.

    :param path: the checkpoint object.
    :param window: the run's window.
    :param options: what shapes the files (reports, format, compression, partitions): another set of options
        is another checkpoint.
    """

    def __init__(self, path: ObjectStoragePath, window: Window, options: dict[str, Any]) -> None:
        self.path = path
        self.window = window
        self.options = options
        self.done: dict[str, dict[str, Any]] = {}

    def load(self) -> bool:
        """Read the units committed by an earlier, unfinished attempt; ``False`` when there is nothing to resume
        (no checkpoint, or the last attempt completed)."""
        document = read_json(self.path)
        if not isinstance(document, dict) or document.get("complete", True):
            return False
        self.done = dict(document.get("done") or {})
        return True

    def commit(self, unit: Unit, entries: list[dict[str, Any]], **counts: int) -> None:
        """Note a committed unit, its counts and its files' entries (``files``; saved by the next :meth:`save`),
        so that a resumed run still reports the files an earlier try wrote."""
        self.done[unit.key] = {**counts, "files": entries}

    def files_of(self, unit: Unit) -> list[dict[str, Any]]:
        """The file entries an earlier try committed for ``unit`` (none from a checkpoint that kept none)."""
        return list(self.done.get(unit.key, {}).get("files") or [])

    def save(self, *, complete: bool = False) -> None:
        """Write the checkpoint atomically."""
        write_json(self.path, {"window": self.window.as_dict(), "options": self.options, "complete": complete,
                                "done": self.done})


class SendTimes:
    """When SENT campaigns were sent (``last_run_date``), kept under the root across runs.

    A SENT campaign's send time does not change, so once known it spares the campaign request that would
    otherwise tell a backfill run that a campaign was sent after its window, or beyond the horizon.

    :param path: the cache object.
    """

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path
        self.times: dict[str, str] = {}
        self._changed = False

    def load(self) -> SendTimes:
        """Read the cache (an unreadable one is ignored: it is only a cache)."""
        self.times = {**self._stored(), **self.times}
        return self

    def _stored(self) -> dict[str, str]:
        document = read_json(self.path)
        if isinstance(document, dict) and isinstance(document.get("sent"), dict):
            return {str(k): str(v) for k, v in document["sent"].items()}
        return {}

    def get(self, campaign_id: str) -> datetime | None:
        """The campaign's send time, if known."""
        text = self.times.get(campaign_id)
        return None if text is None else record_instant(text)

    def put(self, campaign_id: str, sent: datetime) -> None:
        """Remember a SENT campaign's send time."""
        text = format_api(sent)
        if self.times.get(campaign_id) != text:
            self.times[campaign_id] = text
            self._changed = True

    def save(self) -> None:
        """Write the cache when it learnt something, merged with what another run saved meanwhile (a send
        time never changes, so merging loses nothing)."""
        if self._changed:
            self.load()
            write_json(self.path, {"sent": dict(sorted(self.times.items()))})
            self._changed = False
