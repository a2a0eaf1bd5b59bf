"""Task processes started warm: forks of a process that imported the provider and Airflow once.

A test that needs several real processes (tasks sharing a rate limiter or a token chain) would start each as
``python -c CODE ARGS``, and each new interpreter spends 4-7 CPU seconds importing Airflow before CODE's first line.
Here a multiprocessing fork server (one per test process, started on first use, stopped with it) imports them once,
and each task is a fork of it: a new process with its own memory (its own limiters, token managers, HTTP sessions,
connections read anew), as Airflow's own task runners are forks. The child runs CODE as ``__main__`` with
``sys.argv``, the environment and the working directory given, its stdin, stdout and stderr on pipes, and is
handed back as a :class:`Task`, the part of ``subprocess.Popen`` the tests use.

What the fork server set up at import (Airflow's logging, its configuration's cached values) is the test process's;
what is read when used (connections, Airflow variables and settings read from the environment) is the task's own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import traceback
from typing import IO, Any

PRELOAD = ["airflow_provider_cc.hooks.constant_contact", "airflow_provider_cc.hooks.constant_contact_v3",
           "airflow_provider_cc.auth.store", "tests.warm"]
_LOCK = threading.Lock()
_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    with _LOCK:
        if _CONTEXT is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _CONTEXT = context
        return _CONTEXT


def _run(code: str, argv: list[str], env: dict[str, str], cwd: str, pipes: tuple[socket.socket, ...],
         new_session: bool) -> None:
    """In the fork: the pipes become fds 0-2, then CODE runs as ``python -c`` would run it; the exit code is its."""
    if new_session:  # no controlling terminal, as subprocess's start_new_session gives
        os.setsid()
    for fd, pipe in enumerate(pipes):
        os.dup2(pipe.fileno(), fd)
        pipe.close()
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 (the process's own stdin)
    # Line-buffered: a test reads what a task prints as it prints it (the tests' processes run unbuffered).
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = ["-c", *argv]
    status = 0
    try:
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:  # as the interpreter ends: an int is the status, anything else is printed, status 1
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:  # as an interpreter would: the traceback on stderr, exit code 1
        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)  # no atexit or multiprocessing clean-up of the server's state


class Task:
    """A warm task process: ``stdin``, ``stdout`` and ``stderr`` are text files on its pipes."""

    def __init__(self, code: str, argv: list[str], env: dict[str, str], cwd: str, new_session: bool = False) -> None:
        ends = [socket.socketpair() for _ in range(3)]
        self.args = ["-c", "<code>", *argv]
        self._process = _context().Process(
            target=_run, args=(code, argv, env, cwd, tuple(b for _, b in ends), new_session), daemon=False)
        self._process.start()
        for _, theirs in ends:
            theirs.close()
        (i, _), (o, _), (e, _) = ends
        self._sockets = (i, o, e)
        self.stdin: IO[str] = i.makefile("w", encoding="utf-8", buffering=1)
        self.stdout: IO[str] = o.makefile("r", encoding="utf-8")
        self.stderr: IO[str] = e.makefile("r", encoding="utf-8")

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self._process.exitcode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Close stdin, read stdout and stderr to their ends, wait for the exit; the pipes are closed after."""
        with contextlib.suppress(OSError):
            self.stdin.close()
        self._sockets[0].close()
        read: dict[str, str] = {}
        readers = [threading.Thread(target=lambda n=n, f=f: read.__setitem__(n, f.read()), daemon=True)
                   for n, f in (("out", self.stdout), ("err", self.stderr))]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(timeout)
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        self.wait(timeout)
        self.close()
        return read["out"], read["err"]

    def kill(self) -> None:
        self._process.kill()

    def close(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            with contextlib.suppress(OSError):
                stream.close()
        for sock in self._sockets:
            sock.close()


def start(code: str, *argv: str, env: dict[str, str] | None = None, cwd: str | None = None,
          new_session: bool = False) -> Task:
    """``python -c code *argv``, forked warm (see the module's text)."""
    return Task(code, list(argv), dict(os.environ if env is None else env), cwd or os.getcwd(), new_session)


def start_module(module: str, *argv: str, **options: Any) -> Task:
    """``python -m module *argv``, forked warm."""
    code = f"import runpy\nrunpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    return start(code, *argv, **options)


def run_module(module: str, *argv: str, timeout: float, **options: Any) -> subprocess.CompletedProcess[str]:
    """``python -m module *argv`` to its end, forked warm, with nothing on its stdin; as ``subprocess.run`` with
    ``capture_output=True, text=True`` returns it."""
    return finish(start_module(module, *argv, **options), [sys.executable, "-m", module, *argv], timeout)


def finish(task: Task, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """A started task to its end (killed if it outlasts ``timeout``), its pipes closed; what ``subprocess.run``
    with ``capture_output=True, text=True`` returns, named ``args``."""
    try:
        out, err = task.communicate(timeout=timeout)
    finally:
        if task.poll() is None:
            task.kill()
            task.wait(30)
        task.close()
    return subprocess.CompletedProcess(args, task.returncode or 0, out, err)
