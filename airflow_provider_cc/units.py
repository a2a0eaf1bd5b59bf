"""Account-scale work, in one place: the unit of work, partitions of a window, and the state kept under a root.

* A :class:`Unit` is one report of one campaign, fetched once from the window's start (the API returns every
  record newer than ``created_since``, newest first, and has no upper bound).
* :class:`Partitioning` cuts a window into aligned partitions ``[p, p + size)`` and places each record of a
  unit's stream in its partition, so one pass over a long window writes, per partition, the file a run for
  that partition alone would write.
* :class:`Checkpoint` records, per window, which units are committed (and the selection), so a stopped
  run's retry resumes. State lives under ``{root}_state/``, which lake readers skip (leading underscore);
  what is known about the campaigns themselves is in :mod:`~airflow_provider_cc.campaign_state`.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.destinations import plain_uri, stamp
from airflow_provider_cc.exceptions import (
    ConstantContactDataError,
    ConstantContactInputError,
    ConstantContactStateError,
)
from airflow_provider_cc.sinks import write_file
from airflow_provider_cc.stores import LOCAL, require_store
from airflow_provider_cc.window import Window, format_api, record_instant, to_utc

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.reports import Report

log = logging.getLogger(__name__)

STATE_DIR = "_state"
# Reads of a checkpoint that another run of the window changes meanwhile, and writes of a journal object whose
# folder it removes meanwhile, before giving up.
READS = 3
# A window cut finer than this is almost certainly a mistake (e.g. partition=timedelta(seconds=1) over a year).
MAX_PARTITIONS = 100_000


@dataclass(frozen=True, order=True)
class Unit:
    """One report of one campaign: the unit that is fetched, committed, counted and resumed.

    :param campaign_id: normalised campaign id.
    :param report: campaign report name.
    :param activity_id: on v3, the campaign activity (primary email or resend) the unit reads.
    """

    campaign_id: str
    report: str
    activity_id: str | None = None

    @property
    def key(self) -> str:
        """Stable text key, as stored in checkpoints: ``{campaign_id}/{report}`` (v3: ``{activity_id}/{report}``)."""
        return f"{self.activity_id or self.campaign_id}/{self.report}"

    @property
    def label(self) -> str:
        """Description for logs, e.g. ``campaign 1100394165000 opens``."""
        activity = f" activity {self.activity_id}" if self.activity_id else ""
        return f"campaign {self.campaign_id}{activity} {self.report}"


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
def read_json(path: ObjectStoragePath, what: str) -> Any:
    """A JSON document written by :func:`write_json`, or ``None`` when there is none yet.

    :param path: the state object.
    :param what: what it is, for the error (``the checkpoint``...).
    :raises ConstantContactStateError: the object exists but is not readable JSON (truncated, edited...).
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise ConstantContactStateError(f"{what} {plain_uri(path)} is not readable JSON ({type(exc).__name__}: "
                                        f"{str(exc)[:80]})") from None


def write_json(path: ObjectStoragePath, document: dict[str, Any]) -> None:
    """One JSON object on one line, through the provider's atomic writer (never half a document)."""
    write_file([[document]], path, file_format="jsonl")


def state_path(root: ObjectStoragePath, *parts: str) -> ObjectStoragePath:
    """An object under ``{root}_state/``."""
    path = root / STATE_DIR
    for part in parts:
        path = path / part
    return path


def digest(options: dict[str, Any]) -> str:
    """A short, stable name for a set of options (another set of options is another state file)."""
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:12]


def window_file(window: Window, options: dict[str, Any], suffix: str) -> str:
    """``{start}_{end}.{digest}.{suffix}``: a window's state file for one set of output options."""
    assert window.start is not None and window.end is not None
    return f"{stamp(window.start)}_{stamp(window.end)}.{digest(options)}.{suffix}"


def window_state(root: ObjectStoragePath, kind: str, window: Window, options: dict[str, Any]) -> ObjectStoragePath:
    """``{root}_state/account/{kind}/{start}_{end}.{digest}.json``: a window's checkpoint or manifest."""
    return state_path(root, "account", kind, window_file(window, options, "json"))


def _file_entries(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(f, dict) and isinstance(f.get("uri"), str) and type(f.get("records")) is int for f in value)


def _done_entries(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, dict) and _file_entries(v.get("files", [])) for k, v in value.items())


class _Folded(Exception):
    """A journal object listed a moment ago is gone: a head holding it was written since the head was read."""


class Checkpoint:
    """Which units of one window (and one set of output options) are committed, kept so that a stopped
    run's retry resumes, and the selection that try made, so that a retry does not pay for it again.

    Writes grow linearly with the units: the head object (``checkpoints/{name}.json``) is written when a try
    starts and when it ends; in between, each batch of commits goes to one small journal object of its own
    (``journal/{name}/…``), and the head folds them in at the end. A try that completes marks the head
    complete: the next run of the window (a cleared task pulling late data) starts over, a new generation,
    while the retry of a stopped run resumes.

    Two runs of one window at once (a manual run beside the scheduled one, a retry beside a late first try)
    both complete: a head write removes only the journal objects its try read or wrote (never the folder, which
    the other run may be writing into), and a journal object that goes away while it is read (the other run
    folded it into the head) makes the checkpoint be read again.

    :param path: the head object.
    :param window: the run's window.
    :param options: what shapes the files (reports, format, compression, partitions): another set of options
        is another checkpoint.
    """

    VERSION = 2
    ADVICE = ("It is not a checkpoint the provider wrote, or it was changed by hand. Delete it (and the journal "
              "folder beside it), or run with resume=False, to pull the window in full.")

    def __init__(self, path: ObjectStoragePath, window: Window, options: dict[str, Any]) -> None:
        self.path = path
        self.window = window
        self.options = options
        self.journal = path.parent.parent / "journal" / path.name.removesuffix(".json")
        self.done: dict[str, dict[str, Any]] = {}
        # The units of the checkpoint found at the start (also when not resumed): what a rerun may have to
        # remove when this run no longer writes it.
        self.previous: dict[str, dict[str, Any]] = {}
        self.selection: dict[str, Any] | None = None  # the carried selection of this generation
        self.requests_before = 0  # requests of the earlier tries of this generation
        self.generation = uuid.uuid4().hex[:12]
        self._try = uuid.uuid4().hex[:8]
        self._parts = 0
        self._tries: dict[str, int] = {}  # the requests of each earlier try found in the journal
        self._unsaved: dict[str, dict[str, Any]] = {}
        self._head_written = False
        # Journal objects this try read or wrote: the next head written holds (or supersedes) them.
        self._folded: list[str] = []

    def load(self, resume: bool = True) -> bool:
        """Read what earlier tries committed; ``True`` when this try resumes them (``resume`` and the last try
        did not complete). The units found are in :attr:`previous` either way.

        :raises ConstantContactStateError: the head or a journal object is unreadable or of the wrong shape, or
            the checkpoint changed every time it was read (another run of the window folding its journal).
        """
        try:
            for _ in range(READS):
                try:
                    return self._load(resume)
                except _Folded:  # another try of this window folded its journal into the head meanwhile
                    self._tries, self._folded = {}, []
        except ConstantContactStateError as exc:
            if not resume:  # nothing is resumed from it: a damaged checkpoint only costs the cleanup of a rerun
                log.warning("%s; ignored (resume=False): this run pulls the window in full", exc)
                return False
            raise ConstantContactStateError(f"{exc}. {self.ADVICE}") from None
        message = (f"the checkpoint {plain_uri(self.path)} changed each of the {READS} times it was read: another run "
                   "of this window is writing it at the same time")
        if not resume:
            log.warning("%s; ignored (resume=False): this run pulls the window in full", message)
            return False
        raise ConstantContactStateError(f"{message}. Let that run finish, then run this one again (it resumes), or "
                                        "run with resume=False to pull the window in full beside it.")

    def _load(self, resume: bool) -> bool:
        document = read_json(self.path, "the checkpoint")
        if document is None:
            return False
        if not isinstance(document, dict) or not _done_entries(document.get("done", {})) or not isinstance(
                document.get("complete", True), bool):
            raise ConstantContactStateError(f"the checkpoint {plain_uri(self.path)} has the wrong shape")
        return self._read(document, resume)

    def _read(self, document: dict[str, Any], resume: bool) -> bool:
        done = dict(document.get("done") or {})
        generation = str(document.get("generation") or "v1")
        requests: int = document["requests"] if type(document.get("requests")) is int else 0
        complete = document.get("complete", True)
        if not complete:
            for part in self._journal_parts(generation):
                done.update(part["done"])
            requests += sum(self._tries.values())
        self.previous = done
        if complete or not resume:
            return False
        self.generation, self.done, self.requests_before = generation, dict(done), requests
        selection = document.get("selection")
        self.selection = selection if isinstance(selection, dict) else None
        return True

    def _journal_parts(self, generation: str) -> list[dict[str, Any]]:
        """The journal objects of ``generation``, oldest first; counts each try's requests in ``_tries``."""
        try:
            names = sorted(p.name for p in self.journal.iterdir() if p.name.startswith(f"{generation}."))
        except (FileNotFoundError, NotADirectoryError):  # no journal yet
            return []
        parts = []
        for name in names:
            part = read_json(self.journal / name, "the checkpoint's journal object")
            if part is None:  # listed, then removed: a head holding it was written since this one was read
                raise _Folded
            if not (isinstance(part, dict) and _done_entries(part.get("done")) and type(part.get("requests")) is int):
                raise ConstantContactStateError(f"the checkpoint's journal object {plain_uri(self.journal / name)} "
                                                "has the wrong shape")
            self._tries[str(part.get("try"))] = max(self._tries.get(str(part.get("try")), 0), part["requests"])
            parts.append(part)
        self._folded.extend(names)
        return parts

    def commit(self, unit: Unit, entries: list[dict[str, Any]], **counts: int) -> None:
        """Note a committed unit, its counts and its files' entries (``files``; saved by the next :meth:`save`),
        so that a resumed run still reports the files an earlier try wrote."""
        self.done[unit.key] = self._unsaved[unit.key] = {**counts, "files": entries}

    def forget(self, keys: Iterable[str]) -> None:
        """Treat these units as not committed (their files are gone): this try pulls them again."""
        for key in keys:
            self.done.pop(key, None)

    def files_of(self, unit: Unit) -> list[dict[str, Any]]:
        """The file entries an earlier try committed for ``unit`` (none from a checkpoint that kept none)."""
        return list(self.done.get(unit.key, {}).get("files") or [])

    def save_selection(self, selection: dict[str, Any]) -> None:
        """Keep the selection this try made, for the retries of this generation."""
        self.selection = selection
        self._write_head(complete=False, requests=0)

    def save(self, *, complete: bool = False, requests: int = 0, final: bool = False) -> None:
        """Write what is new: the head on this try's first save, and when it ends (``final``, or ``complete``);
        otherwise one journal object with the units committed since the last save.

        :param complete: the window is done: the next run starts over.
        :param requests: requests this try sent so far.
        :param final: the try ends (stopped or failed): fold the journal into the head.
        """
        if complete or final or not self._head_written:
            self._write_head(complete=complete, requests=requests if (complete or final) else 0)
            return
        if self._unsaved:
            self._parts += 1
            name = f"{self.generation}.{self._try}.{self._parts:06d}.json"
            document = {"try": self._try, "requests": requests, "done": self._unsaved}
            for attempt in range(READS):
                try:
                    write_json(self.journal / name, document)
                    break
                # The other try of the window removed the empty folder: after it was made (not found), or while
                # it was being made (os.makedirs found it, then did not: "exists").
                except (FileNotFoundError, FileExistsError):
                    if attempt == READS - 1:
                        raise
            self._folded.append(name)
            self._unsaved = {}

    def _write_head(self, *, complete: bool, requests: int) -> None:
        write_json(self.path, {"version": self.VERSION, "window": self.window.as_dict(), "options": self.options,
                               "generation": self.generation, "complete": complete,
                               "requests": self.requests_before + requests, "selection": self.selection,
                               "done": self.done})
        self._head_written = True
        self._unsaved = {}
        # Folded into the head: this try's journal objects are not needed any more. Only those: another run of
        # the window may be writing its own into the folder right now.
        for name in self._folded:
            with suppress(FileNotFoundError):
                (self.journal / name).unlink()
        self._folded = []
        if require_store(self.journal).commit == LOCAL:  # an empty folder on disk (object stores have none)
            with suppress(OSError):  # not empty: another run's objects are there; or already gone
                os.rmdir(os.path.abspath(self.journal.path))


def missing_files(root: ObjectStoragePath, entries: Iterable[dict[str, Any]]) -> list[str]:
    """The plain URIs among ``entries`` whose file is not under ``root`` any more with the size recorded (one
    listing per folder, not a request per file)."""
    base = plain_uri(root).rstrip("/") + "/"
    folders: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        folder, _, _ = entry["uri"].rpartition("/")
        folders.setdefault(folder, []).append(entry)
    missing: list[str] = []
    for folder, group in folders.items():
        path = root / folder.removeprefix(base) if folder.startswith(base) else None
        try:
            listed = {} if path is None else {
                str(info["name"]).rstrip("/").rpartition("/")[2]: info.get("size")
                for info in path.fs.ls(path.path, detail=True)}
        except FileNotFoundError:
            listed = {}
        for entry in group:
            size = listed.get(entry["uri"].rpartition("/")[2])
            if size is None or ("bytes" in entry and size != entry["bytes"]):
                missing.append(entry["uri"])
    return missing
