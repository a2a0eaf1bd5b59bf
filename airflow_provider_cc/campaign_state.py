"""What the provider knows about an account's campaigns between runs, kept under ``{root}_state/campaigns/``.

* :class:`SendTimes`: when SENT campaigns were sent, so a campaign known to be sent after a window, or before
  the horizon, costs no campaign request.

An unreadable file here is ignored with a warning: it only saves requests, it never decides alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactStateError
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
