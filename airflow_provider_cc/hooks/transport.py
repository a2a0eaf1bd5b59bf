"""HTTP transport for the v2 API: one keep-alive session, the key's limiter, the retry policy, error mapping.

Nothing here logs or raises a URL: the api_key rides in the query string. Every string a server sends back
(error keys and messages, hosts of refused links) is redacted of the api_key and token, in their plain and
URL-encoded forms, before it reaches an exception or a log line.

Each request is bounded: the connection's ``timeout`` bounds the whole request (connect, headers and
body; a watchdog closes the socket when it passes), and a decoded body above ``max_page_bytes`` is refused
without being held. Redirects are never followed.
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import itertools
import json
import logging
import math
import os
import random
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from airflow_provider_cc.exceptions import (
    ConstantContactAuthError,
    ConstantContactError,
    ConstantContactNotFoundError,
    ConstantContactQuotaExceededError,
    ConstantContactRequestError,
    ConstantContactResponseError,
    ConstantContactServerError,
    ConstantContactThrottledError,
)
from airflow_provider_cc.hooks.limiter import limiter_for

if TYPE_CHECKING:
    from airflow_provider_cc.hooks.connection import ConnectionSettings
    from airflow_provider_cc.hooks.limiter import Slot

log = logging.getLogger(__name__)

OVER_QPS = "mashery.not.authorized.over.qps"
OVER_RATE_LIMIT = "mashery.not.authorized.over.ratelimit"
INACTIVE_KEY = "mashery.not.authorized.inactive"

_CHUNK = 64 * 1024
_ERROR_BODY_BYTES = 64 * 1024  # error bodies are read this far, no further
_OVER_QPS_WAIT = 0.5  # first over-qps wait before jitter: 0.5-1.0 s, then doubling

# Transient: worth a retry. Other RequestExceptions (a bad URL or header) are not.
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_RAW_READ_ERRORS = (urllib3.exceptions.HTTPError, OSError)  # reading ``response.raw`` directly


# ---- redaction -----------------------------------------------------------------------------------------------
# Shorter values are no secret, and masking them would garble every log line (Airflow's masker skips under 5).
MIN_SECRET_LENGTH = 4


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern matching each secret as is and in its URL-encoded forms, in any letter case (a server
    may echo ``%2b`` for ``%2B``, or upper-case what it echoes)."""
    forms = {form for secret in secrets if len(secret or "") >= MIN_SECRET_LENGTH
             for form in (secret, quote(secret, safe=""), quote_plus(secret), quote(secret))}
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)), re.IGNORECASE)


class _RedactSecrets(logging.Filter):
    """urllib3 logs request lines, query string included, at DEBUG: take the secrets out of them."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            new = set(secrets) - self._secrets
            if new:
                self._secrets |= new
                self._pattern = secret_pattern(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        pattern = self._pattern
        if pattern is not None:
            text = record.getMessage()
            redacted = pattern.sub("***", text)
            if redacted != text:
                record.msg, record.args = redacted, None
        return True


_REDACTOR = _RedactSecrets()
for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "urllib3.response"):
    logging.getLogger(_name).addFilter(_REDACTOR)


# ---- retry policy --------------------------------------------------------------------------------------------
def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number or an HTTP-date. Garbage and NaN give ``None``;
    negative values 0; infinity stays infinite (the policy caps every wait)."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; the one retry policy of the provider.

    :param max_retries: retries after the first attempt.
    :param backoff: first wait in seconds; doubles each retry.
    :param max_backoff: cap on one wait, Retry-After included.
    """

    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0

    def _doubling(self, base: float, retry: int) -> float:
        return min(self.max_backoff, base * 2.0 ** min(max(retry - 1, 0), 30))

    def wait(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        ceiling = self._doubling(self.backoff, retry)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def wait_over_qps(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait after an over-qps answer: about half a second, doubling, never in lockstep with
        other clients (a random share of the wait is added, also on top of a Retry-After)."""
        base = min(max(retry_after, 0.0), self.max_backoff) if retry_after is not None else \
            self._doubling(_OVER_QPS_WAIT, retry)
        return min(self.max_backoff, base + random.uniform(0, base or _OVER_QPS_WAIT / 2))


class ResponseShapeError(ValueError):
    """Raised by a ``check`` given to :meth:`Transport.get_json`: the answer lacks the expected shape.
    The transport retries it like an unreadable body, then fails with ``ConstantContactResponseError``."""


class _Retryable(Exception):
    """A failure worth another attempt, with a safe description and an optional server-given wait."""

    def __init__(self, reason: str, *, status: int | None = None, error_key: str | None = None,
                 retry_after: float | None = None, over_qps: bool = False,
                 final: type[ConstantContactError] = ConstantContactServerError):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.error_key = error_key
        self.retry_after = retry_after
        self.over_qps = over_qps
        self.final = final


def parse_error_body(text: str) -> tuple[str | None, str]:
    """``(error_key, error_message)`` from a v2 error body: a JSON array, an object, or plain text."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None, " ".join(text.split())[:300]
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        body = body[0]
    if isinstance(body, Mapping):
        key = body.get("error_key") or body.get("error")
        message = body.get("error_message") or body.get("error_description") or ""
        return (None if key is None else str(key)[:200]), " ".join(str(message).split())[:300]
    return None, " ".join(text.split())[:300]


# ---- deadline: a watchdog closes the socket of a request that runs past its timeout ------------------------
_current = threading.local()


class _Watch:
    """One request's deadline: at it, the watchdog shuts the in-use connection's socket, so no slow server
    holds a request longer."""

    __slots__ = ("_lock", "conn", "deadline", "done", "expired")

    def __init__(self, seconds: float) -> None:
        self.conn: Any = None
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self.done = False
        self._lock = threading.Lock()
        _WATCHDOG.arm(self)

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            # an answer that closes the connection (HTTP/1.0, "Connection: close") took the socket from ``sock``
            # while its body is still read from it: the socket the connection opened, then
            sock = getattr(self.conn, "sock", None) or getattr(self.conn, "opened_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with self._lock:
            self.done = True


class _Watchdog:
    """One daemon thread per process firing the watches whose deadline passed (a heap, earliest first)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, watch: _Watch) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():  # first use, or a forked child
                self._thread = threading.Thread(target=self._run, name="cc-request-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._heap[0][2] is watch:
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    heapq.heappop(self._heap)[2].fire()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_WATCHDOG = _Watchdog()


def _remembering(connection: type[Any]) -> type[Any]:
    class Remembering(connection):  # type: ignore[misc,valid-type]
        opened_sock: Any = None

        def connect(self) -> None:
            super().connect()
            self.opened_sock = self.sock

    Remembering.__name__ = f"Remembering{connection.__name__}"
    return Remembering


def _tracked(pool: type[Any]) -> type[Any]:
    class Tracked(pool):  # type: ignore[misc,valid-type]
        ConnectionCls = _remembering(pool.ConnectionCls)

        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            watch = getattr(_current, "watch", None)
            if watch is not None:
                watch.conn = conn
            return conn

    Tracked.__name__ = f"Tracked{pool.__name__}"
    return Tracked


_POOLS = {"http": _tracked(urllib3.HTTPConnectionPool), "https": _tracked(urllib3.HTTPSConnectionPool)}


class _Adapter(HTTPAdapter):
    """requests' adapter, with pools that tell the watchdog which connection a request uses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if manager.pool_classes_by_scheme.get("http") is urllib3.HTTPConnectionPool:  # not SOCKS
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` in lower case with the default port filled in; ``None`` if unusable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or {"http": 80, "https": 443}.get(scheme)


def new_session(url: str) -> requests.Session:
    """A keep-alive session whose requests the deadline watchdog can cut short, with the proxy and CA settings
    of the environment read once for ``url`` (not on every request, requests' default), asking only for the
    encodings the capped reader decodes. Redirects are never followed (every call passes
    ``allow_redirects=False``)."""
    session = requests.Session()
    adapter = _Adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(url))
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        session.verify = ca_bundle
    session.headers.update({"Accept": "application/json", "Accept-Encoding": "gzip, deflate"})
    return session


@dataclass(frozen=True)
class Answer:
    """One bounded exchange's answer.

    :param status: the HTTP status.
    :param headers: the answer's headers.
    :param body: the decoded body: at most the cap of a 200, the first 64 KiB of an error, empty for a redirect.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


def exchange(session: requests.Session, method: str, url: str, *, timeout: float, cap: int, oversize: str,
             what: str, slot: Slot | None = None, **kwargs: Any) -> Answer:
    """Send one request and read its answer, bounded as every request of the provider is: ``timeout`` bounds
    the whole exchange (connect, headers, body: the watchdog shuts the socket at the deadline), a 200's body is
    decoded in chunks and refused above ``cap`` bytes once decoded (no gzip bomb, no endless body is held),
    redirects are returned, never followed.

    :param session: from :func:`new_session` (its pools tell the watchdog which socket to cut).
    :param method: ``GET`` or ``POST``.
    :param timeout: seconds for the whole exchange.
    :param cap: the largest decoded 200 body accepted.
    :param oversize: the end of the message when the body is larger: ``"the answer is larger than {oversize}"``.
    :param what: a safe description for messages (never the URL).
    :param slot: the limiter's slot of this request, finished as soon as the answer's headers came.
    :param kwargs: passed on to ``session.request`` (params, data, auth, headers).
    :raises _Retryable: a network error, the deadline passed, an undecodable or unasked-for encoding.
    :raises ConstantContactResponseError: the body is larger than ``cap``.
    """
    watch = _Watch(timeout)
    _current.watch = watch
    deadline = watch.deadline
    response: requests.Response | None = None
    try:
        try:
            response = session.request(method, url, timeout=timeout, stream=True, allow_redirects=False,
                                       **kwargs)
        finally:
            if slot is not None:
                slot.finish()
        status = response.status_code
        if 300 <= status < 400:
            return Answer(status, response.headers, b"")
        if status == 200:
            body = _read(response, cap, deadline, timeout, lambda: _too_large(what, oversize))
        else:
            body = _read(response, _ERROR_BODY_BYTES, deadline, timeout, None)
        return Answer(status, response.headers, bytes(body))
    except (requests.RequestException, *_RAW_READ_ERRORS) as exc:
        if isinstance(exc, requests.RequestException) and not isinstance(exc, _NETWORK_ERRORS):
            raise ConstantContactError(f"{what}: request failed ({type(exc).__name__})") from None
        if watch.expired or time.monotonic() > deadline:
            raise _Retryable(f"no complete answer within the {timeout:g} s timeout") from None
        raise _Retryable(f"network error ({type(exc).__name__})") from None
    finally:
        watch.finish()
        _current.watch = None
        if response is not None:
            response.close()


def _too_large(what: str, oversize: str) -> None:
    raise ConstantContactResponseError(f"{what}: the answer is larger than {oversize}")


def _read(response: requests.Response, cap: int, deadline: float, timeout: float,
          too_large: Callable[[], None] | None) -> bytearray:
    """The decoded body, read in chunks: at most ``cap`` bytes are ever held, and the deadline holds. Past the
    cap: ``too_large()`` (which raises), or, without one, the first ``cap`` bytes (an error body)."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        decoder = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        decoder = zlib.decompressobj(47)  # gzip or zlib header, detected
    else:
        raise _Retryable(f"the answer came in an encoding that was not asked for ({encoding[:30]!r})",
                         status=response.status_code, final=ConstantContactResponseError)
    length = response.headers.get("Content-Length", "")
    if decoder is None and too_large is not None and length.isdigit() and int(length) > cap:
        too_large()
    body = bytearray()
    for chunk in response.raw.stream(_CHUNK, decode_content=False):
        if time.monotonic() > deadline:
            raise _Retryable(f"no complete answer within the {timeout:g} s timeout")
        while chunk:
            room = cap - len(body)
            if decoder is None:
                body += chunk[:room + 1]
                chunk = b""
            else:
                try:
                    body += decoder.decompress(chunk, room + 1)
                except zlib.error:
                    raise _Retryable(f"the {encoding} body cannot be decoded",
                                     status=response.status_code) from None
                chunk = decoder.unconsumed_tail
                if decoder.eof and decoder.unused_data.strip(b"\0"):  # a further gzip member
                    chunk, decoder = decoder.unused_data + chunk, zlib.decompressobj(47)
            if len(body) > cap:
                if too_large is None:
                    return body[:cap]
                too_large()
    if time.monotonic() > deadline:
        raise _Retryable(f"no complete answer within the {timeout:g} s timeout")
    return body


# ---- the transport -----------------------------------------------------------------------------------------------
class Transport:
    """Sends authenticated GETs to one Constant Contact host, throttled, bounded and retried.

    The v2 API authenticates with the api_key (query) and a fixed token; a subclass changes only how a
    request is authenticated and how error answers map to exceptions (:mod:`.transport_v3`).

    :param settings: the connection's checked settings.
    :param user_agent: the User-Agent header.
    :param sleep: how to wait between retries (tests may speed it up); the ``sleep`` attribute may be
        replaced, e.g. by a wait that ends early when the task is told to stop.
    """

    def __init__(self, settings: ConnectionSettings, *, user_agent: str = "airflow-provider-constant-contact",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = settings.base_url
        self._origin = _origin(self.base_url)
        self._pattern = secret_pattern(settings.secrets)
        _REDACTOR.add(settings.secrets)
        self.timeout = settings.timeout
        self.max_page_bytes = settings.max_page_bytes
        self.policy = RetryPolicy(max_retries=settings.max_retries, backoff=settings.backoff)
        self.limiter = limiter_for(self, settings.base_url, settings.api_key, settings.requests_per_second,
                                   settings.rate_limiter_url)
        self.sleep = sleep
        self.requests_sent = 0  # every request started, retries included (read by the account operator)
        self.session = new_session(self.base_url)
        self.session.headers["User-Agent"] = user_agent
        self._authenticate(settings)

    #: The API version, for messages.
    api_version = "v2"
    #: What a followed redirect would carry elsewhere, for its message.
    credentials = "the api_key"

    def _authenticate(self, settings: Any) -> None:
        """v2: the api_key on every request's query, the token in the Authorization header."""
        self.session.params = {"api_key": settings.api_key}  # type: ignore[assignment]
        self.session.headers["Authorization"] = f"Bearer {settings.token}"

    def _prepare(self, after: float | None) -> None:
        """Before the limiter's wait: make ready what an attempt needs, so no slot is held meanwhile (v3: a
        refresh that is due). ``after``: what :meth:`_unauthorized` returned for this request, if anything."""

    def _request_headers(self, after: float | None) -> dict[str, str] | None:
        """Headers of one attempt besides the session's, taken after the limiter's wait (v3: the access token
        valid now; after a 401, one from a refresh answered after ``after``)."""
        return None

    def _unauthorized(self, headers: dict[str, str] | None, failure: ConstantContactAuthError,
                      after: float | None) -> float | None:
        """A 401 to the attempt sent with ``headers``: ``None`` to fail with ``failure`` (v2: always), else the
        ``after`` to hand to the next attempt (v3: the 401's time, once), or raise a better error."""
        return None

    def close(self) -> None:
        """Close the keep-alive connections."""
        self.session.close()

    def redact(self, text: str) -> str:
        """Remove the api_key and token (plain or URL-encoded) from text that came from elsewhere."""
        return text if self._pattern is None else self._pattern.sub("***", text)

    def resolve(self, link: str, *, what: str) -> str:
        """Resolve a path or ``next_link`` against the host; refuse any other host."""
        url = urljoin(self.base_url + "/", link)
        if _origin(url) != self._origin:
            netloc = self.redact(urlsplit(url).netloc)[:120]
            raise ConstantContactError(
                f"{what}: the API returned a link to another host ({netloc!r}); refusing to send the credentials "
                "there")
        return url

    def get_json(self, url: str, params: Mapping[str, Any] | None = None, *, what: str,
                 check: Callable[[Any], Any] | None = None) -> Any:
        """GET ``url`` and decode its JSON body, retrying what is transient.

        :param url: absolute URL from :meth:`resolve`.
        :param params: query parameters besides ``api_key``.
        :param what: safe description for logs and errors (never the URL).
        :param check: applied to the decoded body; its result is returned. A :class:`ResponseShapeError`
            from it is retried like an unreadable body.
        """
        retry = 0
        after: float | None = None
        while True:
            self._prepare(after)
            slot = self.limiter.acquire(self.sleep)
            headers = self._request_headers(after)  # after the wait: no token ages in the limiter's queue
            self.requests_sent += 1
            try:
                return self._attempt(url, params, what, check, slot, headers)
            except ConstantContactAuthError as failure:
                if failure.status == 401:
                    unauthorized = self._unauthorized(headers, failure, after)
                    if unauthorized is not None:
                        after = unauthorized
                        continue
                raise
            except _Retryable as failure:
                if failure.over_qps:
                    self.limiter.penalise(slot)
                retry += 1
                if retry > self.policy.max_retries:
                    raise failure.final(
                        f"{what}: {failure.reason}; gave up after {retry} attempts",
                        status=failure.status, error_key=failure.error_key,
                    ) from None
                delay = (self.policy.wait_over_qps if failure.over_qps else self.policy.wait)(
                    retry, failure.retry_after)
                log.warning("%s: %s; retry %d of %d in %.1f s", what, failure.reason, retry,
                            self.policy.max_retries, delay)
                self.sleep(delay)

    def _attempt(self, url: str, params: Mapping[str, Any] | None, what: str,
                 check: Callable[[Any], Any] | None, slot: Slot, headers: dict[str, str] | None = None) -> Any:
        answer = exchange(self.session, "GET", url, params=params, headers=headers, timeout=self.timeout,
                          cap=self.max_page_bytes, what=what, slot=slot,
                          oversize=f"max_page_bytes ({self.max_page_bytes:,} bytes once decoded) and was not read "
                          "further. A page of 500 records is far smaller; raise the connection extra max_page_bytes "
                          "only if you trust the server")
        status = answer.status
        if status == 200:
            return self._decode(answer.body, check)
        if 300 <= status < 400:
            location = _origin(answer.headers.get("Location", "") or "")
            where = f" to {self.redact(location[0] + '://' + location[1])[:120]}" if location else ""
            raise ConstantContactRequestError(
                f"{what}: the API answered HTTP {status}, a redirect{where}. The provider does not follow "
                f"redirects (they would carry {self.credentials} elsewhere); check the connection's host",
                status=status)
        self._raise_for(status, answer.body.decode("utf-8", "replace"), answer.headers, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def _decode(self, body: bytes, check: Callable[[Any], Any] | None) -> Any:
        try:
            data = json.loads(body)
        except RecursionError:
            raise _Retryable("the response body is JSON nested too deeply to read", status=200,
                             final=ConstantContactResponseError) from None
        except ValueError:
            raise _Retryable("the response body is not valid JSON", status=200) from None
        if check is None:
            return data
        try:
            return check(data)
        except ResponseShapeError as exc:
            raise _Retryable(f"the answer is not a {self.api_version} page ({exc})", status=200,
                             final=ConstantContactResponseError) from None

    def _error(self, status: int, text: str, headers: Mapping[str, str]) -> tuple[str | None, str, float | None]:
        """``(error_key, "HTTP status key: message", Retry-After seconds)`` of an error answer, redacted."""
        key, message = parse_error_body(text)
        key = None if key is None else self.redact(key)
        message = self.redact(message)
        detail = f"HTTP {status}" + (f" {key}" if key else "") + (f": {message}" if message else "")
        return key, detail, parse_retry_after(headers.get("Retry-After"))

    def _raise_for(self, status: int, text: str, headers: Mapping[str, str], what: str) -> None:
        key, detail, retry_after = self._error(status, text, headers)
        if status == 429:
            raise _Retryable(f"throttled ({detail})", status=status, error_key=key,
                             retry_after=retry_after, final=ConstantContactThrottledError)
        if status >= 500:
            raise _Retryable(f"server error ({detail})", status=status, error_key=key, retry_after=retry_after)
        if status == 403 and key == OVER_QPS:
            raise _Retryable(f"over the key's requests-per-second limit ({detail})", status=status,
                             error_key=key, retry_after=retry_after, over_qps=True,
                             final=ConstantContactThrottledError)
        if status == 403 and key == OVER_RATE_LIMIT:
            raise ConstantContactQuotaExceededError(
                f"{what}: the api_key's daily request quota (10,000 calls a day) is spent ({detail}). It "
                "resets the next day; retry the task then, or ask Constant Contact for a higher quota.",
                status=status, error_key=key)
        if status == 401 or status == 403:
            hint = "the api_key is inactive or wrong" if status == 403 else "the access token is invalid or expired"
            raise ConstantContactAuthError(
                f"{what}: authentication failed, {hint} ({detail}). Check the Constant Contact connection.",
                status=status, error_key=key)
        if status == 404:
            raise ConstantContactNotFoundError(
                f"{what} was not found ({detail}). Check the id; deleted campaigns also answer 404.",
                status=status, error_key=key)
        raise ConstantContactRequestError(f"{what}: the API refused the request ({detail})",
                                          status=status, error_key=key)
