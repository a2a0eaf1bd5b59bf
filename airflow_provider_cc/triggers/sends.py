"""Which campaigns of an account were sent since the last look: one page of the account's sent campaigns, newest
send first, compared with what was already announced (the event trigger's :class:`Watermark`).

v2 lists ``SENT`` campaigns newest ``last_run_date`` first, 50 a page, without the send time: a campaign new to
the list costs one campaign request (its ``last_run_date``). v3's bulk summaries list every sent campaign newest
``last_sent_date`` first with the send time, without the name: a campaign announced costs one campaign request
(its name). A poll that finds nothing new costs one request on both.

A page is believed only whole: a malformed page (the hooks' shape checks, retried by the transport) raises, and
the watermark is left as it was, so it neither announces nor passes over anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.dialects import dialect_of
from airflow_provider_cc.exceptions import ConstantContactNotFoundError
from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from collections.abc import Iterator

# A send may show up in the list this long after another, later one did (v3's summaries are a report, filled in
# behind the sends): sends this close below the newest one seen are still compared with what was announced.
LATE = timedelta(days=1)
# More than a page of new sends between two polls: the next pages are read too, up to this many in all.
MAX_PAGES = 10
PAGE_SIZE = 50


@dataclass(frozen=True)
class Send:
    """One campaign send, as an event announces it.

    :param campaign_id: the campaign (v2 numeric id, v3 UUID).
    :param sent: when it was sent (v2 ``last_run_date``, v3 ``last_sent_date``).
    :param name: its name (``None``: the campaign is gone).
    """

    campaign_id: str
    sent: datetime
    name: str | None

    def payload(self, api: str, conn_id: str) -> dict[str, Any]:
        """The event's JSON payload: ids, name and time; no secret."""
        return {"campaign_id": self.campaign_id, "name": self.name, "sent": format_api(self.sent), "api": api,
                "constant_contact_conn_id": conn_id}


@dataclass
class Watermark:
    """What was announced: no send at or before ``floor`` is; ``known`` holds each campaign's send already
    announced or looked at (ISO text), so it is not announced (nor, on v2, asked) again.

    :param floor: sends at or before it are never announced (``None``: every send is).
    :param known: campaign id → its send time as last announced or checked (``""``: listed when the watch
        began, not asked).
    """

    floor: datetime | None
    known: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """JSON form, for the asset's state store."""
        return {"version": 1, "floor": None if self.floor is None else format_api(self.floor),
                "known": dict(sorted(self.known.items()))}

    @classmethod
    def from_json(cls, document: Any) -> Watermark | None:
        """The watermark :meth:`as_json` wrote; ``None`` when it is not one (then the watch begins afresh)."""
        if not isinstance(document, dict) or document.get("version") != 1:
            return None
        floor, known = document.get("floor"), document.get("known")
        moment = record_instant(floor) if floor is not None else None
        if (floor is not None and moment is None) or not isinstance(known, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and (v == "" or record_instant(v) is not None)
                for k, v in known.items()):
            return None
        return cls(moment, dict(known))


class Account:
    """The account's sent campaigns, newest send first, as the event trigger reads them.

    :param hook: a v2 ``ConstantContactHook`` or a ``ConstantContactV3Hook``.
    """

    def __init__(self, hook: Any) -> None:
        self.hook = hook
        self.dialect = dialect_of(hook)
        self.api = self.dialect.api

    def pages(self) -> Iterator[list[tuple[str, datetime | None, str | None]]]:
        """``(campaign id, send time or None, name or None)`` per listed campaign, a page at a time."""
        return self.dialect.sent_pages(PAGE_SIZE)

    def sent(self, campaign_id: str) -> tuple[datetime, str | None] | None:
        """The send time and name of a campaign listed without a send time (one request); a sent campaign without
        one is malformed; ``None`` for a campaign gone since it was listed (404, asked twice)."""
        campaign = self._campaign(campaign_id)
        return None if campaign is None else self.dialect.send_of(campaign_id, campaign)

    def name(self, campaign_id: str) -> str | None:
        """A v3 campaign's name (one request; ``None`` once it is gone)."""
        campaign = self._campaign(campaign_id)
        name = None if campaign is None else campaign.get("name")
        return name if isinstance(name, str) else None

    def _campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign object, or ``None`` when it is gone: a 404 is asked once more before it is believed (one
        answer is never trusted alone)."""
        try:
            return self.hook.get_campaign(campaign_id)
        except ConstantContactNotFoundError:
            pass
        try:
            return self.hook.get_campaign(campaign_id)
        except ConstantContactNotFoundError:
            return None


def poll(account: Account, mark: Watermark | None) -> tuple[list[Send], Watermark]:
    """The sends since ``mark``, oldest first, and the watermark after them; ``mark=None`` begins a watch: the
    newest send listed becomes the floor and nothing is announced. Raises whatever a request raised, having
    changed nothing.

    :param account: the account's list.
    :param mark: what was announced before (``None``: nothing yet, and no start given).
    """
    if mark is None:
        return [], _begin(account)
    floor, known = mark.floor, dict(mark.known)
    found: list[Send] = []
    listed: set[str] = set()
    unnamed: set[str] = set()  # listed with a send time but no name (v3): asked once announced
    for page in islice(account.pages(), MAX_PAGES):
        old = False  # an entry of this page was announced or looked at before, or sent at or before the floor
        for cid, moment, name in page:
            listed.add(cid)
            if moment is not None and name is None:
                unnamed.add(cid)
            if moment is None:  # v2: the list has no send time; a campaign new to it is asked (one request)
                if cid in known:
                    old = True
                    continue
                answer = account.sent(cid)
                if answer is None:  # deleted since it was listed: nothing to pull, nothing announced
                    known[cid] = ""
                    continue
                moment, name = answer
            text = format_api(moment)
            if (floor is not None and moment <= floor) or known.get(cid) == text:
                old = True
                known[cid] = text
                continue
            found.append(Send(cid, moment, name))
            known[cid] = text
        # The list is newest send first: a page holding an old entry ends what is new (else read on).
        if old or len(page) < PAGE_SIZE:
            break
    # A list without names (v3's summaries): one request per send announced.
    found = [Send(s.campaign_id, s.sent, account.name(s.campaign_id)) if s.campaign_id in unnamed else s
             for s in found]
    return sorted(found, key=lambda s: (s.sent, s.campaign_id)), _pruned(floor, known, listed)


def _begin(account: Account) -> Watermark:
    """The first look: everything listed is known, the newest send is the floor (v2: one campaign request)."""
    page = next(iter(account.pages()), [])
    if not page:
        return Watermark(None, {})
    times = [m for _, m, _ in page if m is not None]
    if times:  # the list carries send times (v3)
        return Watermark(max(times), {c: format_api(m) if m else "" for c, m, _ in page})
    answers = (account.sent(cid) for cid, _, _ in page)  # the newest that is still there (v2: one request)
    newest = next((answer[0] for answer in answers if answer is not None), None)
    return Watermark(newest, dict.fromkeys((cid for cid, _, _ in page), ""))


def _at_or_before(text: str, floor: datetime | None) -> bool:
    moment = record_instant(text) if text else None
    return text == "" or (floor is not None and moment is not None and moment <= floor)


def _pruned(floor: datetime | None, known: dict[str, str], listed: set[str]) -> Watermark:
    """The floor raised to :data:`LATE` below the newest send known; kept: what was listed now, and sends above
    the floor (what a late entry is compared with)."""
    times = [m for m in (record_instant(v) for v in known.values() if v) if m is not None]
    if times:
        lowest = max(times) - LATE
        floor = lowest if floor is None else max(floor, lowest)
    kept = {c: v for c, v in known.items() if c in listed or (v and not _at_or_before(v, floor))}
    return Watermark(floor, kept)
