"""Event trigger (Airflow 3, ``AssetWatcher``): fires when a campaign of the connection's account is sent."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import HAS_EVENT_TRIGGERS, AirflowException, BaseEventTrigger, TriggerEvent
from airflow_provider_cc.exceptions import ConstantContactError, ConstantContactInputError
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.triggers.campaign import hook_in_trigger
from airflow_provider_cc.triggers.sends import Account, Watermark, poll
from airflow_provider_cc.window import format_api, to_utc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# Bounds on the poll interval: one request a poll against the key's 10,000 a day (a minute: 1,440 a day).
MIN_POLL_INTERVAL = 60.0
MAX_POLL_INTERVAL = 86_400.0
# The asset state store's key (one watermark per connection on an asset).
STATE_KEY = "constant_contact_sent"
# Seconds between two events of one poll. Airflow 3 queues one DAG run per asset and dag, and an event that is
# written while the scheduler creates the run for the one before is consumed by no run until the asset's next
# event (apache/airflow#54659, #56050): events a minute apart each find the queue empty again.
EVENT_SPACING = 60.0


def check_poll_interval(value: Any) -> float:
    """``value`` as seconds between polls, or a clear error (before any request)."""
    if value.__class__ not in (int, float) or not math.isfinite(value) or not (
            MIN_POLL_INTERVAL <= value <= MAX_POLL_INTERVAL):
        raise ConstantContactInputError(
            f"poll_interval must be a number of seconds from {MIN_POLL_INTERVAL:.0f} to {MAX_POLL_INTERVAL:.0f} "
            f"(each poll is one request against the key's 10,000 a day), not {value!r}")
    return float(value)


class ConstantContactCampaignSentEventTrigger(BaseEventTrigger):
    """Fire an event each time a campaign of the connection's account is sent (v2 and v3): put it in an
    ``AssetWatcher`` and schedule a DAG on that asset, with no sensor task. Airflow 3 only.

    Every ``poll_interval`` it reads one page of the account's sent campaigns, newest send first (one request;
    one more per send announced: v2 reads its send time, v3 its name). The event's payload is
    ``{campaign_id, name, sent, api, constant_contact_conn_id}`` (the asset event's ``extra["payload"]``).

    What was announced (a watermark) is kept in the watched asset's state store (Airflow 3.3+), so a trigger
    re-created after a triggerer restart goes on where it was: nothing announced twice, no send passed over.
    Without a store (Airflow 3.0-3.2, or an asset watched twice) it lives in memory, and a re-created trigger
    starts again from ``sent_after``. The first look (no watermark, no ``sent_after``) announces nothing: the
    newest send listed becomes the floor. A resend (v3) is a send: it fires again, with its own ``sent``.

    A failed or malformed answer (retried by the transport) is logged and the poll tried again at the next
    interval: it neither fires nor passes over an event, and an error never fires one. Several sends found by
    one poll are announced :data:`EVENT_SPACING` seconds apart, oldest first (Airflow would leave an event that
    arrives while it creates the run for the one before to the asset's next event).

    :param constant_contact_conn_id: the ``constant_contact`` (v2) or ``constant_contact_v3`` connection.
    :param poll_interval: seconds between polls, 60 to 86,400 (default 300: 288 requests a day).
    :param sent_after: announce sends after this instant when no watermark is stored (ISO-8601 or datetime;
        ``None``: sends after the first look).
    """

    def __init__(self, constant_contact_conn_id: str = ConstantContactHook.default_conn_name,
                 poll_interval: float = 300.0, sent_after: Any = None) -> None:
        if not HAS_EVENT_TRIGGERS:
            raise ConstantContactInputError(
                "ConstantContactCampaignSentEventTrigger needs Airflow 3 (AssetWatcher, event-driven scheduling); "
                "on Airflow 2 wait for a send with ConstantContactCampaignSentSensor")
        super().__init__()
        if not isinstance(constant_contact_conn_id, str) or not constant_contact_conn_id.strip():
            raise ConstantContactInputError(f"constant_contact_conn_id must be a connection id, not "
                                            f"{constant_contact_conn_id!r}")
        self.constant_contact_conn_id = constant_contact_conn_id
        self.poll_interval = check_poll_interval(poll_interval)
        start = to_utc(sent_after, "sent_after")
        self.sent_after = None if start is None else format_api(start)
        self._mark: Watermark | None = None if start is None else Watermark(start)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The classpath and kwargs the triggerer rebuilds this trigger from (no secret: a connection id)."""
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"constant_contact_conn_id": self.constant_contact_conn_id, "poll_interval": self.poll_interval,
                 "sent_after": self.sent_after})

    @property
    def _key(self) -> str:
        return f"{STATE_KEY}.{self.constant_contact_conn_id}"

    def _store(self) -> Any:
        return getattr(self, "asset_state_store", None)

    async def _load(self) -> Watermark | None:
        """The stored watermark, else the one ``sent_after`` gives (else ``None``: a first look)."""
        store = self._store()
        if store is None:
            return self._mark
        try:
            document = await store.aget(self._key)
        except Exception as exc:  # a store of several assets (ValueError), or the API server failing
            self.log.warning("the watched asset's state store cannot be read (%s): the watermark lives in memory",
                             type(exc).__name__)
            self.asset_state_store = None
            return self._mark
        if document is None:
            return self._mark
        mark = Watermark.from_json(document)
        if mark is None:
            self.log.warning("the stored watermark %s is not one this trigger wrote: starting afresh", self._key)
            return self._mark
        return mark

    async def _save(self, mark: Watermark) -> None:
        self._mark = mark
        store = self._store()
        if store is None:
            return
        try:
            await store.aset(self._key, mark.as_json())
        except Exception as exc:
            self.log.warning("the watermark could not be stored (%s): a restart may announce these sends again",
                             type(exc).__name__)

    async def _hook(self) -> Any:
        """The connection's hook; a connection Airflow cannot find is an error like any other (logged, and read
        again at the next poll), not the end of the watch."""
        try:
            return await hook_in_trigger(self.constant_contact_conn_id)
        except ConstantContactError:
            raise
        except AirflowException as exc:  # AirflowNotFoundException: no such connection (yet)
            raise ConstantContactInputError(f"connection {self.constant_contact_conn_id!r}: {exc}") from None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; yield an event per send, oldest first. The watermark that covers those sends is stored
        one poll later (or when the trigger ends): the triggerer writes an event to its database a moment after
        it is yielded, so a triggerer that dies in between announces the send again rather than never (at least
        once; the payload's ``campaign_id`` and ``sent`` tell a repeat)."""
        mark = await self._load()
        self.log.info("watching the campaign sends of %s every %.0f s: announcing sends after %s",
                      self.constant_contact_conn_id, self.poll_interval,
                      "the newest one listed now" if mark is None else (
                          "any" if mark.floor is None else format_api(mark.floor)))
        account: Account | None = None
        pending: Watermark | None = None  # the watermark after events, not stored yet
        try:
            while True:
                if pending is not None:
                    await self._save(pending)
                    pending = None
                try:
                    if account is None:
                        account = Account(await self._hook())
                    sends, after = await asyncio.to_thread(poll, account, mark)
                except ConstantContactError as exc:
                    self.log.warning("the account's sent campaigns could not be read (%s); next poll in %.0f s",
                                     exc, self.poll_interval)
                    if account is not None:  # the next poll reads the connection again: it may have been fixed
                        account.hook.close()
                        account = None
                else:
                    if after != mark:
                        mark = after
                        if sends:
                            pending = after
                        else:
                            await self._save(after)
                    for number, send in enumerate(sends):
                        if number:
                            await asyncio.sleep(EVENT_SPACING)
                        self.log.info("campaign %s (%s) was sent at %s", send.campaign_id, send.name,
                                      format_api(send.sent))
                        yield TriggerEvent(send.payload(account.api, self.constant_contact_conn_id))
                await asyncio.sleep(self.poll_interval)
        finally:
            if pending is not None:
                await self._save(pending)
            if account is not None:
                account.hook.close()
