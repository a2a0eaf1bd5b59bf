"""Trigger that waits, on the triggerer, for a Constant Contact campaign to be SENT."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import BaseTrigger, TriggerEvent, aget_connection, amask_secret, in_sync_thread
from airflow_provider_cc.dialects import dialect_of
from airflow_provider_cc.exceptions import (
    ConstantContactError,
    ConstantContactRateLimiterError,
    ConstantContactResponseError,
    ConstantContactServerError,
    ConstantContactThrottledError,
)
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.hooks.factory import AnyHook, hook_with, settings_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_cc.dialects import Dialect


# Worth waiting through: 5xx, network errors, malformed answers (bad JSON, a body of the wrong shape, JSON
# nested too deep, an encoding not asked for), over-qps, a shared rate limiter (Redis) that cannot be reached.
# Anything else (401, 404, an inactive key, the daily quota spent, bad input) will not pass by waiting.
TRANSIENT_ERRORS: tuple[type[ConstantContactError], ...] = (
    ConstantContactServerError, ConstantContactThrottledError, ConstantContactResponseError,
    ConstantContactRateLimiterError)


async def hook_in_trigger(conn_id: str) -> AnyHook:
    """The v2 or v3 hook of a connection, read and masked without blocking the triggerer's event loop.

    :param conn_id: the ``constant_contact`` or ``constant_contact_v3`` connection.
    """
    connection = await aget_connection(conn_id)
    # Reading the extras masks them; on Airflow 3.0 that must not happen on the event loop's thread.
    settings = await in_sync_thread(settings_of, connection, conn_id)
    for secret in settings.secrets:  # the key or client secret, the tokens and a Redis URL's password
        await amask_secret(secret)
    return hook_with(conn_id, settings)


class ConstantContactCampaignSentTrigger(BaseTrigger):
    """Poll a campaign's status until it is SENT, DELETED, gone, or ``end_time`` passes.

    Transient failures (5xx, network errors, malformed answers, over-qps answers, each already retried by
    the transport; an unreachable shared rate limiter) are logged and waited through at the poll interval,
    up to ``end_time``; only a permanent one (401, 404, an inactive key, the daily quota spent, bad input)
    ends the wait with an ``error`` event.
    At ``end_time`` the event is ``timeout`` when the last check worked, ``unavailable`` when it failed.

    The blocking HTTP call runs in a worker thread, and the connection is fetched and masked with the
    async APIs, so the triggerer's event loop never blocks.

    :param campaign_id: numeric campaign id.
    :param constant_contact_conn_id: the ``constant_contact`` connection.
    :param poll_interval: seconds between polls.
    :param end_time: epoch seconds after which a ``timeout`` event is sent (``None``: never).
    """

    def __init__(self, campaign_id: str, constant_contact_conn_id: str = ConstantContactHook.default_conn_name,
                 poll_interval: float = 300.0, end_time: float | None = None) -> None:
        super().__init__()
        self.campaign_id = str(campaign_id)
        self.constant_contact_conn_id = constant_contact_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_cc.triggers.campaign.ConstantContactCampaignSentTrigger",
            {"campaign_id": self.campaign_id, "constant_contact_conn_id": self.constant_contact_conn_id,
             "poll_interval": self.poll_interval, "end_time": self.end_time},
        )

    async def _api(self) -> Dialect:
        return dialect_of(await hook_in_trigger(self.constant_contact_conn_id))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        api: Dialect | None = None
        outage: str | None = None  # the last transient failure, while the API is failing
        try:
            api = await self._api()
            while True:
                try:
                    state = await asyncio.to_thread(api.sent, self.campaign_id)
                except TRANSIENT_ERRORS as exc:
                    outage = str(exc)
                    status = None
                    self.log.warning("campaign %s: the check failed for now (%s); still waiting", self.campaign_id,
                                     outage)
                else:
                    outage = None
                    status = state.status
                    if state.sent:
                        yield TriggerEvent({"status": "success", "campaign": state.result})
                        return
                    if state.deleted:
                        yield TriggerEvent({"status": "error",
                                            "message": f"campaign {self.campaign_id} was DELETED"})
                        return
                if self.end_time is not None and time.time() >= self.end_time:
                    if outage is not None:
                        yield TriggerEvent({"status": "unavailable", "message": outage})
                    else:
                        yield TriggerEvent({"status": "timeout", "message": (
                            f"campaign {self.campaign_id} is still {status}: not SENT before the timeout")})
                    return
                if outage is None:
                    self.log.info("campaign %s is %s; next check in %.0f s", self.campaign_id, status,
                                  self.poll_interval)
                wait = self.poll_interval
                if self.end_time is not None:  # the last check falls on the timeout, not a poll later
                    wait = max(min(wait, self.end_time - time.time()), 0.0)
                await asyncio.sleep(wait)
        except ConstantContactError as exc:
            yield TriggerEvent({"status": "error", "message": str(exc)})
        finally:
            if api is not None:
                api.hook.close()
