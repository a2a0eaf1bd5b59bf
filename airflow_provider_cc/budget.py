"""A task's requests across its threads: one hook per thread, all on the key's one rate limiter, every
request counted, and none started past the task's budget."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.dialects import dialect_of
from airflow_provider_cc.hooks.factory import hook_with

if TYPE_CHECKING:
    from airflow_provider_cc.dialects import Dialect
    from airflow_provider_cc.hooks.factory import AnyHook
    from airflow_provider_cc.stopping import Stopper


# How often a retry wait looks at the operator's stopper (the run's own stop wakes it at once).
STOP_POLL = 0.1


class Stopped(Exception):
    """The run is ending (another part of it failed): no request may start and no file be committed any more."""


class BudgetSpent(Exception):
    """``max_requests`` requests were sent: the next one may not start."""


class Budget:
    """Counts every request a task starts (retries included) and refuses the one past the budget.

    :param limit: requests allowed (``None``: no limit, only counting and stopping).
    :param stopper: the operator's stopper (set by ``on_kill``), checked before every request and commit.
    """

    def __init__(self, limit: int | None, stopper: Stopper | None = None) -> None:
        self.limit = limit
        self.stopper = stopper
        self.used = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def take(self) -> None:
        """One request is about to start."""
        self.check_stop()
        with self._lock:
            if self.limit is not None and self.used >= self.limit:
                raise BudgetSpent()
            self.used += 1

    def check_stop(self) -> None:
        """Raise when the task is told to stop (``AirflowTaskTerminated``) or the run is ending (:class:`Stopped`);
        also the writers' last check before a commit."""
        if self.stopper is not None:
            self.stopper.check()
        if self.stop.is_set():
            raise Stopped()

    def sleep(self, seconds: float) -> None:
        """Wait between retries, ending early when the task is told to stop or the run is ending, then raise
        (:meth:`check_stop`): a stop never waits for a back-off of up to a minute."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.wait(min(left, STOP_POLL)) or (self.stopper is not None and self.stopper.stopped):
                break
        self.check_stop()


class _Gate:
    """The key's one limiter, with the run's budget checked before every request start."""

    def __init__(self, limiter: Any, budget: Budget) -> None:
        self._limiter = limiter
        self._budget = budget

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self._budget.take()
        return self._limiter.acquire(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._limiter, name)


class ThreadHooks:
    """One hook (and ``requests.Session``) per thread; every one on the key's process-wide limiter, whose
    every request start passes through the budget first.

    :param conn_id: the ``constant_contact`` or ``constant_contact_v3`` connection.
    :param settings: its settings (v2 or v3), read (and secrets masked) once by the task's own hook.
    :param budget: the task's budget.
    """

    def __init__(self, conn_id: str, settings: Any, budget: Budget) -> None:
        self._conn_id = conn_id
        self._settings = settings
        self._budget = budget
        self._local = threading.local()
        self._all: list[AnyHook] = []
        self._lock = threading.Lock()

    def get(self) -> AnyHook:
        """This thread's hook."""
        hook = getattr(self._local, "hook", None)
        if hook is None:
            hook = hook_with(self._conn_id, self._settings)
            hook.transport.limiter = _Gate(hook.transport.limiter, self._budget)  # type: ignore[assignment]
            hook.transport.sleep = self._budget.sleep
            with self._lock:
                self._all.append(hook)
            self._local.hook = hook
        return hook

    def dialect(self) -> Dialect:
        """This thread's hook, in the API's terms."""
        return dialect_of(self.get())

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        """The campaign as the selection reads it, with current report totals (one request)."""
        return self.dialect().account_campaign(campaign_id)

    def requests_sent(self) -> int:
        """Requests sent by every thread, retries included (the transports' own counts)."""
        with self._lock:
            return sum(h.transport.requests_sent for h in self._all)

    def close(self) -> None:
        """Release every thread's keep-alive connections."""
        with self._lock:
            for hook in self._all:
                hook.close()
