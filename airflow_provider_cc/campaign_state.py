"""What the provider knows about an account's campaigns between runs, kept under ``{root}_state/campaigns/``.

* :class:`SendTimes`: when SENT campaigns were sent, so a campaign known to be sent after a window, or before
  the horizon, costs no campaign request.
* :class:`Coverage`: up to when each (campaign, report)'s files are complete, and the report total that was
  true then, so an old campaign is re-checked with one campaign request and pulled only when it changed.
* :class:`Activities`: on v3, each campaign's reported activities (primary email, resend), so a campaign's
  activities cost one request once, and again only when it is sent again.

An unreadable file here is ignored with a warning: it only saves requests, it never decides alone.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactStateError
from airflow_provider_cc.hooks.campaigns import UUID_PATTERN
from airflow_provider_cc.units import read_json, write_json
from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from airflow_provider_cc._compat import ObjectStoragePath

log = logging.getLogger(__name__)

_MIN = datetime.min.replace(tzinfo=timezone.utc)

# The send-time cache trusts an entry at most this long after the campaign last answered for it.
REVERIFY_AFTER = timedelta(days=30)
# A confirming answer renews an entry's verification when it is older than this (not on every answer).
REFRESH_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class SentTime:
    """What the cache knows of one SENT campaign.

    :param first: the earliest send time seen (activity can exist from then on).
    :param last: the latest send time seen (``last_run_date`` moves when a campaign is sent again).
    :param modified: the campaign list's ``modified_date`` when it last answered, if listed.
    :param verified: when the campaign last answered (``None``: never, in a cache of an older version).
    """

    first: datetime
    last: datetime
    modified: str | None = None
    verified: datetime | None = None


class SendTimes:
    """When SENT campaigns were sent, kept under the root across runs, so a campaign known to be sent after a
    window (every later campaign, in a backfill) or before the horizon costs no campaign request.

    The cache never has the last word for long: an entry decides without a request only while the campaign
    answered for it within :data:`REVERIFY_AFTER` and the campaign list still shows the ``modified_date`` it
    had then (a campaign sent again, or edited, is asked again). It keeps the earliest send seen (for "sent
    after the window") and the latest (for "sent before the horizon"). Only checked answers reach it (see
    :mod:`~airflow_provider_cc.hooks.campaigns`). An unreadable cache is ignored with a warning; deleting
    ``{root}_state/campaigns/sent.json`` clears it.

    :param path: the cache object.
    :param now: the current time (tests may fix it).
    """

    def __init__(self, path: ObjectStoragePath, *, now: datetime | None = None) -> None:
        self.path = path
        self.now = now or datetime.now(timezone.utc)
        self.entries: dict[str, SentTime] = {}
        self._changed = False

    def load(self) -> SendTimes:
        """Read the cache; an unreadable one is ignored (with a warning): it is only a cache."""
        self.entries = self._merged(self._stored(), self.entries)
        return self

    def _stored(self) -> dict[str, SentTime]:
        try:
            document = read_json(self.path, "the send-time cache")
        except ConstantContactStateError as exc:
            log.warning("%s: ignored (it is only a cache; delete it to silence this)", exc)
            return {}
        found: dict[str, SentTime] = {}
        if not isinstance(document, dict):
            return found
        if isinstance(document.get("sent"), dict):  # version 1: one send time per campaign, never verified
            for cid, text in document["sent"].items():
                moment = record_instant(text)
                if moment is not None:
                    found[str(cid)] = SentTime(moment, moment)
        for cid, item in (document.get("campaigns") or {}).items() if isinstance(document.get("campaigns"),
                                                                                  dict) else ():
            entry = self._entry(item)
            if entry is not None:
                found[str(cid)] = entry
        return found

    @staticmethod
    def _entry(item: Any) -> SentTime | None:
        if not isinstance(item, dict):
            return None
        first, last = record_instant(item.get("first")), record_instant(item.get("last"))
        if first is None or last is None:
            return None
        modified = item.get("modified") if isinstance(item.get("modified"), str) else None
        return SentTime(first, last, modified, record_instant(item.get("verified")))

    @staticmethod
    def _merged(*sources: dict[str, SentTime]) -> dict[str, SentTime]:
        """Entries of several caches: the earliest first send, and the rest from the latest answer."""
        merged: dict[str, SentTime] = {}
        for source in sources:
            for cid, entry in source.items():
                old = merged.get(cid)
                if old is None:
                    merged[cid] = entry
                    continue
                newer = entry if (entry.verified or _MIN) >= (old.verified or _MIN) else old
                merged[cid] = SentTime(min(old.first, entry.first), newer.last, newer.modified, newer.verified)
        return merged

    def get(self, campaign_id: str) -> datetime | None:
        """The campaign's latest known send time, if any."""
        entry = self.entries.get(campaign_id)
        return None if entry is None else entry.last

    def trusted(self, campaign_id: str, modified: str | None = None) -> SentTime | None:
        """The entry, if it may decide without a request: answered within :data:`REVERIFY_AFTER`, and the list's
        ``modified`` (when given) unchanged since."""
        entry = self.entries.get(campaign_id)
        if entry is None or entry.verified is None or self.now - entry.verified > REVERIFY_AFTER:
            return None
        if modified is not None and entry.modified != modified:
            return None
        return entry

    def put(self, campaign_id: str, sent: datetime, modified: str | None = None) -> None:
        """Remember what a SENT campaign's checked answer said, now. An answer that only confirms a recent
        entry changes nothing (the cache is not rewritten for it)."""
        old = self.entries.get(campaign_id)
        entry = SentTime(sent if old is None else min(old.first, sent), sent,
                         modified if modified is not None else (old.modified if old is not None else None), self.now)
        if old is not None and (old.first, old.last, old.modified) == (entry.first, entry.last, entry.modified) and (
                old.verified is not None and self.now - old.verified < REFRESH_AFTER):
            return
        self.entries[campaign_id] = entry
        self._changed = True

    def save(self) -> None:
        """Write the cache when it learnt something, merged with what another run saved meanwhile."""
        if self._changed:
            self.entries = self._merged(self._stored(), self.entries)
            write_json(self.path, {"version": 2, "campaigns": {
                cid: {"first": format_api(e.first), "last": format_api(e.last), "modified": e.modified,
                      "verified": None if e.verified is None else format_api(e.verified)}
                for cid, e in sorted(self.entries.items())}})
            self._changed = False


class Activities:
    """A v3 campaign's reported activities (its primary email and resend) and its first send, by campaign,
    with the ``last_sent_date`` the bulk summaries showed when they were read: a campaign sent again (a
    resend) shows a new one and is asked again. An unreadable file is ignored with a warning; deleting
    ``{root}_state/campaigns/activities.json`` clears it.

    :param path: the cache object.
    """

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path
        self.entries: dict[str, Known] = {}
        self._changed = False

    def load(self) -> Activities:
        """Read the cache (an unreadable one is ignored with a warning)."""
        try:
            document = read_json(self.path, "the campaign-activity cache")
        except ConstantContactStateError as exc:
            log.warning("%s: ignored (it is only a cache; delete it to silence this)", exc)
            return self
        items = document.get("campaigns") if isinstance(document, dict) else None
        for cid, item in items.items() if isinstance(items, dict) else ():
            if not isinstance(item, dict):
                continue
            ids, sent, first = item.get("activities"), item.get("last_sent"), item.get("first_sent")
            # an entry without activities, or with an id that is not one, was never what a checked answer said
            if (isinstance(ids, list) and ids and all(isinstance(a, str) and UUID_PATTERN.fullmatch(a) for a in ids)
                    and isinstance(sent, str) and (first is None or record_instant(first) is not None)):
                self.entries[str(cid)] = Known(sent, tuple(dict.fromkeys(ids)), record_instant(first))
        return self

    def get(self, campaign_id: str, last_sent: str | None) -> Known | None:
        """What was read when the campaign showed this ``last_sent`` (``None``: unknown, never trusted)."""
        entry = self.entries.get(campaign_id)
        if entry is None or last_sent is None or entry.last_sent != last_sent:
            return None
        return entry

    def put(self, campaign_id: str, entry: Known) -> None:
        """Remember what a campaign's checked answer said now (never an empty list: every campaign has a
        primary email)."""
        if entry.last_sent is not None and entry.activities and self.entries.get(campaign_id) != entry:
            self.entries[campaign_id] = entry
            self._changed = True

    def forget(self, campaign_id: str) -> None:
        """Drop what a campaign answered: another answer contradicts it."""
        if self.entries.pop(campaign_id, None) is not None:
            self._changed = True

    def save(self) -> None:
        """Write the cache when it learnt something."""
        if self._changed:
            write_json(self.path, {"version": 1, "campaigns": {
                cid: {"last_sent": e.last_sent, "activities": list(e.activities),
                      "first_sent": None if e.first_sent is None else format_api(e.first_sent)}
                for cid, e in sorted(self.entries.items())}})
            self._changed = False


@dataclass(frozen=True)
class Known:
    """What a v3 campaign answered: its reported activities and, when it has a resend, its first send.

    :param last_sent: the summaries' ``last_sent_date`` then.
    :param activities: its primary email and resend activity ids.
    :param first_sent: the primary email's first completed send (``None``: not asked, or never sent).
    """

    last_sent: str | None
    activities: tuple[str, ...]
    first_sent: datetime | None = None


# Late-arriving activity: a record may show up this long after its own time. A (campaign, report) that changed
# is pulled again from the start of the partition this long before the end of what its files hold.
ARRIVAL_LAG = timedelta(hours=1)


@dataclass(frozen=True)
class Grid:
    """The partitions files are cut into: ``[anchor + k * size, anchor + (k + 1) * size)``.

    :param size: a partition's length (the run's ``partition``, or its window's length).
    :param anchor: one partition boundary.
    """

    size: timedelta
    anchor: datetime

    def floor(self, moment: datetime) -> datetime:
        """The start of the partition holding ``moment``."""
        return self.anchor + ((moment - self.anchor) // self.size) * self.size

    def key(self) -> dict[str, float]:
        """What identifies the grid (the anchor modulo the size)."""
        return {"size": self.size.total_seconds(),
                "offset": ((self.anchor - datetime(2000, 1, 1, tzinfo=timezone.utc)) % self.size).total_seconds()}


@dataclass(frozen=True)
class Covered:
    """What the files of one (campaign, report) hold.

    :param end: every record before this instant (and after the coverage began) is in a file...
    :param asof: ...as the report stood at this instant (the campaign's answer that came with the pull or check).
    :param total: the report's total at ``asof``, when no record at or after ``end`` existed then; ``None``
        when there were (or it is unknown): the next check pulls whatever the total says.
    """

    end: datetime
    asof: datetime
    total: int | None = None


class Coverage:
    """Up to when each (campaign, report)'s files are complete, for the late activity of old campaigns.

    With ``recheck_every`` the account operator pulls campaigns sent before the horizon not every run but when
    they are due (at least every ``recheck_every``), with one campaign request: a report whose total is the
    same integer as when its files were last made complete (and nothing newer existed then) has nothing new;
    one that changed is pulled from the partition :data:`ARRIVAL_LAG` before its files' end, through the run's
    end, into the same files a full pull of those partitions writes. Campaigns first met before any coverage
    began count from :attr:`since` (what a history load or the first run wrote before it is theirs). One
    document per set of output options and partition grid: ``{root}_state/campaigns/coverage.{digest}.json``.
    Totals of opens, clicks and forwards count unique contacts, so a repeat by a contact who already opened
    does not change them: such records wait for the next change of that total.

    :param path: the coverage object.
    :param grid: the run's partition grid.
    :param since: when coverage begins, if this document is new (the first run's window start).
    """

    VERSION = 1

    def __init__(self, path: ObjectStoragePath, grid: Grid, since: datetime) -> None:
        self.path = path
        self.grid = grid
        self.since = since
        self.units: dict[str, Covered] = {}
        self.checked: dict[str, datetime] = {}  # campaign → the end of the last run that looked at it
        self._changed = False

    def load(self) -> Coverage:
        """Read the document; an unreadable one is ignored with a warning (coverage then begins afresh)."""
        try:
            document = read_json(self.path, "the coverage state")
        except ConstantContactStateError as exc:
            log.warning("%s: ignored; old campaigns are pulled from this run's window start when next due (delete "
                        "it to silence this)", exc)
            return self
        if not isinstance(document, dict):
            return self
        since = record_instant(document.get("since"))
        self.since = since if since is not None else self.since
        units, checked = document.get("units"), document.get("checked")
        for key, item in units.items() if isinstance(units, dict) else ():
            if not isinstance(item, dict):
                continue
            end, asof, total = record_instant(item.get("end")), record_instant(item.get("asof")), item.get("total")
            if end is not None and asof is not None:
                self.units[str(key)] = Covered(end, asof, total if total.__class__ is int else None)
        for cid, moment in checked.items() if isinstance(checked, dict) else ():
            instant = record_instant(moment)
            if instant is not None:
                self.checked[str(cid)] = instant
        return self

    def covered(self, key: str) -> Covered:
        """What the files of a unit (``{campaign_id}/{report}``) hold (from :attr:`since`, if never pulled)."""
        return self.units.get(key) or Covered(self.since, self.since)

    def restart(self, key: str) -> datetime:
        """Where a pull of a changed unit starts: the partition :data:`ARRIVAL_LAG` before its files' end (where
        coverage began, for a unit never pulled)."""
        covered = self.units.get(key)
        if covered is None:
            return self.grid.floor(self.since)
        return self.grid.floor(min(covered.end, covered.asof - ARRIVAL_LAG))

    def unchanged(self, key: str, total: Any) -> bool:
        """Whether ``total`` (a checked campaign answer's) says nothing was added since the unit's files were
        made complete."""
        covered = self.units.get(key)
        return covered is not None and covered.total is not None and total.__class__ is int and total == covered.total

    def due(self, campaign_id: str, end: datetime, recheck_every: timedelta) -> bool:
        """Whether a campaign before the horizon is to be checked by the run ending at ``end``: the next run
        (one window later) would be more than ``recheck_every`` after its last check. Campaigns never looked at
        are spread over the first ``recheck_every`` (by a hash of their id), so a first run does not check
        them all."""
        last = self.checked.get(campaign_id)
        if last is None:  # its first check falls at its phase within the first period: 1/k of them a run
            phase = int(hashlib.sha256(campaign_id.encode()).hexdigest()[:8], 16) / 2**32
            return end - self.since > recheck_every * phase
        return end + self.grid.size - last > recheck_every

    def next_check(self, campaign_id: str, recheck_every: timedelta) -> datetime | None:
        """When a campaign is next due (``None``: never looked at)."""
        last = self.checked.get(campaign_id)
        return None if last is None else last + recheck_every

    def pulled(self, key: str, start: datetime, end: datetime, asof: datetime, total: Any, clean: bool) -> None:
        """A unit's records in ``[start, end)`` are in files, as they stood at ``asof`` (with ``total``;
        ``clean``: the pull saw no record at or after ``end``). Coverage advances only where it joins on."""
        before = self.covered(key)
        if start > before.end or end <= before.end:
            return  # a gap (kept, for a later pull to fill) or nothing beyond what is known
        self.units[key] = Covered(end, asof, total if clean and total.__class__ is int else None)
        self._changed = True

    def confirmed(self, key: str, end: datetime, asof: datetime) -> None:
        """A check found the unit unchanged: its files are complete through ``end`` (``asof`` ≥ ``end``)."""
        before = self.covered(key)
        if end > before.end and asof >= end:
            self.units[key] = Covered(end, asof, before.total)
            self._changed = True

    def looked_at(self, campaign_id: str, end: datetime) -> None:
        """The run ending at ``end`` checked (or pulled) the campaign."""
        if end > self.checked.get(campaign_id, self.since - self.grid.size):
            self.checked[campaign_id] = end
            self._changed = True

    def save(self) -> None:
        """Write the document when it changed. (Runs of one root with the same options do not run at once: the
        DAGs' pool of one slot per key, ``max_active_runs=1``.)"""
        if not self._changed:
            return
        write_json(self.path, {
            "version": self.VERSION, "since": format_api(self.since), "grid": self.grid.key(),
            "units": {k: {"end": format_api(c.end), "asof": format_api(c.asof), "total": c.total}
                      for k, c in sorted(self.units.items())},
            "checked": {c: format_api(t) for c, t in sorted(self.checked.items())}})
        self._changed = False
