"""Sensor that waits for a Constant Contact campaign to be SENT (tracking data exists only then)."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_cc._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from airflow_provider_cc.dialects import dialect_for
from airflow_provider_cc.exceptions import ConstantContactNotFoundError, ConstantContactUnavailableError
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.triggers.campaign import TRANSIENT_ERRORS, ConstantContactCampaignSentTrigger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_cc._compat import Context
    from airflow_provider_cc.dialects import Dialect


# Seconds past the sensor's timeout before Airflow's own deferral timeout fires.
DEFERRAL_GRACE = 600


class ConstantContactCampaignSentSensor(BaseSensorOperator):
    """Wait until a campaign's status is SENT; push ``{campaign_id, name, status, last_run_date}``.

    A DELETED or unknown campaign fails at once (skips with ``soft_fail=True``). Every check is one API
    request against the key's 10,000 requests a day: keep ``poke_interval`` long (default 300 s), use
    ``mode="reschedule"`` or ``deferrable=True`` so no worker slot is held, and consider
    ``exponential_backoff=True`` for campaigns scheduled far ahead.

    An outage (5xx, network errors, malformed answers of any kind, over-qps answers, an unreachable shared
    rate limiter) is waited through in every mode,
    checking again at the poke interval until the timeout. If the API is still failing at the timeout the
    task fails with :class:`~airflow_provider_cc.exceptions.ConstantContactUnavailableError` (its retries
    apply); it is never skipped, even with ``soft_fail=True``, since an outage says nothing about the campaign.

    :param campaign_id: numeric campaign id (templated).
    :param constant_contact_conn_id: the ``constant_contact`` connection.
    :param deferrable: wait on the triggerer; default ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("campaign_id", "constant_contact_conn_id")
    ui_color = "#1856ed"

    def __init__(self, *, campaign_id: int | str,
                 constant_contact_conn_id: str = ConstantContactHook.default_conn_name,
                 deferrable: bool | None = None, poke_interval: float = 300, **kwargs: Any) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.campaign_id = campaign_id
        self.constant_contact_conn_id = constant_contact_conn_id
        self.deferrable = (conf.getboolean("operators", "default_deferrable", fallback=False)
                           if deferrable is None else deferrable)
        self._outage: str | None = None  # the last check's transient failure, if it failed

    @cached_property
    def api(self) -> Dialect:
        """The connection's API version, v2 or v3 (reads the connection; no request)."""
        return dialect_for(self.constant_contact_conn_id)

    def _fail(self, message: str) -> NoReturn:
        if self.soft_fail:
            raise AirflowSkipException(message)
        raise AirflowFailException(message)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        try:
            state = self.api.sent(str(self.campaign_id))
        except ConstantContactNotFoundError as exc:
            self._fail(str(exc))
        except TRANSIENT_ERRORS as exc:
            self._outage = str(exc)
            self.log.warning("campaign %s: the check failed for now (%s); still waiting", self.campaign_id,
                             self._outage)
            return False
        self._outage = None
        if state.sent:
            return PokeReturnValue(is_done=True, xcom_value=state.result)
        if state.deleted:
            self._fail(f"campaign {self.campaign_id} was {state.status.upper()}: it will never be sent")
        self.log.info("campaign %s is %s, not SENT yet", self.campaign_id, state.status)
        return False

    def _unavailable(self, outage: str) -> NoReturn:
        raise ConstantContactUnavailableError(
            f"campaign {self.campaign_id}: the API could not be reached at the sensor's timeout, so whether "
            f"the campaign was sent is unknown ({outage}). Failing (not skipping) so the task's retries apply."
        )

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            except (AirflowSensorTimeout, AirflowSkipException):
                # Airflow's poke loop timed out (skipping under soft_fail) right after a failed check.
                if self._outage is not None:
                    self._unavailable(self._outage)
                raise
        done = self.poke(context)
        if done:
            return done.xcom_value  # type: ignore[union-attr]
        self.defer(
            trigger=ConstantContactCampaignSentTrigger(
                campaign_id=str(self.campaign_id), constant_contact_conn_id=self.constant_contact_conn_id,
                poll_interval=self.poke_interval, end_time=time.time() + self.timeout,
            ),
            method_name="execute_complete",
            # The trigger reports the timeout itself (telling a timeout from an outage); Airflow's deferral
            # timeout is only a backstop, late enough for a last check still retrying at end_time.
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish after the trigger fired: return the campaign's result, or fail with the trigger's message."""
        if not event:
            self._fail("the trigger sent no event")
        status = event.get("status")
        if status == "success":
            return event["campaign"]
        if status == "unavailable":
            self._unavailable(event.get("message", "no detail"))
        if status == "timeout":
            if self.soft_fail:
                raise AirflowSkipException(event.get("message", "timeout"))
            raise AirflowSensorTimeout(event.get("message", "timeout"))
        self._fail(event.get("message", f"trigger failed: {event}"))
