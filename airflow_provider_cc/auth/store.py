"""Token stores: where a v3 connection's current refresh token and cached access token live between processes.

Every store offers the same three things: read the state, write it durably, and hold an exclusive lock
across every process that can refresh the connection's tokens. What each guarantees:

* :class:`AirflowVariableStore` (``airflow``, the default): an Airflow Variable, written by tasks and triggers
  through Airflow's own API (the metadata DB on Airflow 2, the task SDK on 3.x), so it works wherever Airflow
  runs: one machine, Celery or Kubernetes workers, the triggerer. Its lock is a lease written to a second
  Variable and read back after a settling pause (no Variable API offers compare-and-set), plus a file lock
  for the processes of one machine: safe unless a process stalls longer than the pause between writing its
  lease and reading it back.
* :class:`FileTokenStore` (a directory): a JSON file replaced atomically, and a POSIX lock (``fcntl.lockf``)
  on a lock file beside it. Exact for every process of one machine, and across machines on a shared volume
  whose locks work across clients (NFSv4, most CSI drivers with ReadWriteMany).
* :class:`RedisTokenStore` (a ``redis://`` URL): the state in one key and a real lock (``SET NX PX`` with a
  random owner, released and checked by Lua), and every write refused unless the writer still holds the
  lock. Exact across processes and machines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactTokenStoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

# How long a refresh may hold a lock before another process may take it over (a refresh is one token call).
LOCK_TTL = 120.0
# The pause between writing a lease and reading it back (the Variable store's lock).
LEASE_SETTLE = 1.0
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
_FENCED_SET = ("if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end "
               "redis.call('SET', KEYS[1], ARGV[1]) return 1")


class RedisTokenStore(TokenStore):
    """The state in one Redis key; a lock with a random owner and a TTL; writes fenced by the lock.

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
                             args=[state.to_json(), owner])
        if not written:
            raise ConstantContactTokenStoreError(
                f"{self.where}: the token lock expired before the new tokens were written (a refresh took more "
                f"than {LOCK_TTL:.0f} s); nothing was written")

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        while not self._call("take the token lock", self._client.set, self._lock_key, owner, nx=True,
                             px=int(LOCK_TTL * 1000)):
            if time.monotonic() > deadline:
                raise ConstantContactTokenStoreError(
                    f"{self.where}: another process held the token lock for more than {timeout:.0f} s")
            time.sleep(_POLL)
        self._owner.value = owner
        try:
            yield
        finally:
            self._owner.value = None
            with contextlib.suppress(ConstantContactTokenStoreError):
                self._call("release the token lock", self._release, keys=[self._lock_key], args=[owner])

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        return self._locked(timeout)


def _password(url: str) -> list[str]:
    """The URL and its password (as written and decoded): never shown in an error."""
    from airflow_provider_cc.hooks.connection import url_secrets

    return url_secrets(url)


# ---- an Airflow Variable ------------------------------------------------------------------------------------
class AirflowVariableStore(TokenStore):
    """The state in the Airflow Variable ``key`` (its name holds "token", so Airflow masks it in the UI; the
    metadata DB encrypts it with the Fernet key); the lock a lease in the Variable ``{key}__lease``.

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

    @property
    def where(self) -> str:
        return f"Airflow Variable {self.key}"

    def _get(self, key: str) -> str | None:
        from airflow_provider_cc._compat import get_variable

        try:
            value = get_variable(key)
        except Exception as exc:  # the DB or the API server is down: transient
            raise ConstantContactTokenStoreError(
                f"the Airflow Variable {key} cannot be read ({type(exc).__name__}); task retries apply") from None
        return None if value is None else str(value)

    def _set(self, key: str, value: str) -> None:
        from airflow_provider_cc._compat import set_variable

        try:
            set_variable(key, value, description="Constant Contact v3 tokens, managed by the provider; do not edit")
        except Exception as exc:
            raise ConstantContactTokenStoreError(
                f"the Airflow Variable {key} cannot be written ({type(exc).__name__})") from None

    def read(self) -> TokenState | None:
        text = self._get(self.key)
        return None if not text else TokenState.from_json(text, self.where)

    def write(self, state: TokenState) -> None:
        self._set(self.key, state.to_json())

    def _lease(self) -> tuple[str, float]:
        owner, _, until = (self._get(self._lease_key) or "").partition(" ")
        try:
            return owner, float(until)
        except ValueError:
            return "", 0.0

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        path = Path(tempfile.gettempdir()) / f"{self.key}.lock"
        with _file_lock(path, timeout, self.where):  # the processes of this machine, exactly
            owner = uuid.uuid4().hex
            deadline = time.monotonic() + timeout
            while True:
                holder, until = self._lease()
                if not holder or until < time.time():
                    self._set(self._lease_key, f"{owner} {time.time() + LOCK_TTL:.3f}")
                    time.sleep(self.settle)
                    if self._lease()[0] == owner:
                        break
                if time.monotonic() > deadline:
                    raise ConstantContactTokenStoreError(
                        f"{self.where}: another machine held the token lease for more than {timeout:.0f} s")
                time.sleep(min(self.settle, max(0.0, until - time.time())) + _POLL)
            try:
                yield
            finally:
                with contextlib.suppress(ConstantContactTokenStoreError):
                    if self._lease()[0] == owner:
                        self._set(self._lease_key, "")

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        return self._locked(timeout)


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
