"""Token stores: where a v3 connection's current refresh token and cached access token live between processes.

Every store offers the same three things: read the state, write it durably, and hold an exclusive lock
across every process that can refresh the connection's tokens. What each guarantees:

* :class:`AirflowVariableStore` (``airflow``, the default): an Airflow Variable, written by tasks and triggers
  through Airflow's own API (the metadata DB on Airflow 2, the task SDK on 3.x), so it works wherever Airflow
  runs: one machine, Celery or Kubernetes workers, the triggerer. Its lock is a lease written to a second
  Variable and read back after a settling pause (no Variable API offers compare-and-set), plus a file lock
  for the processes of one machine: safe unless a process stalls longer than the pause between writing its
  lease and reading it back. Airflow reports a Variable it failed to read as missing (its API server answers
  404 while the metadata DB is down), so a lease or token state that reads as missing where it cannot be is a
  store error (task retries apply), never a free lock or a lost chain.
* :class:`FileTokenStore` (a directory): a JSON file replaced atomically, and a POSIX lock (``fcntl.lockf``)
  on a lock file beside it. Exact for every process of one machine, and across machines on a shared volume
  whose locks work across clients (NFSv4, most CSI drivers with ReadWriteMany).
* :class:`RedisTokenStore` (a ``redis://`` URL): the state in one key and a real lock (``SET NX PX`` with a
  random owner, released and checked by Lua), and every write refused unless the writer still holds the
  lock. Exact across processes and machines.

The Redis and Variable locks outlive a process killed while holding them: they name their holder, so a waiter
on the holder's host takes a dead holder's lock over at once, and live :data:`~.lease.LOCK_TTL` seconds unless
a heartbeat renews them, so another host's dead holder delays a refresh by at most that (see :mod:`.lease`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.auth.lease import LOCK_TTL, Heartbeat, Holder
from airflow_provider_cc.exceptions import ConstantContactTokenStoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

# The pause between writing a lease and reading it back (the Variable store's lock).
LEASE_SETTLE = 1.0
# How often a lease that could not be cleared is tried again.
CLEAR_EVERY = 1.0
_POLL = 0.05


@dataclass(frozen=True)
class TokenState:
    """A connection's tokens as the store keeps them (JSON).

    :param refresh_token: the refresh token to use next.
    :param access_token: the last access token, reused by every process until shortly before ``expires_at``.
    :param expires_at: epoch seconds when the access token expires.
    :param refreshed_at: epoch seconds of the last successful refresh (the 180-day rule counts from it).
    :param rotating: whether the last refresh returned a new refresh token (``None``: not refreshed yet).
    :param seed: a hash of the connection's refresh token this chain started from; a new one in the
        connection (after a new login) starts a new chain.
    :param generation: counts refreshes, so a process can tell the state changed under it.
    :param scope: the scopes granted, as the token endpoint said.
    """

    refresh_token: str
    access_token: str = ""
    expires_at: float = 0.0
    refreshed_at: float = 0.0
    rotating: bool | None = None
    seed: str = ""
    generation: int = 0
    scope: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> TokenState:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("refresh_token"), str):
                raise ValueError("no refresh_token")
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError):
            if text.startswith("gAAAAA"):  # a Fernet token: written by a process with another [core] fernet_key
                raise ConstantContactTokenStoreError(
                    f"the token store {where} was encrypted with another Fernet key: every Airflow component "
                    "(workers, triggerer, scheduler) must share the same [core] fernet_key") from None
            raise ConstantContactTokenStoreError(
                f"the token store {where} holds something that is not a token state; delete it and run "
                "python -m airflow_provider_cc.auth login again") from None

    def __repr__(self) -> str:
        return (f"TokenState(generation={self.generation}, expires_at={self.expires_at:.0f}, "
                f"refreshed_at={self.refreshed_at:.0f}, rotating={self.rotating})")


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a secret (what the store compares, never the secret)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:24]


def store_key(chain: str, client_id: str) -> str:
    """The name a refresh-token chain's tokens have in every store: the chain (see
    :attr:`V3Settings.chain <airflow_provider_cc.hooks.connection_v3.V3Settings.chain>`), the hashed client id."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in chain)[:100]
    return f"constant_contact_v3_tokens__{safe}__{fingerprint(client_id)[:12]}"


class TokenStore(ABC):
    """Where one connection's :class:`TokenState` lives, with a lock across every process that refreshes it."""

    #: What the store guarantees under concurrency (for messages and docs).
    guarantee: str = ""
    #: Seconds a lock outlives a holder that stopped renewing it (Redis and Variable stores).
    lock_ttl: float = LOCK_TTL

    def __init__(self, key: str) -> None:
        self.key = key

    @property
    @abstractmethod
    def where(self) -> str:
        """A safe description of the store (no secret)."""

    @abstractmethod
    def read(self) -> TokenState | None:
        """The stored state, or ``None`` when there is none yet."""

    @abstractmethod
    def write(self, state: TokenState) -> None:
        """Store ``state`` durably before returning; raise :class:`ConstantContactTokenStoreError` if not."""

    @abstractmethod
    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        """Hold the connection's refresh lock (every process, every machine the store reaches)."""

    def confirm_held(self) -> None:
        """Raise :class:`ConstantContactTokenStoreError` if this thread's lock was lost while held (a store
        unreachable for longer than the lock lives): no token call may be sent without it. A lock the kernel
        holds (the file store's) cannot be lost."""
        return

    def _lost(self) -> ConstantContactTokenStoreError:
        return ConstantContactTokenStoreError(
            f"{self.where}: the token lock was lost while this process held it (the store could not be reached to "
            f"renew it for {self.lock_ttl:g} s); no token call was sent without it. Task retries apply")


# ---- a file on a disk every process shares --------------------------------------------------------------
@contextlib.contextmanager
def _file_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """An exclusive POSIX lock on ``path``, waited for up to ``timeout`` seconds (polled: never unbounded)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConstantContactTokenStoreError(f"{what}: the lock file cannot be opened ({exc.strerror})") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise ConstantContactTokenStoreError(
                        f"{what}: another process held the token lock for more than {timeout:.0f} s") from None
                time.sleep(_POLL)
        try:
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class FileTokenStore(TokenStore):
    """The state in ``{directory}/{key}.json`` (mode 0600), replaced atomically; the lock a POSIX lock.

    :param directory: an absolute directory, created if missing.
    :param key: :func:`store_key` of the connection.
    """

    guarantee = ("one refresh at a time across every process that shares the directory's file locks (one "
                 "machine; a shared volume with working POSIX locks)")

    def __init__(self, directory: str, key: str) -> None:
        super().__init__(key)
        self.directory = Path(directory)
        self.path = self.directory / f"{key}.json"

    @property
    def where(self) -> str:
        return f"file {self.path}"

    def _ensure_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConstantContactTokenStoreError(
                f"the token store directory {self.directory} cannot be created ({exc.strerror})") from None

    def read(self) -> TokenState | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConstantContactTokenStoreError(f"{self.where} cannot be read ({exc.strerror})") from None
        return TokenState.from_json(text, self.where)

    def write(self, state: TokenState) -> None:
        self._ensure_directory()
        tmp = self.directory / f".{self.key}.{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(state.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ConstantContactTokenStoreError(f"{self.where} cannot be written ({exc.strerror})") from None

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        self._ensure_directory()
        return _file_lock(self.directory / f"{self.key}.lock", timeout, self.where)


# ---- Redis ------------------------------------------------------------------------------------------------
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
# Written while the writer holds the lock; or, when its lock expired (the store was out of reach for longer than
# the lock lives) and nobody took it since, over the very state the writer's refresh started from.
_FENCED_SET = """
local holder = redis.call('GET', KEYS[2])
if holder == ARGV[2] then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
if holder then return 0 end
local generation = 0
local current = redis.call('GET', KEYS[1])
if current then
  local ok, state = pcall(cjson.decode, current)
  if not ok or type(state) ~= 'table' then return 0 end
  generation = tonumber(state['generation']) or 0
end
if generation ~= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


class RedisTokenStore(TokenStore):
    """The state in one Redis key; a lock naming its holder, with a short TTL a heartbeat renews; writes fenced
    by the lock.

    :param url: the Redis URL (its password is never shown).
    :param key: :func:`store_key` of the connection.
    """

    guarantee = "one refresh at a time across every process and machine that reaches the Redis server"

    def __init__(self, url: str, key: str) -> None:
        super().__init__(key)
        from airflow_provider_cc.hooks.limiter import _redis_client

        self._client = _redis_client(url)
        self._hide = _password(url)
        self._lock_key = f"cc-tokens:{{{key}}}:lock"
        self._state_key = f"cc-tokens:{{{key}}}:state"
        self._owner = threading.local()
        self._release = self._client.register_script(_RELEASE)
        self._renew = self._client.register_script(_RENEW)
        self._fenced_set = self._client.register_script(_FENCED_SET)

    @property
    def where(self) -> str:
        return f"Redis key {self._state_key}"

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:  # redis.RedisError and socket errors
            text = f"{type(exc).__name__}: {exc}"
            for secret in self._hide:
                text = text.replace(secret, "***")
            raise ConstantContactTokenStoreError(f"the token store (Redis) failed to {what} ({text})") from None

    def read(self) -> TokenState | None:
        raw = self._call("read the tokens", self._client.get, self._state_key)
        return None if raw is None else TokenState.from_json(raw.decode(), self.where)

    def write(self, state: TokenState) -> None:
        owner = getattr(self._owner, "value", None)
        if owner is None:
            self._call("write the tokens", self._client.set, self._state_key, state.to_json())
            return
        written = self._call("write the tokens", self._fenced_set, keys=[self._state_key, self._lock_key],
                             args=[state.to_json(), owner, state.generation - 1])
        if not written:
            raise ConstantContactTokenStoreError(
                f"{self.where}: the token lock was lost before the new tokens were written (Redis was out of reach "
                f"for more than {self.lock_ttl:g} s, and another process took the lock or changed the tokens); "
                "nothing was written")

    def _take_over_if_dead(self) -> None:
        """The lock's holder died on this host: delete its lock (only that holder's) so a waiter may take it."""
        current = self._call("read the token lock", self._client.get, self._lock_key)
        if current is None:
            return
        holder = Holder.decode(current.decode(errors="replace"))
        if holder.dead() and self._call("take the token lock over", self._release, keys=[self._lock_key],
                                        args=[current]):
            log.warning("%s: the process that held the token lock (PID %d on this host) is gone; lock taken over",
                        self.where, holder.pid)

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        owner = Holder.new().encode()
        deadline = time.monotonic() + timeout
        while not self._call("take the token lock", self._client.set, self._lock_key, owner, nx=True,
                             px=int(self.lock_ttl * 1000)):
            self._take_over_if_dead()
            if time.monotonic() > deadline:
                raise ConstantContactTokenStoreError(
                    f"{self.where}: another process held the token lock for more than {timeout:.0f} s")
            time.sleep(_POLL)
        self._owner.value = owner
        heartbeat = Heartbeat(lambda: bool(self._call("renew the token lock", self._renew, keys=[self._lock_key],
                                                      args=[owner, int(self.lock_ttl * 1000)])), self.where,
                              ttl=self.lock_ttl)
        self._owner.heartbeat = heartbeat
        try:
            yield
        finally:
            heartbeat.stop()
            self._owner.value = self._owner.heartbeat = None
            with contextlib.suppress(ConstantContactTokenStoreError):
                self._call("release the token lock", self._release, keys=[self._lock_key], args=[owner])

    def confirm_held(self) -> None:
        heartbeat = getattr(self._owner, "heartbeat", None)
        if heartbeat is not None and heartbeat.lost:
            raise self._lost()

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        return self._locked(timeout)


def _password(url: str) -> list[str]:
    """The URL and its password (as written and decoded): never shown in an error."""
    from airflow_provider_cc.hooks.connection import url_secrets

    return url_secrets(url)


# ---- an Airflow Variable ------------------------------------------------------------------------------------
# Leases this process wrote and could not clear (the store failed): free for this process's next refresh. A
# lease is written (and read back) or cleared under its key's lock, so a late clear never erases a newer lease.
_ABANDONED: set[str] = set()
_LEASE_WRITES: dict[str, threading.RLock] = {}
_LEASE_WRITES_LOCK = threading.Lock()


def _lease_writes(key: str) -> threading.RLock:
    with _LEASE_WRITES_LOCK:
        return _LEASE_WRITES.setdefault(key, threading.RLock())


class AirflowVariableStore(TokenStore):
    """The state in the Airflow Variable ``key`` (its name holds "token", so Airflow masks it in the UI; the
    metadata DB encrypts it with the Fernet key); the lock a lease in the Variable ``{key}__lease`` naming its
    holder, renewed by a heartbeat while held.

    A Variable Airflow cannot read is reported as missing by Airflow itself (its API server answers 404 while the
    metadata DB is down). So a lease that reads back as missing just after it was written, or a token state that
    reads as missing while the lease this process holds does too, is a :class:`ConstantContactTokenStoreError`
    (task retries apply), never a free lease or an empty store.

    :param key: :func:`store_key` of the connection.
    :param settle: seconds between writing a lease and reading it back.
    """

    guarantee = ("one refresh at a time across every process of every machine that runs Airflow tasks or "
                 "triggers, unless one stalls more than the settling pause between writing its lease and "
                 "reading it back; exact within one machine (a file lock too)")

    def __init__(self, key: str, settle: float = LEASE_SETTLE) -> None:
        super().__init__(key)
        self.settle = settle
        self._lease_key = f"{key}__lease"
        self._held = threading.local()

    @property
    def where(self) -> str:
        return f"Airflow Variable {self.key}"

    def _get(self, key: str) -> str | None:
        from airflow_provider_cc._compat import VariableReadError, get_variable

        try:
            value = get_variable(key)
        except Exception as exc:  # the DB or the API server is down: transient
            reason = str(exc) if isinstance(exc, VariableReadError) else type(exc).__name__
            raise ConstantContactTokenStoreError(
                f"the Airflow Variable {key} cannot be read ({reason}); task retries apply") from None
        return value

    def _set(self, key: str, value: str) -> None:
        from airflow_provider_cc._compat import set_variable

        try:
            set_variable(key, value, description="Constant Contact v3 tokens, managed by the provider; do not edit")
        except Exception as exc:
            raise ConstantContactTokenStoreError(
                f"the Airflow Variable {key} cannot be written ({type(exc).__name__}); task retries apply") from None

    def read(self) -> TokenState | None:
        text = self._get(self.key)
        if text is None and getattr(self._held, "owner", None) is not None \
                and self._lease()[0] != self._held.owner:
            raise ConstantContactTokenStoreError(
                f"{self.where} reads as missing, and so does the lease this process holds: Airflow cannot read "
                "its Variables (while its metadata DB or API server is failing it answers 'not found'). Task "
                "retries apply; the refresh token is not affected")
        return None if not text else TokenState.from_json(text, self.where)

    def write(self, state: TokenState) -> None:
        self._set(self.key, state.to_json())

    def _lease(self) -> tuple[str | None, float]:
        """``(holder, until)`` of the lease: holder ``None`` when the Variable is missing, ``""`` when free."""
        text = self._get(self._lease_key)
        if text is None:
            return None, 0.0
        holder, _, until = text.partition(" ")
        try:
            return holder, float(until)
        except ValueError:
            return "", 0.0

    def _free(self, holder: str | None, until: float) -> bool:
        if not holder or until < time.time() or holder in _ABANDONED:
            return True
        dead = Holder.decode(holder)
        if dead.dead():
            log.warning("%s: the process that held the token lease (PID %d on this host) is gone; lease taken over",
                        self.where, dead.pid)
            return True
        return False

    def _write_lease(self, owner: str) -> None:
        self._set(self._lease_key, f"{owner} {time.time() + self.lock_ttl:.3f}")

    def _renew(self, owner: str) -> bool:
        if self._lease()[0] != owner:
            return False
        self._write_lease(owner)
        return True

    def _clear(self, owner: str) -> bool:
        """Clear the lease if it is still ``owner``'s: ``True`` once it is not (cleared, or another's)."""
        holder = self._lease()[0]
        if holder == owner:
            self._set(self._lease_key, "")
            return True
        return holder is not None  # missing: unreadable (it was written), so not known to be cleared

    def _release(self, owner: str) -> None:
        """Clear the lease if it is still ``owner``'s. If the store fails, this process takes the lease as free
        from now on, and a thread keeps trying to clear it until the store answers or the lease expires, so no
        other process waits for a dead lease longer than the store's outage."""
        try:
            if self._clear(owner):
                return
        except ConstantContactTokenStoreError as exc:
            log.warning("%s: the token lease could not be cleared (%s); trying again until it expires (%g s)",
                        self.where, exc, self.lock_ttl)
        _ABANDONED.add(owner)
        threading.Thread(target=self._clear_later, args=(owner, time.monotonic() + self.lock_ttl),
                         name="cc-token-lease-clear", daemon=True).start()

    def _clear_later(self, owner: str, until: float) -> None:
        while time.monotonic() < until:
            time.sleep(min(CLEAR_EVERY, self.lock_ttl / 10))
            with _lease_writes(self._lease_key), contextlib.suppress(ConstantContactTokenStoreError):
                if self._clear(owner):
                    return

    def _acquire(self, owner: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with _lease_writes(self._lease_key):
                holder, until = self._lease()
                if self._free(holder, until):
                    try:
                        self._write_lease(owner)
                        time.sleep(self.settle)
                        holder, until = self._lease()
                        if holder is None:
                            raise ConstantContactTokenStoreError(
                                f"{self.where}: the token lease this process had just written reads as missing: "
                                "Airflow cannot read its Variables (while its metadata DB or API server is failing "
                                "it answers 'not found'). Task retries apply; the refresh token is not affected")
                    except BaseException:
                        self._release(owner)  # a lease written (or half written) must not block every refresh
                        raise
                    if holder == owner:
                        return
            if time.monotonic() > deadline:
                raise ConstantContactTokenStoreError(
                    f"{self.where}: another machine held the token lease for more than {timeout:.0f} s")
            time.sleep(min(self.settle, max(0.0, until - time.time())) + _POLL)

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        path = Path(tempfile.gettempdir()) / f"{self.key}.lock"
        with _file_lock(path, timeout, self.where):  # the processes of this machine, exactly
            owner = Holder.new().encode()
            self._acquire(owner, timeout)
            heartbeat = Heartbeat(lambda: self._renew(owner), self.where, ttl=self.lock_ttl)
            self._held.owner, self._held.heartbeat = owner, heartbeat
            try:
                yield
            finally:
                heartbeat.stop()
                self._held.owner = self._held.heartbeat = None
                self._release(owner)

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        return self._locked(timeout)

    def confirm_held(self) -> None:
        heartbeat = getattr(self._held, "heartbeat", None)
        if heartbeat is not None and heartbeat.lost:
            raise self._lost()


def open_store(spec: str, chain: str, client_id: str, *, redis_password: str | None = None) -> TokenStore:
    """The store a connection's ``oauth_store`` names (``airflow``, a Redis URL or an absolute directory), at
    the key of its chain.

    :param redis_password: the password of a Redis store whose URL carries none (the extra ``redis_password``;
        the login command reads it from the environment or a prompt).
    """
    key = store_key(chain, client_id)
    if spec == "airflow":
        return AirflowVariableStore(key)
    if "://" in spec:
        from airflow_provider_cc.hooks.connection import with_password

        return RedisTokenStore(with_password(spec, redis_password), key)
    return FileTokenStore(spec, key)
