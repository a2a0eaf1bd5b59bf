"""Fault injection for the emulator.

Two mechanisms:

* **Random faults** (:class:`FaultConfig`, :class:`FaultInjector`): throttling, a daily quota, 500s, latency,
  drops and cut bodies at given rates, decided per request when it arrives (a gateway counts a request when it
  comes in, not when its answer is ready).
* **One-shot faults** (:class:`Shots`): a fault kind armed for a route (its template, ``GET /v3/emails/{id}``)
  hits exactly the n-th answer of that route it applies to; then the server is correct again. The kinds
  (:data:`KINDS`) are general: each reads the route's :class:`~.routes.Shape` to find the part it changes, so
  one kind applies to every route that has that part.

The one-shot faults' changes carry markers (:data:`MARKERS`): a test can look for them in what a run left
behind, to see that nothing a faulty answer said outlived it.
"""

from __future__ import annotations

import copy
import json
import random
import secrets
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_cc.emulator.routes import Route

Reply = tuple[int, Any]


@dataclass(frozen=True)
class FaultConfig:
    """What can go wrong, and how often.

    :param qps: requests per second allowed per api_key (0: no limit); excess gets 403 over.qps.
    :param daily_quota: requests allowed in all (0: no limit); then 403 over.ratelimit.
    :param error_rate: fraction of requests answered 500.
    :param latency: seconds added to every response.
    :param drop_rate: fraction of requests whose connection is closed with no answer.
    :param malformed_rate: fraction of 200 answers whose JSON body is cut short.
    :param seed: seeds the fault dice, so a run's faults repeat.
    """

    qps: float = 0
    daily_quota: int = 0
    error_rate: float = 0.0
    latency: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    seed: int = 7


class FaultInjector:
    """Decides, request by request and when the request arrives, which random fault (if any) to inject.
    Thread-safe."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._dice = random.Random(config.seed)
        self._recent: deque[float] = deque()
        self.requests = 0

    def decide(self) -> str | None:
        """One of ``drop``, ``quota``, ``qps``, ``error``, ``malformed`` or ``None``; call it as the request
        arrives (the rate limit counts arrivals)."""
        cfg = self.config
        with self._lock:
            self.requests += 1
            roll = self._dice.random()
            if cfg.drop_rate and roll < cfg.drop_rate:
                return "drop"
            if cfg.daily_quota and self.requests > cfg.daily_quota:
                return "quota"
            if cfg.qps:
                now = time.monotonic()
                while self._recent and now - self._recent[0] >= 1.0:
                    self._recent.popleft()
                if len(self._recent) >= cfg.qps:
                    return "qps"
                self._recent.append(now)
            roll = self._dice.random()
            if cfg.error_rate and roll < cfg.error_rate:
                return "error"
            if cfg.malformed_rate and roll < cfg.error_rate + cfg.malformed_rate:
                return "malformed"
        return None


# ---- one-shot faults --------------------------------------------------------------------------------------
BAD_ID = "fault-bad-id"
UNKNOWN_ENUM = "FAULT_UNKNOWN_VALUE"
STALE_DATE = "2001-01-01T00:00:00.000Z"
OTHER_HOST = "http://127.0.0.2:9"
FAKE_PREFIX = "fault-fake-"
PADDING_KEY = "fault_padding"
#: Values only a faulty answer carries: none may be found in what a run leaves behind.
MARKERS: tuple[str, ...] = (BAD_ID, UNKNOWN_ENUM, STALE_DATE[:10], OTHER_HOST, FAKE_PREFIX)

DRIP_SECONDS = 8.0  # a dripping answer lasts this long at most, then the rest comes at once
DRIP_EVERY = 0.05  # one byte this often
OVERSIZED_BYTES = 32 * 1024 * 1024  # whitespace before an oversized answer (no Content-Length: read to the end)
BOMB_BYTES = 64 * 1024 * 1024  # whitespace before a gzip bomb's answer, once decoded
_CHUNK = 64 * 1024


@dataclass
class Answer:
    """What goes on the wire.

    :param status: the HTTP status.
    :param payload: the body's bytes (for a gzip bomb, compressed).
    :param headers: headers besides Content-Type and Content-Length.
    :param drip: send the payload a byte every :data:`DRIP_EVERY` s, for at most ``drip`` s.
    :param pad: send this many spaces before the payload, without Content-Length, then close.
    """

    status: int
    payload: bytes
    headers: tuple[tuple[str, str], ...] = ()
    drip: float = 0.0
    pad: int = 0


def encoded(body: Any) -> bytes:
    """A body as the emulator sends it (bytes as they are)."""
    return body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()


def plain(reply: tuple[Any, ...]) -> Answer:
    """The answer to a reply ``(status, body)``, or ``(status, body, "malformed")`` (the body cut in half)."""
    payload = encoded(reply[1])
    if len(reply) > 2 and reply[2] == "malformed":
        payload = payload[: max(1, len(payload) // 2)]
    return Answer(reply[0], payload)


@dataclass
class Hit:
    """The answer a fault works on: the route, the request and the correct (or, on a route that writes, the
    route's stand-in) answer."""

    route: Route
    target: str  # path and query, credentials left out
    status: int
    body: Any
    errors: dict[str, Reply]  # the route's API's error answers by fault kind
    previous: Any = None  # the last 200 answer to the same path (the page before), if remembered


@dataclass(frozen=True)
class Kind:
    """A fault kind.

    :param fits: whether it can apply to a route at all (by its shape).
    :param make: the faulty answer, or ``None`` when this answer lacks what it changes (it waits for the next).
    :param real: it changes a real answer (``False``: it replaces it). On a route that writes, only a real
        answer's ``expires_in`` is changed; other kinds work on the route's stand-in answer, so that the chain
        does not move for an answer the client never got.
    """

    fits: Callable[[Route], bool]
    make: Callable[[Hit], Answer | None]
    real: bool = True


def _items(hit: Hit) -> list[Any] | None:
    """The answer's list of items (a copy of the body is changed, never the server's)."""
    items = hit.route.shape.items
    if hit.status != 200 or items is None:
        return None
    found = hit.body if items == "" else hit.body.get(items) if isinstance(hit.body, dict) else None
    return found if isinstance(found, list) else None


def _item(hit: Hit, key: str | None) -> dict[str, Any] | None:
    """The first item (the answer itself without a list) that has ``key``."""
    if key is None or hit.status != 200:
        return None
    if hit.route.shape.items is None:
        return hit.body if isinstance(hit.body, dict) and key in hit.body else None
    return next((i for i in _items(hit) or [] if isinstance(i, dict) and key in i), None)


def _json(hit: Hit) -> Answer:
    return Answer(hit.status, encoded(hit.body))


def _replace(body: Any) -> Callable[[Hit], Answer]:
    return lambda hit: Answer(200, encoded(body))


def _error(kind: str) -> Callable[[Hit], Answer]:
    def make(hit: Hit) -> Answer:
        status, body = hit.errors[kind]
        return Answer(status, encoded(body))
    return make


def _change_item(key: str, change: Callable[[Any], Any]) -> Callable[[Hit], Answer | None]:
    """Change (or with ``change`` returning ``...``, remove) field ``key`` of the first item that has it."""
    def make(hit: Hit) -> Answer | None:
        field_name = getattr(hit.route.shape, key)
        item = _item(hit, field_name)
        if item is None:
            return None
        value = change(item[field_name])
        if value is None:
            return None
        if value is ...:
            del item[field_name]
        else:
            item[field_name] = value
        return _json(hit)
    return make


def _other_case(value: Any) -> Any:
    if not isinstance(value, str) or value.swapcase() == value:
        return None
    return value.lower() if value.isupper() else value.upper()


def _items_missing(hit: Hit) -> Answer | None:
    if _items(hit) is None:
        return None
    del hit.body[hit.route.shape.items]
    return _json(hit)


def _items_wrong_type(hit: Hit) -> Answer | None:
    if _items(hit) is None:
        return None
    hit.body[hit.route.shape.items] = {"fault": "an object where a list belongs"}
    return _json(hit)


def _item_twice(hit: Hit) -> Answer | None:
    items = _items(hit)
    if not items:
        return None
    items.insert(1, copy.deepcopy(items[0]))
    return _json(hit)


def _date_key(hit: Hit, item: Any) -> str | None:
    """The date field an item carries (the first of the route's that it has, as text)."""
    return next((k for k in hit.route.shape.dates if isinstance(item, dict) and isinstance(item.get(k), str)), None)


def _dated(hit: Hit) -> list[Any] | None:
    items = _items(hit)
    if not items or any(_date_key(hit, i) is None for i in items):
        return None
    return items


def _out_of_order(hit: Hit) -> Answer | None:
    """The page's oldest item moved to its front."""
    items = _dated(hit)
    if not items or len(items) < 2 or items[-1][_date_key(hit, items[-1])] == items[0][_date_key(hit, items[0])]:
        return None
    items.insert(0, items.pop())
    return _json(hit)


def _stale(hit: Hit) -> Answer | None:
    """A stray record: a copy of the first, dated long before anything the account holds, in front."""
    items = _dated(hit)
    if not items:
        return None
    stray = copy.deepcopy(items[0])
    stray[_date_key(hit, stray)] = STALE_DATE
    items.insert(0, stray)
    return _json(hit)


def _page_repeated(hit: Hit) -> Answer | None:
    """The previous page's items again, with this page's own next link: that page's records twice, this
    page's never."""
    items = _items(hit)
    before = hit.previous
    if items is None or not isinstance(before, dict):
        return None
    earlier = before.get(hit.route.shape.items or "")
    if not isinstance(earlier, list) or not earlier or earlier == items:
        return None
    hit.body[hit.route.shape.items] = copy.deepcopy(earlier)
    return _json(hit)


def _set_next(hit: Hit, link: str) -> Answer | None:
    if hit.status != 200 or not isinstance(hit.body, dict):
        return None
    if hit.route.shape.paging == "v2":
        meta = hit.body.setdefault("meta", {})
        meta.setdefault("pagination", {})["next_link"] = link
    else:
        hit.body["_links"] = {"next": {"href": link}}
    return _json(hit)


def _truncated(hit: Hit) -> Answer | None:
    payload = encoded(hit.body)
    return None if hit.status != 200 else Answer(200, payload[: max(1, len(payload) // 2)])


def _drip(hit: Hit) -> Answer | None:
    return None if hit.status != 200 else Answer(200, encoded(hit.body), drip=DRIP_SECONDS)


def _oversized(hit: Hit) -> Answer | None:
    return None if hit.status != 200 else Answer(200, encoded(hit.body), pad=OVERSIZED_BYTES)


_BOMB: list[Any] = []  # the compressor after BOMB_BYTES spaces, and what it wrote so far (made once)
_BOMB_LOCK = threading.Lock()


def gzip_bomb(payload: bytes) -> bytes:
    """A gzip stream of :data:`BOMB_BYTES` spaces, then ``payload``: a few kB that decode to 64 MiB."""
    with _BOMB_LOCK:
        if not _BOMB:
            compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
            written = bytearray()
            block = b" " * _CHUNK
            for _ in range(BOMB_BYTES // _CHUNK):
                written += compressor.compress(block)
            _BOMB.extend((compressor, bytes(written)))
        compressor, written = _BOMB[0].copy(), _BOMB[1]
    return written + compressor.compress(payload) + compressor.flush()


def _bomb(hit: Hit) -> Answer | None:
    if hit.status != 200:
        return None
    return Answer(200, gzip_bomb(encoded(hit.body)), headers=(("Content-Encoding", "gzip"),))


def _expires(value: Callable[[], Any]) -> Callable[[Hit], Answer | None]:
    """A real token answer whose ``expires_in`` is missing or odd (``...``: missing). Its access token is
    given an opaque alias first (see :class:`Shots`), so that no JWT ``exp`` says otherwise."""
    def make(hit: Hit) -> Answer | None:
        if hit.status != 200 or not isinstance(hit.body, dict) or "access_token" not in hit.body:
            return None
        chosen = value()
        if chosen is ...:
            hit.body.pop("expires_in", None)
        else:
            hit.body["expires_in"] = chosen
        return _json(hit)
    return make


def _always(route: Route) -> bool:
    return True


def _shape(name: str) -> Callable[[Route], bool]:
    return lambda route: bool(getattr(route.shape, name))


def _has_list(route: Route) -> bool:
    return route.shape.items is not None


def _keyed_list(route: Route) -> bool:
    return bool(route.shape.items)


def _dated_list(route: Route) -> bool:
    return route.shape.items is not None and bool(route.shape.dates)


#: Every one-shot fault kind, by name.
KINDS: dict[str, Kind] = {
    "body_null": Kind(_always, _replace(None), real=False),
    "body_list": Kind(_always, _replace([]), real=False),
    "body_object": Kind(_always, _replace({}), real=False),
    "body_string": Kind(_always, _replace("fault: a string where an answer belongs"), real=False),
    "items_missing": Kind(_keyed_list, _items_missing),
    "items_wrong_type": Kind(_keyed_list, _items_wrong_type),
    "item_no_id": Kind(_shape("id"), _change_item("id", lambda v: ...)),
    "item_bad_id": Kind(_shape("id"), _change_item("id", lambda v: BAD_ID)),
    "item_unknown_enum": Kind(_shape("enum"), _change_item("enum", lambda v: UNKNOWN_ENUM)),
    "item_enum_case": Kind(_shape("enum"), _change_item("enum", _other_case)),
    "item_twice": Kind(_has_list, _item_twice),
    "record_out_of_order": Kind(_dated_list, _out_of_order),
    "record_stale": Kind(_shape("records"), _stale),
    "page_repeated": Kind(_shape("paging"), _page_repeated),
    "next_self": Kind(_shape("paging"), lambda hit: _set_next(hit, hit.target)),
    "next_other_host": Kind(_shape("paging"), lambda hit: _set_next(hit, OTHER_HOST + hit.target)),
    "truncated": Kind(_always, _truncated),
    "status_404": Kind(_always, _error("status_404"), real=False),
    "status_500": Kind(_always, _error("status_500"), real=False),
    "status_401": Kind(_always, _error("status_401"), real=False),
    "throttled": Kind(_always, _error("throttled"), real=False),
    "quota": Kind(_always, _error("quota"), real=False),
    "drip": Kind(_always, _drip),
    "oversized": Kind(_always, _oversized),
    "gzip_bomb": Kind(_always, _bomb),
    "expires_in_missing": Kind(_shape("token"), _expires(lambda: ...)),
    "expires_in_negative": Kind(_shape("token"), _expires(lambda: -3600)),
    "expires_in_huge": Kind(_shape("token"), _expires(lambda: 10**12)),
    "expires_in_past": Kind(_shape("token"), _expires(lambda: int(time.time()) - 3600)),
}
#: Kinds that change a real token answer even on a route that writes.
TOKEN_KINDS = frozenset(k for k in KINDS if k.startswith("expires_in_"))


@dataclass
class Shot:
    """One armed fault: ``kind`` on the ``nth`` answer of ``template`` it applies to.

    After it fired: ``target`` is the request it hit (path and query, no credentials) and ``outcome`` what
    happened on the wire (``hung_up``: the client closed before the end; ``sent``: bytes written; ``seconds``).
    """

    template: str
    kind: str
    nth: int = 1
    seen: int = 0
    fired: bool = False
    target: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)


class Shots:
    """The one-shot faults armed on one emulator (both APIs and the OAuth2 server). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.armed: list[Shot] = []
        self._previous: dict[str, Any] = {}

    def arm(self, route: Route, kind: str, nth: int = 1) -> Shot:
        """Arm ``kind`` for the ``nth`` answer of ``route`` it applies to."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(KINDS)}")
        if not KINDS[kind].fits(route):
            raise ValueError(f"fault {kind!r} cannot apply to {route.template!r} (its answers have no such part)")
        if nth < 1:
            raise ValueError("nth counts from 1")
        shot = Shot(route.template, kind, nth)
        if kind == "gzip_bomb":
            gzip_bomb(b"")  # the compressor is made once, now: not while a client waits for an answer
        with self._lock:
            self.armed.append(shot)
        return shot

    def clear(self) -> None:
        """Disarm every fault not fired yet; forget remembered pages."""
        with self._lock:
            self.armed = [s for s in self.armed if s.fired]
            self._previous.clear()

    def pending(self, template: str) -> Shot | None:
        """The first fault armed for ``template`` that has not fired."""
        with self._lock:
            return next((s for s in self.armed if s.template == template and not s.fired), None)

    def answer(self, route: Route, target: str, path: str, compute: Callable[[], tuple[Any, ...] | None],
               errors: dict[str, Reply], stand_in: Callable[[], Any] | None = None,
               alias: Callable[[Any], Any] | None = None) -> tuple[Answer | None, Shot | None]:
        """The answer to one request of ``route``: the correct one, or the armed fault's.

        :param target: the request's path and query, credentials left out (a next link to itself).
        :param path: the request's path (the previous page of the same list is remembered by it).
        :param compute: the correct reply (``None``: drop the connection). On a route that writes, not called
            when a fault replaces the answer, nor when it changes one and ``stand_in`` is given.
        :param errors: the route's API's error answers by kind (``status_404``...).
        :param stand_in: on a route that writes, for a request that would move a refresh-token chain: the answer
            a changing fault works on instead of a real one (a lost real answer would end the chain: a client
            cannot recover from it, by design of single-use tokens).
        :param alias: on the token route, gives a real answer's access token an opaque alias.
        """
        shot = self.pending(route.template)
        kind = KINDS[shot.kind] if shot is not None else None
        if (kind is not None and route.writes and shot is not None and shot.kind not in TOKEN_KINDS
                and (not kind.real or stand_in is not None)):
            reply: tuple[Any, ...] | None = (200, stand_in() if stand_in is not None and kind.real else None)
        else:
            reply = compute()
        if reply is None or kind is None or shot is None:
            return (None if reply is None else plain(reply)), None
        status, body = reply[0], reply[1]
        if isinstance(body, bytes):
            body = json.loads(body)
        previous = None
        if shot.kind == "page_repeated" and status == 200:
            with self._lock:
                previous, self._previous[path] = self._previous.get(path), body
        if shot.kind in TOKEN_KINDS and status == 200 and alias is not None:
            body = alias(body)
        hit = Hit(route, target, status, copy.deepcopy(body), errors, copy.deepcopy(previous))
        made = kind.make(hit)
        if made is None or not self._fire(shot, target):
            return plain(reply), None
        return made, shot

    def _fire(self, shot: Shot, target: str) -> bool:
        """Count an answer the fault applies to: ``True`` exactly once, on the ``nth``."""
        with self._lock:
            if shot.fired:
                return False
            shot.seen += 1
            if shot.seen < shot.nth:
                return False
            shot.fired, shot.target = True, target
            return True


def fake_token_answer(scope: str = "campaign_data contact_data offline_access") -> dict[str, Any]:
    """A token answer with tokens no server issued: what a fault on a token route carries instead of a real
    one (markers: a client that takes it shows them where it keeps tokens)."""
    return {"token_type": "Bearer", "expires_in": 86_400, "scope": scope,
            "access_token": FAKE_PREFIX + "access-" + secrets.token_hex(8),
            "refresh_token": FAKE_PREFIX + "refresh-" + secrets.token_hex(8)}
