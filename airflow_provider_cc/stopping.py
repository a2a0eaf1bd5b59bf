"""Stopping a task's work when Airflow tells it to: at the next page, and never by committing a file.

Airflow calls an operator's ``on_kill`` from its SIGTERM handler (a worker shutting down, a task cleared or
marked while running) and when ``execution_timeout`` passes. Airflow 2 then raises in the task's main
thread; Airflow 3's task runner only calls ``on_kill`` and lets ``execute`` carry on until the supervisor
kills the process a few seconds later. Work loops therefore check a :class:`Stopper` between pages and
before committing, so a stopped task sends no further request and leaves no file behind.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TypeVar

from airflow_provider_cc._compat import AirflowTaskTerminated

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

T = TypeVar("T")


class Stopper:
    """A stop flag set from ``on_kill`` (any thread, or a signal handler) and checked by the work.

    :param what: what is being stopped, for the error message (e.g. ``campaign 1100 sends``).
    """

    def __init__(self, what: str = "the task") -> None:
        self.what = what
        self._event = threading.Event()

    def stop(self) -> None:
        """Ask the work to stop at its next check. Safe from a signal handler: it only sets a flag."""
        self._event.set()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise ``AirflowTaskTerminated`` if a stop was asked for.

        It is a ``BaseException``, as Airflow's own, so the writers' clean-up (which removes temporary
        files and aborts uploads on any exception) runs, and no ``except Exception`` swallows it.
        """
        if self._event.is_set():
            raise AirflowTaskTerminated(f"{self.what}: stopped because the task was told to stop (SIGTERM, or "
                                        "its execution_timeout); nothing was committed")

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on a stop; return whether a stop was asked for."""
        return self._event.wait(seconds)

    def wrap(self, batches: Iterable[T]) -> Iterator[T]:
        """Yield ``batches``, checking before each next one is fetched and after it arrived."""
        iterator = iter(batches)
        while True:
            self.check()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            self.check()
            yield batch
