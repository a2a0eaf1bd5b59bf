"""Server processes that never outlive the process that started them (standard library only).

:func:`spawn` starts a process in a session (and so a process group) of its own and registers the group with
this process's *watchdog*: a small Python process, started on first use, that holds the read end of a pipe
whose write end only this process holds. However this process ends (a normal exit, an exception, a test
killed by its timeout, SIGKILL, an xdist worker crash), the kernel closes the write end; the watchdog reads
end-of-file and stops every group still registered: SIGTERM, then SIGKILL after a grace period. :func:`stop`
stops a group at once (the normal way) and unregisters it; ``atexit`` stops what is left on a normal exit.

Used by every server the tests and benchmarks start (redis-server, moto's server process, fake-gcs-server,
Azurite, emulator subprocesses, Airflow's scheduler, API server, triggerer, dag-processor).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from typing import Any

GRACE = 5.0  # seconds between SIGTERM and SIGKILL

# The watchdog: reads "+pgid" / "-pgid" lines; at end-of-file (the owner is gone) stops what is registered.
WATCHDOG = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    line = line.strip()
    if line[:1] == "+":
        groups.add(int(line[1:]))
    elif line[:1] == "-":
        groups.discard(int(line[1:]))

def alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False

for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
deadline = time.monotonic() + float(sys.argv[1])
while any(alive(g) for g in groups) and time.monotonic() < deadline:
    time.sleep(0.1)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
"""

_lock = threading.Lock()
_watchdog: subprocess.Popen[bytes] | None = None
_pipe = -1  # the write end of the watchdog's stdin; only this process holds it (close-on-exec)
_owner = 0  # the pid the watchdog belongs to (a forked child starts its own)
_groups: dict[int, subprocess.Popen[Any]] = {}


def _tell(line: str) -> None:
    """Send a line to this process's watchdog, starting it first if needed (caller holds the lock)."""
    global _watchdog, _pipe, _owner
    if _watchdog is None or _owner != os.getpid():
        read, _pipe = os.pipe()
        try:
            _watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(GRACE)], stdin=read,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            os.close(read)
        _owner = os.getpid()
    with suppress(OSError):  # a watchdog that is gone cannot be helped; stop() and atexit still work
        os.write(_pipe, line.encode() + b"\n")


def _forget_in_child() -> None:
    """After a fork: the child does not own the parent's groups, nor keeps its watchdog's pipe open."""
    global _watchdog, _pipe, _owner
    if _pipe >= 0:
        with suppress(OSError):
            os.close(_pipe)
    _watchdog, _pipe, _owner = None, -1, 0
    _groups.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(cmd, **kwargs)`` in a new session, its group stopped when this process ends."""
    with _lock:
        proc: subprocess.Popen[Any] = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        _groups[proc.pid] = proc
        _tell(f"+{proc.pid}")
    return proc


def stop(*procs: subprocess.Popen[Any], grace: float = GRACE) -> None:
    """Stop each process's whole group: SIGTERM to all, SIGKILL to what is left after ``grace`` seconds (and to
    anything a group's leader left behind); wait for each, and close the pipes to it."""
    deadline = time.monotonic() + grace
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            if proc.poll() is None or sig == signal.SIGKILL:
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)
        for proc in procs:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01) if sig == signal.SIGTERM else 30)
    for proc in procs:
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with suppress(OSError):
                    pipe.close()
    with _lock:
        for proc in procs:
            if _groups.pop(proc.pid, None) is not None and _owner == os.getpid():
                _tell(f"-{proc.pid}")


def groups() -> list[int]:
    """The process groups this process started and has not stopped yet."""
    with _lock:
        return list(_groups)


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group (zombies left out), from ``/proc`` (Linux)."""
    members = []
    for stat in os.listdir("/proc"):
        if not stat.isdigit():
            continue
        try:
            with open(f"/proc/{stat}/stat") as status:
                fields = status.read().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat))
    return members


@atexit.register
def _stop_all() -> None:
    global _watchdog, _pipe
    stop(*_groups.values(), grace=2.0)
    if _watchdog is not None and _owner == os.getpid():
        with suppress(OSError):
            os.close(_pipe)
        with suppress(subprocess.TimeoutExpired):
            _watchdog.wait(timeout=10)  # end-of-file, nothing registered: it ends at once
        _watchdog, _pipe = None, -1


def wait_gone(pgids: list[int], timeout: float) -> list[int]:
    """Wait until no process of these groups is left (at most ``timeout`` s); return the groups still there."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pgid for pgid in pgids if group_members(pgid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
