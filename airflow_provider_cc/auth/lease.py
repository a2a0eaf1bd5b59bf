"""Who holds a token store's lock, whether that holder is dead, and the heartbeat that keeps a held lock alive.

A lock taken in Redis or in an Airflow Variable outlives a process killed while holding it. So that a dead
holder does not stall every refresh of its chain:

* the lock's value names its holder (:class:`Holder`): a random owner, the host (hostname, boot id and PID
  namespace, hashed), the process id and the process's start time. A waiter on the same host can tell at once
  that the holder's process is gone (no such process, a zombie, or another process under a reused PID), and
  takes the lock over;
* the lock lives a short time (:data:`LOCK_TTL`) and a :class:`Heartbeat` thread renews it while it is held,
  so a holder on another host that died is outlived by at most the TTL.

A live holder is never taken over: its heartbeat keeps its lock alive, and on a host whose processes cannot be
inspected (no ``/proc``: no boot id) only the TTL frees a lock.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

# How long a lock lives unless its holder renews it; renewed six times as often while held.
LOCK_TTL = 30.0
_NO_HOST = "-"


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


_hosts: dict[int, str] = {}


def _host() -> str:
    """This host's identity for PID checks: a hash of hostname, boot id and PID namespace; ``-`` when the boot
    id is unknown (no ``/proc``), which makes no holder look dead by its PID. Read once per process."""
    pid = os.getpid()
    if pid not in _hosts:
        boot = _read("/proc/sys/kernel/random/boot_id").strip()
        try:
            namespace = os.readlink("/proc/self/ns/pid")
        except OSError:
            namespace = ""
        _hosts[pid] = hashlib.sha256(f"{socket.gethostname()}\0{boot}\0{namespace}".encode()).hexdigest()[:16] \
            if boot else _NO_HOST
    return _hosts[pid]


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot) while it runs; ``None`` when it does not run
    (no such process, or a zombie whose death is not yet collected)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (command)": the command may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


@dataclass(frozen=True)
class Holder:
    """One acquisition of a lock: its random owner id and the process that made it.

    :param owner: random, unique per acquisition (what release and renewal compare).
    :param host: :func:`_host` of the holder's machine.
    :param pid: the holder's process id.
    :param start: the holder process's start time (``-`` if unknown).
    """

    owner: str
    host: str = _NO_HOST
    pid: int = 0
    start: str = "-"

    @classmethod
    def new(cls) -> Holder:
        """A holder for this process (``host`` and ``start`` read now: a forked child gets its own)."""
        pid = os.getpid()
        host = _host()
        return cls(uuid.uuid4().hex, host, pid, (process_start(pid) or "-") if host != _NO_HOST else "-")

    def encode(self) -> str:
        """One word without spaces (older versions of the provider read the lease's first word as its owner)."""
        return f"{self.owner}@{self.host}:{self.pid}:{self.start}"

    @classmethod
    def decode(cls, text: str) -> Holder:
        """The holder a lock's value names; an owner alone (an older version's lock) is a holder never seen dead."""
        owner, _, rest = text.partition("@")
        host, _, rest = rest.partition(":")
        pid, _, start = rest.partition(":")
        if not host or not pid.isdigit() or not start:
            return cls(text)
        return cls(owner, host, int(pid), start)

    def dead(self) -> bool:
        """Whether this holder's process is known to be gone: it ran on this host (same boot, same PID
        namespace) and no process with its PID and start time runs now. Never true for another host's holder."""
        if self.host == _NO_HOST or self.start == "-" or self.host != _host():
            return False
        return process_start(self.pid) != self.start


class Heartbeat:
    """Renews a held lock six times per ``ttl`` from a daemon thread until stopped.

    :param renew: renews the lock; returns ``False`` when the lock is no longer this holder's (then the
        heartbeat stops and :attr:`lost` is set). An exception is a failed renewal: tried again next beat, the
        lock lost once the TTL passed without a renewal.
    :param what: the store, for the log.
    :param ttl: how long the lock lives without a renewal.
    """

    def __init__(self, renew: Callable[[], bool], what: str, ttl: float = LOCK_TTL) -> None:
        self._renew = renew
        self._what = what
        self._every = ttl / 6
        self._ttl = ttl
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name="cc-token-lock-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failing = 0.0
        while not self._stop.wait(self._every):
            try:
                if self._renew():
                    failing = 0.0
                    continue
                self.lost = True
            except Exception as exc:  # the store is down: the lock lives until its TTL
                failing += self._every
                log.warning("%s: the token lock could not be renewed (%s)", self._what, type(exc).__name__)
                if failing + self._every < self._ttl:
                    continue
                self.lost = True
            log.warning("%s: the token lock was lost while held; no token call is made without it", self._what)
            return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._every + 5)
