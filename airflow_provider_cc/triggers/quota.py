"""Trigger that waits, on the triggerer, for the application's daily request quota to reset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import DateTimeTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime


class ConstantContactQuotaResetTrigger(DateTimeTrigger):
    """Fire at ``moment`` (the quota's reset, 00:00 UTC) like Airflow's ``DateTimeTrigger``, with an event
    ``{"reset": ISO time, "waits": waits}``.

    The wait count travels in the event, not in the deferral's kwargs, because ``dag.test`` resumes a task with
    the event alone: the bound on waits holds there too.

    :param moment: when the quota resets (aware, UTC).
    :param waits: how many times the task has waited for a reset, this one included.
    """

    def __init__(self, moment: datetime, waits: int = 1) -> None:
        super().__init__(moment)
        self.waits = int(waits)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The classpath and kwargs the triggerer rebuilds this trigger from."""
        return f"{type(self).__module__}.{type(self).__qualname__}", {"moment": self.moment, "waits": self.waits}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Sleep as Airflow's ``DateTimeTrigger`` does, then send the event."""
        async for _ in super().run():  # one event, at the moment
            pass
        yield TriggerEvent({"reset": self.moment.isoformat(), "waits": self.waits})
