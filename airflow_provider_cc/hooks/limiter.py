"""Rate limiters: one per API key, in-process by default or shared by every process through Redis.

The rule both follow (the server's view of "4 requests a second"):

* at most ``n = floor(rate)`` (at least 1) requests counted in any window of ``max(1, n / rate)`` seconds:
  never more than ``floor(rate)`` starts in any one second, as Constant Contact's gateway counts (``rate`` 4:
  four per second over a sliding window; 3.99 and 3.5: three; 0.5: one per two seconds);
* a request is counted at the latest moment the server can have counted it: its answer time when the answer
  came within ``EXACT_UP_TO`` seconds (an exact bound, robust to a loaded machine), otherwise its start plus
  ``MARGIN`` (a gateway counts a request as it arrives; slow answers are slow behind it);
* after a 403 over-qps answer the key's rate drops to ``DECREASE`` of what it was (never below ``FLOOR`` of
  the configured rate) and regains ``RECOVERY`` of the configured rate per second (AIMD). Answers to requests
  that started before the last slow-down do not slow it again.

When several hooks on one key configure different rates, the lowest positive rate applies to all of them.
Limiters are found by a hash of the host and api_key (v3: the client id); the key itself is never kept.

No wait is longer than about one window: a Redis whose clock is behind the scores it holds (a failover to a
replica, an NTP step back) would otherwise make every process sleep the whole skew. Such entries are counted
again as of Redis's now and the skew is logged. A wait goes through the ``sleep`` given to :meth:`acquire`
(the transport's, which a task's stop interrupts).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import random
import threading
import time
import uuid
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_cc.exceptions import ConstantContactInputError, ConstantContactRateLimiterError
from airflow_provider_cc.hooks.connection import url_secrets

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

MARGIN = 0.05
EXACT_UP_TO = 0.25
DECREASE = 0.5
FLOOR = 0.125
RECOVERY = 0.05
# How long a process's configured rate counts in Redis after its last request.
REGISTRATION_TTL = 60.0


def key_identity(base_url: str, api_key: str) -> str:
    """A stable, non-reversible name for one API key on one host."""
    return hashlib.sha256(f"{base_url}\0{api_key}".encode()).hexdigest()[:32]


def window(rate: float) -> tuple[int, float]:
    """``(n, seconds)``: at most ``n`` starts in any window of ``seconds``, and so never more than
    ``floor(rate)`` (at least 1) in any one second. A fractional rate above 1 rounds down (3.99 is 3 a second:
    three per 0.75 s would let six start within one second)."""
    n = max(1, math.floor(rate + 1e-9))
    return n, max(1.0, n / rate)


def _waits_on_condition(sleep: Callable[[float], None] | None) -> bool:
    """Whether a wait may block on the limiter's condition: ``time.sleep`` cannot be interrupted anyway, and
    the condition also wakes when an answer frees a slot early."""
    return sleep is None or sleep is time.sleep


def recovered(base: float, r0: float | None, t0: float, now: float) -> float:
    """The effective rate ``now`` after a slow-down to ``r0`` at ``t0`` (``base`` when none)."""
    if r0 is None:
        return base
    return min(base, r0 + RECOVERY * base * max(0.0, now - t0))


class Slot:
    """One granted request start; call :meth:`finish` as soon as the answer's headers arrived."""

    __slots__ = ("_limiter", "start", "token")

    def __init__(self, limiter: RateLimiter | None, start: float, token: Any = None) -> None:
        self._limiter = limiter
        self.start = start
        self.token = token

    def finish(self) -> None:
        """Record that the answer came (tightens the count of this request when it came quickly)."""
        if self._limiter is not None:
            self._limiter._finish(self)
            self._limiter = None


class RateLimiter(Protocol):
    """What the transport needs from a limiter."""

    def register(self, owner: object, rate: float) -> None: ...

    def acquire(self, sleep: Callable[[float], None] | None = None) -> Slot: ...

    def penalise(self, slot: Slot) -> None: ...

    def _finish(self, slot: Slot) -> None: ...


class _Registrations:
    """Configured rates of the live transports on one key; the lowest positive one applies."""

    def __init__(self) -> None:
        self._rates: dict[int, float] = {}
        self._gone: list[int] = []
        self._tokens = itertools.count()
        self._lock = threading.Lock()

    def add(self, owner: object, rate: float) -> None:
        token = next(self._tokens)  # not id(owner): a later owner may get a dead one's id before it is swept
        with self._lock:
            self._sweep()
            self._rates[token] = rate
        weakref.finalize(owner, self._gone.append, token)

    def _sweep(self) -> None:
        # The garbage collector runs a dead owner's finaliser in whichever thread allocates next, which may hold
        # this lock: the finaliser only notes the token (list.append takes no lock), and the holder drops it.
        while self._gone:
            self._rates.pop(self._gone.pop(), None)

    @property
    def rate(self) -> float:
        """The lowest positive configured rate; 0 when none (throttling off)."""
        with self._lock:
            self._sweep()
            positive = [r for r in self._rates.values() if r > 0]
        return min(positive) if positive else 0.0


class LocalRateLimiter:
    """The in-process limiter of one key, shared by every thread and hook of the process.

    :param clock: monotonic seconds (tests may pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._registrations = _Registrations()
        self._cond = threading.Condition()
        self._counted: deque[list[float]] = deque(maxlen=256)  # [start, counted-at], in start order
        self._r0: float | None = None
        self._t0 = -math.inf

    def register(self, owner: object, rate: float) -> None:
        """Count ``owner``'s configured rate while it lives."""
        self._registrations.add(owner, rate)

    @property
    def rate(self) -> float:
        """The configured rate in force (the lowest of the live hooks')."""
        return self._registrations.rate

    def effective_rate(self, now: float | None = None) -> float:
        """The rate in force after any over-qps slow-down."""
        base = self.rate
        with self._cond:
            return self._effective(base, self._clock() if now is None else now)

    def _effective(self, base: float, now: float) -> float:
        rate = recovered(base, self._r0, self._t0, now)
        if rate >= base:
            self._r0 = None
        return rate

    def acquire(self, sleep: Callable[[float], None] | None = None) -> Slot:
        """Wait until a request may start under the key's rate, and count it.

        :param sleep: how to wait (the transport's; a task's stop interrupts it by raising). ``None`` or
            ``time.sleep``: wait on the limiter's condition.
        """
        base = self.rate
        while True:
            with self._cond:
                now = self._clock()
                rate = self._effective(base, now) if base > 0 else 0.0
                if rate <= 0:
                    return Slot(None, now)
                n, span = window(rate)
                active = sorted((c[1] for c in self._counted if c[1] > now - span), reverse=True)
                if len(active) < n:
                    entry = [now, now + MARGIN]
                    self._counted.append(entry)
                    return Slot(self, now, entry)
                wait = min(active[n - 1] + span - now, span)
                if _waits_on_condition(sleep):
                    self._cond.wait(wait)
                    continue
            assert sleep is not None
            sleep(wait)

    def _finish(self, slot: Slot) -> None:
        now = self._clock()
        if now - slot.start <= EXACT_UP_TO:
            with self._cond:
                slot.token[1] = now
                self._cond.notify_all()

    def penalise(self, slot: Slot) -> None:
        """An over-qps answer to ``slot``'s request: slow the key down (once per slow-down)."""
        base = self.rate
        if base <= 0:
            return
        with self._cond:
            if slot.start <= self._t0:
                return
            now = self._clock()
            self._r0 = rate = max(base * FLOOR, self._effective(base, now) * DECREASE)
            self._t0 = now
        log.info("over-qps answer: this API key slows to %.2f requests/s, recovering gradually", rate)


# ---- Redis ----------------------------------------------------------------------------------------------
# The same rule, run atomically inside Redis with Redis's clock, so every process and machine shares it.
# Keys share one hash tag (Redis Cluster) and expire when the key is idle.
_LUA_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function base_rate(reg, rate, reg_ttl)
  if reg ~= '' then
    redis.call('ZADD', KEYS[3], now, reg)
    redis.call('ZADD', KEYS[2], rate, reg)
  end
  -- rates that cannot be one, and registrations seen "in the future" (a clock step back), are put right
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', 0)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '(1e9', '+inf')
  for _, r in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. string.format('%.6f', now + 1), '+inf')) do
    redis.call('ZADD', KEYS[3], string.format('%.6f', now), r)
  end
  local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - reg_ttl)
  for _, r in ipairs(stale) do
    redis.call('ZREM', KEYS[2], r)
    redis.call('ZREM', KEYS[3], r)
  end
  local low = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if low[2] then return tonumber(low[2]) end
  return rate
end
local function effective(base, recovery)
  local r0 = tonumber(redis.call('HGET', KEYS[4], 'r0'))
  local t0 = tonumber(redis.call('HGET', KEYS[4], 't0'))
  if not r0 or not t0 or r0 ~= r0 or r0 <= 0 or r0 >= math.huge or t0 ~= t0 or t0 < -1e12 then
    redis.call('DEL', KEYS[4])
    return base
  end
  if t0 > now then  -- a slow-down "in the future": Redis's clock went back; it starts now
    t0 = now
    redis.call('HSET', KEYS[4], 't0', string.format('%.6f', now))
  end
  local rate = math.min(base, tonumber(r0) + recovery * base * math.max(0, now - t0))
  if rate >= base then redis.call('HDEL', KEYS[4], 'r0') end
  return rate
end
local function touch(ttl_ms)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl_ms) end
end
"""

# ARGV: registration, rate, margin, floor, recovery, registration ttl, key ttl (ms), member
_LUA_ACQUIRE = _LUA_COMMON + """
local base = base_rate(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[6]))
local rate = effective(base, tonumber(ARGV[5]))
local n = math.max(1, math.floor(rate + 1e-9))
local span = math.max(1, n / rate)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1 / (base * tonumber(ARGV[4])) - 1)
-- Entries counted more than a second after Redis's now come from a clock that was ahead (a failover, an NTP
-- step back, a hand-written +inf): count them again as of now, so no one waits the whole skew.
local ahead = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.6f', now + 1), '+inf', 'WITHSCORES')
local skew = 0
for i = 1, #ahead, 2 do
  local score = tonumber(ahead[i + 1])
  if score ~= score or score >= math.huge then skew = -1 elseif skew >= 0 then skew = math.max(skew, score - now) end
  redis.call('ZADD', KEYS[1], string.format('%.6f', now + tonumber(ARGV[3])), ahead[i])
end
local recounted = tostring(#ahead / 2) .. ' ' .. string.format('%.3f', skew)
local top = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. string.format('%.6f', now - span),
                       'WITHSCORES', 'LIMIT', n - 1, 1)
touch(tonumber(ARGV[7]))
if top[2] then
  local wait = math.min(tonumber(top[2]) + span - now, span)
  return {'0', string.format('%.6f', wait), string.format('%.6f', rate), recounted}
end
redis.call('ZADD', KEYS[1], string.format('%.6f', now + tonumber(ARGV[3])), ARGV[8])
return {'1', string.format('%.6f', now), string.format('%.6f', rate), recounted}
"""

# ARGV: registration, rate, start of the refused request, floor, recovery, registration ttl, key ttl, decrease
_LUA_PENALISE = _LUA_COMMON + """
local base = base_rate(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[6]))
local t0 = redis.call('HGET', KEYS[4], 't0')
if t0 and tonumber(ARGV[3]) <= tonumber(t0) then return '' end
local rate = math.max(base * tonumber(ARGV[4]), effective(base, tonumber(ARGV[5])) * tonumber(ARGV[8]))
redis.call('HSET', KEYS[4], 'r0', string.format('%.6f', rate), 't0', string.format('%.6f', now))
touch(tonumber(ARGV[7]))
return string.format('%.6f', rate)
"""


def _redis_client(url: str) -> Any:
    try:
        import redis
    except ImportError:
        raise ConstantContactInputError(
            "the connection's rate_limiter_url asks for the Redis rate limiter, but the redis package is not "
            "installed: pip install 'airflow-provider-constant-contact[redis]'") from None
    try:
        return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
    except ValueError:  # redis's text may quote part of the URL, which may hold a password: never echo it
        raise ConstantContactInputError(
            "the connection's Redis URL (rate_limiter_url or oauth_store) is not a valid Redis URL (check its host, "
            "port and database number): redis://host:6379/0, rediss://... or unix:///path/to/redis.sock, the "
            'password in the extra "redis_password"') from None


class RedisRateLimiter:
    """The limiter of one key shared by every process and machine through Redis.

    :param url: Redis URL (``redis://``, ``rediss://`` or ``unix://``).
    :param identity: :func:`key_identity` of the host and api_key.
    """

    KEY_TTL_MS = 120_000

    def __init__(self, url: str, identity: str) -> None:
        self._client = _redis_client(url)
        self._hide = url_secrets(url)
        self._identity = identity
        prefix = f"cc-limiter:{{{identity}}}:"
        self._keys = [prefix + name for name in ("counted", "rates", "seen", "slowdown")]
        self._registration = uuid.uuid4().hex
        self._registrations = _Registrations()
        self.last_rate = 0.0  # the key's rate in force at the last grant (all processes' lowest, after slow-downs)
        self._acquire = self._client.register_script(_LUA_ACQUIRE)
        self._penalise = self._client.register_script(_LUA_PENALISE)

    def register(self, owner: object, rate: float) -> None:
        """Count ``owner``'s configured rate while it lives (and, in Redis, while this process is active)."""
        self._registrations.add(owner, rate)

    @property
    def rate(self) -> float:
        """This process's configured rate (Redis applies the lowest of all active processes')."""
        return self._registrations.rate

    def _call(self, script: Any, args: list[Any]) -> Any:
        try:
            return script(keys=self._keys, args=args)
        except Exception as exc:  # redis.RedisError and socket errors: no request may go out unthrottled
            text = f"{type(exc).__name__}: {exc}"
            for secret in self._hide:
                text = text.replace(secret, "***")
            raise ConstantContactRateLimiterError(
                f"the shared rate limiter (Redis) failed ({text}); no request was sent. Check that Redis is "
                "reachable at the connection's rate_limiter_url, or remove that extra to use the in-process "
                "limiter") from None

    def acquire(self, sleep: Callable[[float], None] | None = None) -> Slot:
        """Wait until Redis grants a start under the key's shared rate, and count it there.

        :param sleep: how to wait between asks (the transport's; a task's stop interrupts it by raising).
        """
        rate = self.rate
        if rate <= 0:
            return Slot(None, time.monotonic())
        member = uuid.uuid4().hex
        wait_for = sleep or time.sleep
        while True:
            before = time.monotonic()
            answer = self._call(self._acquire, [
                self._registration, rate, MARGIN, FLOOR, RECOVERY, REGISTRATION_TTL, self.KEY_TTL_MS, member])
            granted, value, in_force = self._numbers(answer)
            self.last_rate = in_force
            if granted:
                # Redis's start time and the local time it cannot be earlier than, to map the answer time.
                return Slot(self, value, (member, before))
            # The script caps a wait at one window; so does this side, whatever a Redis answers.
            wait_for(min(value, window(in_force)[1]) + random.uniform(0, 0.005))  # jitter: waiters do not collide

    def _numbers(self, answer: Any) -> tuple[bool, float, float]:
        """``(granted, value, rate in force)`` from the script's answer, each checked finite; clock skew logged."""
        try:
            granted, value, in_force = (item.decode() if isinstance(item, bytes) else str(item) for item in answer[:3])
            numbers = float(value), float(in_force)
        except (TypeError, ValueError, IndexError):
            numbers = (math.nan, math.nan)
            granted = ""
        if not all(math.isfinite(x) for x in numbers) or numbers[1] <= 0 or numbers[0] < 0:
            raise ConstantContactRateLimiterError(
                "the shared rate limiter (Redis) answered a value that is not a finite time or rate; no request "
                f"was sent. Check the limiter's keys (cc-limiter:{{{self._identity}}}:*): deleting them resets it")
        if len(answer) > 3:
            recounted, _, skew = (answer[3].decode() if isinstance(answer[3], bytes) else str(answer[3])).partition(" ")
            if recounted not in ("0", "0.0"):
                ahead = "an unreadable time" if skew.startswith("-") else f"up to {float(skew):,.0f} s"
                log.warning("rate limiter: %s entries in Redis were counted %s after Redis's own clock (a failover "
                            "or a clock step back?); they count again as of now instead of being waited for",
                            recounted.split(".")[0], ahead)
        return granted == "1", numbers[0], numbers[1]

    def _finish(self, slot: Slot) -> None:
        member, before = slot.token
        elapsed = time.monotonic() - before  # an upper bound of the request's time on Redis's clock
        if elapsed <= EXACT_UP_TO:
            try:
                self._client.zadd(self._keys[0], {member: slot.start + elapsed}, xx=True)
            except Exception:  # the start + margin count stays: safe, only less exact
                log.debug("rate limiter: could not record an answer time in Redis", exc_info=False)

    def penalise(self, slot: Slot) -> None:
        """An over-qps answer: slow the key down for every process (once per slow-down)."""
        rate = self.rate
        if rate <= 0:
            return
        result = self._call(self._penalise, [self._registration, rate, slot.start, FLOOR, RECOVERY,
                                             REGISTRATION_TTL, self.KEY_TTL_MS, DECREASE])
        if result:
            log.info("over-qps answer: this API key slows to %.2f requests/s in every process, recovering "
                     "gradually", float(result))


_LOCAL: dict[str, LocalRateLimiter] = {}
_REDIS: dict[tuple[str, str], RedisRateLimiter] = {}
_LOCK = threading.Lock()


def limiter_for(owner: object, base_url: str, api_key: str, rate: float,
                rate_limiter_url: str | None = None) -> LocalRateLimiter | RedisRateLimiter:
    """The one limiter of this host and api_key in this process, with ``owner``'s rate registered on it.

    :param owner: the transport; its rate stops counting when it is garbage-collected.
    :param base_url: normalised ``scheme://host[:port]``.
    :param api_key: the key (only its hash is kept).
    :param rate: the owner's configured requests per second (0: no throttling wanted).
    :param rate_limiter_url: Redis URL for a limiter shared across processes, or ``None``.
    """
    identity = key_identity(base_url, api_key)
    limiter: LocalRateLimiter | RedisRateLimiter
    with _LOCK:
        if rate_limiter_url:
            where = (hashlib.sha256(rate_limiter_url.encode()).hexdigest(), identity)
            if where not in _REDIS:
                _REDIS[where] = RedisRateLimiter(rate_limiter_url, identity)
            limiter = _REDIS[where]
        else:
            limiter = _LOCAL.setdefault(identity, LocalRateLimiter())
    limiter.register(owner, rate)
    return limiter
