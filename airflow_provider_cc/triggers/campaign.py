"""Trigger that waits, on the triggerer, for a Constant Contact campaign to be SENT."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import BaseTrigger, TriggerEvent, aget_connection, amask_secret, in_sync_thread
from airflow_provider_cc.exceptions import (
    ConstantContactError,
    ConstantContactRateLimiterError,
    ConstantContactResponseError,
    ConstantContactServerError,
    ConstantContactThrottledError,
)
from airflow_provider_cc.hooks.connection import ConnectionSettings
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


# Worth waiting through: 5xx, network errors, malformed answers (bad JSON, a body of the wrong shape, JSON
# nested too deep, an encoding not asked for), over-qps, a shared rate limiter (Redis) that cannot be reached.
# Anything else (401, 404, an inactive key, the daily quota spent, bad input) will not pass by waiting.
TRANSIENT_ERRORS: tuple[type[ConstantContactError], ...] = (
    ConstantContactServerError, ConstantContactThrottledError, ConstantContactResponseError,
    ConstantContactRateLimiterError)


def sent_result(campaign: dict[str, Any]) -> dict[str, Any]:
    """The small result a SENT campaign hands downstream."""
    return {"campaign_id": str(campaign.get("id")), "name": campaign.get("name"), "status": campaign.get("status"),
            "last_run_date": campaign.get("last_run_date")}


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

    async def _hook(self) -> ConstantContactHook:
        connection = await aget_connection(self.constant_contact_conn_id)
        # Reading the extras masks them; on Airflow 3.0 that must not happen on the event loop's thread.
        settings = await in_sync_thread(ConnectionSettings.from_connection, connection)
        for secret in settings.secrets:  # the key, the token and a Redis URL's password
            await amask_secret(secret)
        return ConstantContactHook(self.constant_contact_conn_id, settings=settings)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook: ConstantContactHook | None = None
        outage: str | None = None  # the last transient failure, while the API is failing
        try:
            hook = await self._hook()
            while True:
                try:
                    campaign = await asyncio.to_thread(hook.get_campaign, self.campaign_id)
                except TRANSIENT_ERRORS as exc:
                    outage = str(exc)
                    status = None
                    self.log.warning("campaign %s: the check failed for now (%s); still waiting", self.campaign_id,
                                     outage)
                else:
                    outage = None
                    status = campaign.get("status")
                    if status == "SENT":
                        yield TriggerEvent({"status": "success", "campaign": sent_result(campaign)})
                        return
                    if status == "DELETED":
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
            if hook is not None:
                hook.close()
