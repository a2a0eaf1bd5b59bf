"""The single-fault invariant and what it reads.

For one (endpoint, fault) pair, :func:`check_pair` arms the fault on a fresh :class:`~.scenarios.World`, runs the
scenario's windows until the fault fired (the faulty phase), disarms it and runs every window again (the clean
phase: a later window shows what the faulty run left behind), then says what broke:

* each faulty run either ends with an accepted error (a ``ConstantContactError`` subclass for the operators)
  whose message names the endpoint and the problem, or yields exactly what the emulator holds (files
  byte-equal to its records for the window, the account runs' dimension files to its campaign objects; a value
  equal to a clean run's); a failed run leaves no file that differs from the emulator's records; a spent quota
  may also defer the task until the quota resets;
* every clean run succeeds with exactly that (so nothing a faulty answer said outlived its run: not in a cache
  or state under the root's ``_state/``, not in a cross-reference table);
* no marker of the faulty answer is in any file under the root or in the token store;
* no secret is in a log line, an exception, a result (XCom), a state or output file, or printed text;
* every run ends within its deadline; the fault fired; a dripping, oversized or bombed answer was not read to
  its end; a token answer's odd expiry neither outlives the run nor makes it refresh per request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_cc._compat import TaskDeferred
from airflow_provider_cc.emulator.faults import BOMB_BYTES, DRIP_SECONDS, FAKE_PREFIX, MARKERS, OVERSIZED_BYTES
from tests.invariants.scenarios import MAX_PAGE_BYTES, TIMEOUT, TOKEN_ROUTE, TOKEN_TIMEOUT, V3, fresh_process

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.invariants.catalogue import Endpoint, Fault
    from tests.invariants.scenarios import Scenario, World

# Generous: a run here takes well under a second; this only catches a run that would never end.
RUN_DEADLINE = 30.0
# A one-shot fault costs a refresh or two at most; more is a refresh per request.
MAX_TOKEN_CALLS_PER_RUN = 3
# The stored expiry may not lie further ahead than a token of this server lives (plus slack).
MAX_EXPIRY_AHEAD = V3.access_token_lifetime + 3600
MiB = 1024 * 1024


@dataclass
class Run:
    """One run of a scenario's window: its value or error, or that it did not end."""

    phase: str
    window: tuple[str, str]
    value: Any = None
    error: BaseException | None = None
    hung: bool = False
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.phase} run of [{self.window[0]}, {self.window[1]})"


def _task_thread() -> None:
    """Airflow 2's guard on ``execute`` keeps a per-thread record that only the thread importing Airflow has:
    give this thread one, as the task runner's thread would have."""
    try:
        from airflow.models.baseoperator import ExecutorSafeguard
    except ImportError:
        return
    sentinel = getattr(ExecutorSafeguard, "_sentinel", None)
    if sentinel is not None and not hasattr(sentinel, "callers"):
        sentinel.callers = {}


def run_bounded(call: Callable[[], Any], phase: str, window: tuple[str, str], deadline: float = RUN_DEADLINE) -> Run:
    """Run ``call`` in a thread of its own, waiting at most ``deadline`` seconds."""
    run = Run(phase, window)

    def target() -> None:
        try:
            _task_thread()
            run.value = call()
        except BaseException as exc:
            run.error = exc

    started = time.monotonic()
    thread = threading.Thread(target=target, name=f"invariant-{phase}", daemon=True)
    thread.start()
    thread.join(deadline)
    run.hung, run.seconds = thread.is_alive(), time.monotonic() - started
    return run


class LogCapture(logging.Handler):
    """Every stdlib log line of a run: the provider's and urllib3's at DEBUG, the rest as they come."""

    LOUD = ("airflow_provider_cc", "urllib3")

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self._saved: list[tuple[logging.Logger, int, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.lines.append(f"{record.name}: {text}")

    def __enter__(self) -> LogCapture:
        logging.getLogger().addHandler(self)
        for name in self.LOUD:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)
        for logger, level, propagate in self._saved:
            logger.removeHandler(self)
            logger.setLevel(level)
            logger.propagate = propagate


def data_files(root: Path) -> dict[str, bytes]:
    """The data files under a root: every file but the provider's state (``_state/``) and hidden ones."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith("_state/") and not any(p.startswith(".") for p in rel.split("/")):
            found[rel] = path.read_bytes()
    return found


def every_file(*roots: Path) -> Iterator[tuple[str, bytes]]:
    for root in roots:
        if root.exists():
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    yield str(path), path.read_bytes()


def error_texts(error: BaseException) -> list[str]:
    """What an exception shows anyone: its text, its repr, its traceback and those of its chain."""
    texts, seen, current = [], set(), error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    texts.append("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    return texts


def normalised(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def message_of(error: BaseException) -> str:
    return " ".join(str(error).split())[:600]


@dataclass
class Expected:
    """What correct runs of a scenario yield: files per window (``files`` scenarios), or a value per window."""

    files: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    values: dict[tuple[str, str], Any] = field(default_factory=dict)

    def all_files(self) -> dict[str, bytes]:
        return {path: data for files in self.files.values() for path, data in files.items()}


def check_run(run: Run, scenario: Scenario, expected: Expected, root: Path, endpoint: Endpoint | None,
              fault: Fault | None) -> list[str]:
    """What is wrong with one run's ending and what it left; ``fault`` ``None``: a clean run (it must succeed)."""
    if run.hung:
        return [f"deadline: the {run.label} did not end within {RUN_DEADLINE:.0f} s ({scenario.name} still running)"]
    found: list[str] = []
    if run.error is not None:
        error, text = run.error, message_of(run.error)
        if fault is not None and fault.kind == "quota" and isinstance(error, TaskDeferred):
            pass  # waiting for the day's quota to reset, without a worker slot (issue 21, item 19)
        elif fault is None:
            found.append(f"rerun: the clean {run.label} failed with {type(error).__name__}: {text}")
        elif not isinstance(error, scenario.errors):
            found.append(f"error type: the {run.label} ended with {type(error).__name__}, not one of "
                         f"{', '.join(e.__name__ for e in scenario.errors)}: {text}")
        else:
            assert endpoint is not None
            if not re.search(endpoint.names, text, re.IGNORECASE):
                found.append(f"message: the {run.label}'s error does not name the endpoint (/{endpoint.names}/): "
                             f"{text}")
            if not re.search(fault.problem, text, re.IGNORECASE):
                found.append(f"message: the {run.label}'s error does not name the problem (/{fault.problem}/): "
                             f"{text}")
    if scenario.compares == "files":
        present, everything = data_files(root), expected.all_files()
        wrong = sorted(p for p, data in present.items() if everything.get(p) != data)
        if wrong:
            unexpected = [p for p in wrong if p not in everything]
            found.append(f"files: after the {run.label}, {len(wrong)} data files differ from the emulator's records "
                         f"({len(unexpected)} of them should not exist), e.g. {wrong[0]}"
                         + _diff(present.get(wrong[0], b""), everything.get(wrong[0], b"")))
        if run.error is None:
            missing = sorted(p for p in expected.files[run.window] if p not in present)
            if missing:
                found.append(f"files: the {run.label} succeeded without writing {len(missing)} of its "
                             f"{len(expected.files[run.window])} files, e.g. {missing[0]}")
    elif run.error is None and normalised(run.value) != normalised(expected.values[run.window]):
        found.append(f"value: the {run.label} returned {json.dumps(normalised(run.value))[:300]}, a clean run "
                     f"{json.dumps(normalised(expected.values[run.window]))[:300]}")
    return found


def _diff(got: bytes, want: bytes) -> str:
    got_lines, want_lines = got.splitlines(), want.splitlines()
    for number, (a, b) in enumerate(zip(got_lines, want_lines, strict=False), 1):
        if a != b:
            return f" (line {number}: {a[:160]!r} instead of {b[:160]!r})"
    return f" ({len(got_lines)} lines instead of {len(want_lines)})"


def check_markers(roots: list[Path]) -> list[str]:
    """No value only a faulty answer carried is in any file under the roots."""
    found = []
    for name, data in every_file(*roots):
        for marker in MARKERS:
            if marker.encode() in data:
                found.append(f"state: {name} holds {marker!r}, which only the faulty answer said")
    return found


def check_secrets(world: World, texts: dict[str, str], roots: list[Path]) -> list[str]:
    """No secret of the world in any text (logs, errors, results, printed lines) or file under the roots."""
    names = _secret_names(world)
    found = []
    haystacks = list(texts.items()) + [(f"file {name}", data.decode("utf-8", "replace"))
                                       for name, data in every_file(*roots)]
    for where, text in haystacks:
        for secret, what in names.items():
            if secret in text:
                found.append(f"secret: the {what} appears in {where}")
    return sorted(set(found))


def _secret_names(world: World) -> dict[str, str]:
    o = world.emu.v3.options
    names = {s: "access or refresh token" for s in world.secrets()}
    names |= {world.emu.api_key: "api_key", world.emu.token: "v2 access token", o.client_secret: "client secret"}
    names |= {s: "refresh token" for s in world.emu.v3.oauth.refresh_tokens()}
    names |= {s: "v3 access token" for s in world.emu.v3.oauth.seen_tokens}
    return {s: what for s, what in names.items() if len(s) >= 8}


_EXPECTED: dict[str, Expected] = {}


def expected_for(world: World, scenario: Scenario, values: dict[tuple[str, str], Any] | None) -> Expected:
    """What correct runs yield (the same for every world: the account is the same)."""
    if scenario.compares != "files":
        return Expected(values=dict(values or {}))
    if scenario.name not in _EXPECTED:
        _EXPECTED[scenario.name] = Expected(files={w: scenario.expected(world, w) for w in scenario.windows})
    return _EXPECTED[scenario.name]


class _Counting:
    """A zlib decompressor that adds every byte it decodes to a shared count."""

    def __init__(self, inner: Any, count: list[int]) -> None:
        self._inner, self._count = inner, count

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out = self._inner.decompress(data, max_length)
        self._count[0] += len(out)
        return out

    def flush(self, *args: Any) -> bytes:
        out = self._inner.flush(*args)
        self._count[0] += len(out)
        return out

    def copy(self) -> _Counting:
        return _Counting(self._inner.copy(), self._count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextlib.contextmanager
def decoded_bytes(counting: bool) -> Iterator[list[int]]:
    """Count what every zlib decompressor of the process decodes meanwhile (requests' and the transport's gzip
    decoding both make theirs with ``zlib.decompressobj``)."""
    count = [0]
    if not counting:
        yield count
        return
    original = zlib.decompressobj
    zlib.decompressobj = lambda *a, **k: _Counting(original(*a, **k), count)  # type: ignore[assignment]
    try:
        yield count
    finally:
        zlib.decompressobj = original  # type: ignore[assignment]


def run_phase(world: World, scenario: Scenario, phase: str, until: Callable[[], bool] | None = None) -> list[Run]:
    """Run the scenario's windows in order, each as a new task process would; stop after a run that did not end,
    or once ``until()`` says the rest is not needed (a faulty phase whose fault fired: the clean phase's later
    windows show what its runs left behind)."""
    runs = []
    for window in scenario.windows:
        fresh_process()
        runs.append(run_bounded(lambda w=window: scenario.run(world, w), phase, window))
        if runs[-1].hung or (until is not None and until()):
            break
    return runs


def check_pair(world: World, scenario: Scenario, endpoint: Endpoint, fault: Fault,
               values: dict[tuple[str, str], Any] | None, read_output: Callable[[], str]) -> list[str]:
    """Arm ``fault`` on ``endpoint``, run the faulty phase and the clean phase, and list every violation.

    :param values: what clean runs return, per window (``value`` scenarios).
    :param read_output: everything printed so far (stdout and stderr, at the file descriptors).
    """
    found: list[str] = []
    scenario.prepare(world)
    expected = expected_for(world, scenario, values)
    roots = [world.root, world.tokens]
    token_calls = world.emu.served[TOKEN_ROUTE]
    shot = world.emu.arm(endpoint.route, fault.kind)
    with LogCapture() as logs:
        with decoded_bytes(fault.kind == "gzip_bomb") as decoded:
            faulty = run_phase(world, scenario, "faulty", until=lambda: shot.fired)
        faulty_token_calls = world.emu.served[TOKEN_ROUTE] - token_calls
        state = world.token_state() if scenario.api == "v3" and scenario.name != "login" else None
        world.emu.disarm()
        clean = [] if any(r.hung for r in faulty) else run_phase(world, scenario, "clean")
        clean_token_calls = world.emu.served[TOKEN_ROUTE] - token_calls - faulty_token_calls
    if not shot.fired:
        found.append(f"fired: the fault never fired: no answer of {endpoint.route} in scenario {scenario.name} had "
                     f"what {fault.kind} changes")
    bound = TOKEN_TIMEOUT if endpoint.route == TOKEN_ROUTE and scenario.timeout is not None else scenario.timeout
    found += _wire(fault.kind, shot.outcome, decoded[0], bound)
    for run in faulty:
        found += check_run(run, scenario, expected, world.root, endpoint, fault)
    for run in clean:
        found += check_run(run, scenario, expected, world.root, None, None)
    if scenario.api == "v3":
        for phase, calls, runs in (("faulty", faulty_token_calls, faulty), ("clean", clean_token_calls, clean)):
            if calls > MAX_TOKEN_CALLS_PER_RUN * max(len(runs), 1):
                found.append(f"tokens: the {phase} phase made {calls} token calls in {len(runs)} runs (a refresh per "
                             "request?)")
    if state is not None and any(str(t).startswith(FAKE_PREFIX) for t in (state.refresh_token, state.access_token)):
        found.append("state: after the faulty phase the token store holds a token no server issued (the faulty "
                     "answer's)")
    if state is not None and state.expires_at > time.time() + MAX_EXPIRY_AHEAD:
        found.append(f"tokens: after the faulty phase the store believes the access token lives "
                     f"{(state.expires_at - time.time()) / 86400:,.0f} more days; this server's tokens live "
                     f"{V3.access_token_lifetime / 3600:.0f} h (an expiry from a faulty answer outlives the run)")
    found += check_markers(roots)
    texts = {"a log line": "\n".join(logs.lines), "the printed output": read_output()}
    for run in faulty + clean:
        if run.error is not None:
            texts[f"the {run.label}'s exception"] = "\n".join(error_texts(run.error))
        if run.value is not None:
            texts[f"the {run.label}'s result (XCom)"] = json.dumps(run.value, default=str)
    found += check_secrets(world, texts, [world.root])
    return found


def _wire(kind: str, outcome: dict[str, Any], decoded: int, timeout: float | None = TIMEOUT) -> list[str]:
    """A dripping (with a request timeout shorter than the drip), oversized or bombed answer must not have been
    read to its end."""
    if kind == "drip" and timeout is not None and outcome and not outcome.get("hung_up"):
        return [f"wire: the client read a dripping answer for its whole {outcome.get('seconds', DRIP_SECONDS):.1f} s "
                f"though its timeout is {timeout:g} s (no deadline on the whole request)"]
    if kind == "oversized" and outcome and not outcome.get("hung_up"):
        return [f"wire: the client read a {OVERSIZED_BYTES // MiB} MiB answer to its end though its cap is "
                f"{MAX_PAGE_BYTES // MiB} MiB"]
    if kind == "gzip_bomb" and decoded > BOMB_BYTES // 2:
        return [f"wire: the client decoded a gzip bomb to its end: {decoded / MiB:,.0f} MiB decoded, though its cap "
                f"is {MAX_PAGE_BYTES // MiB} MiB"]
    return []
