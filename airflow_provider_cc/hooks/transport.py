"""HTTP transport for the v2 API: one keep-alive session, the throttle, the retry policy, error mapping.

Nothing here logs or raises a URL: the api_key rides in the query string.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from airflow_provider_cc.exceptions import (
    ConstantContactAuthError,
    ConstantContactError,
    ConstantContactNotFoundError,
    ConstantContactQuotaExceededError,
    ConstantContactRequestError,
    ConstantContactServerError,
    ConstantContactThrottledError,
)

log = logging.getLogger(__name__)

OVER_QPS = "mashery.not.authorized.over.qps"
OVER_RATE_LIMIT = "mashery.not.authorized.over.ratelimit"
INACTIVE_KEY = "mashery.not.authorized.inactive"

_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class _RedactSecrets(logging.Filter):
    """urllib3 logs request lines, query string included, at DEBUG: take the secrets out of them."""

    secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            if any(s in text for s in self.secrets):
                for secret in self.secrets:
                    text = text.replace(secret, "***")
                record.msg, record.args = text, None
        return True


_REDACTOR = _RedactSecrets()
logging.getLogger("urllib3.connectionpool").addFilter(_REDACTOR)


class RateLimiter:
    """Spaces request starts at least ``1 / rate`` seconds apart.

    One limiter is shared by every hook using the same host and api_key in a process, so parallel
    threads cannot add up past the key's limit. Across worker processes, size an Airflow pool.
    """

    # A 2 % margin keeps jitter on the wire from putting a fifth request into the server's one-second window.
    SAFETY = 1.02
    _shared: dict[str, RateLimiter] = {}
    _shared_lock = threading.Lock()

    def __init__(self, rate: float) -> None:
        self.interval = self.SAFETY / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, identity: str, rate: float) -> RateLimiter:
        """The process-wide limiter for ``identity`` (hashed, so no secret is kept as a key)."""
        key = hashlib.sha256(f"{identity}|{rate}".encode()).hexdigest()
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(rate)
            return cls._shared[key]

    def acquire(self) -> None:
        """Wait until the next request may start."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


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

    def wait(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class _Retryable(Exception):
    """A failure worth another attempt, with a safe description and an optional server-given wait."""

    def __init__(self, reason: str, *, status: int | None = None, error_key: str | None = None,
                 retry_after: float | None = None, final: type[ConstantContactError] = ConstantContactServerError):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.error_key = error_key
        self.retry_after = retry_after
        self.final = final


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def parse_error_body(text: str) -> tuple[str | None, str]:
    """``(error_key, error_message)`` from a v2 error body: a JSON array, an object, or plain text."""
    try:
        body = json.loads(text)
    except ValueError:
        return None, " ".join(text.split())[:200]
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        body = body[0]
    if isinstance(body, Mapping):
        key = body.get("error_key") or body.get("error")
        message = body.get("error_message") or body.get("error_description") or ""
        return (None if key is None else str(key)), str(message)
    return None, " ".join(text.split())[:200]


class Transport:
    """Sends authenticated GETs to one Constant Contact host, throttled and retried.

    :param base_url: scheme and host, e.g. ``https://api.constantcontact.com``.
    :param api_key: sent as the ``api_key`` query parameter on every request.
    :param token: sent as ``Authorization: Bearer``.
    :param timeout: seconds per request (connect and read).
    :param requests_per_second: client-side ceiling; 0 turns throttling off.
    :param policy: the retry policy.
    :param user_agent: the User-Agent header.
    :param sleep: how to wait between retries (tests may speed it up).
    """

    def __init__(self, base_url: str, api_key: str, token: str, *, timeout: float = 60.0,
                 requests_per_second: float = 4.0, policy: RetryPolicy | None = None,
                 user_agent: str = "airflow-provider-constant-contact",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)[:2]
        self._secrets = tuple(s for s in (api_key, token) if s)
        _REDACTOR.secrets.update(self._secrets)
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.limiter = RateLimiter.shared(f"{self.base_url}|{api_key}", requests_per_second)
        self._sleep = sleep
        self.session = requests.Session()
        # Read proxy and CA settings from the environment once, not on every request (requests' default).
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            self.session.verify = ca_bundle
        self.session.params = {"api_key": api_key}  # type: ignore[assignment]
        self.session.headers.update({
            "Accept": "application/json",
            "Authorization": f"Bearer {token}",
            "User-Agent": user_agent,
        })

    def close(self) -> None:
        """Close the keep-alive connections."""
        self.session.close()

    def redact(self, text: str) -> str:
        """Remove the api_key and token from text that came from elsewhere (server bodies, exceptions)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def resolve(self, link: str, *, what: str) -> str:
        """Resolve a path or ``next_link`` against the host; refuse any other host."""
        url = urljoin(self.base_url + "/", link)
        if urlsplit(url)[:2] != self._origin:
            raise ConstantContactError(
                f"{what}: the API returned a link to another host ({urlsplit(url).netloc!r}); refusing to "
                "send the credentials there"
            )
        return url

    def get_json(self, url: str, params: Mapping[str, Any] | None = None, *, what: str) -> Any:
        """GET ``url`` and decode its JSON body, retrying what is transient.

        :param url: absolute URL from :meth:`resolve`.
        :param params: query parameters besides ``api_key``.
        :param what: safe description for logs and errors (never the URL).
        """
        retry = 0
        while True:
            self.limiter.acquire()
            try:
                return self._attempt(url, params, what)
            except _Retryable as failure:
                retry += 1
                if retry > self.policy.max_retries:
                    raise failure.final(
                        f"{what}: {failure.reason}; gave up after {retry} attempts",
                        status=failure.status, error_key=failure.error_key,
                    ) from None
                delay = self.policy.wait(retry, failure.retry_after)
                log.warning("%s: %s; retry %d of %d in %.1f s", what, failure.reason, retry,
                            self.policy.max_retries, delay)
                self._sleep(delay)

    def _attempt(self, url: str, params: Mapping[str, Any] | None, what: str) -> Any:
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
            if response.status_code == 200:
                try:
                    return json.loads(response.content)
                except ValueError:
                    raise _Retryable("the response body is not valid JSON", status=200) from None
        except _NETWORK_ERRORS as exc:
            raise _Retryable(f"network error ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise ConstantContactError(f"{what}: request failed ({type(exc).__name__})") from None
        self._raise_for(response, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        key, message = parse_error_body(response.text)
        message = self.redact(message)
        detail = f"HTTP {status}" + (f" {key}" if key else "") + (f": {message}" if message else "")
        if status == 429:
            raise _Retryable(f"throttled ({detail})", status=status, error_key=key,
                             retry_after=_retry_after(response), final=ConstantContactThrottledError)
        if status >= 500:
            raise _Retryable(f"server error ({detail})", status=status, error_key=key,
                             retry_after=_retry_after(response))
        if status == 403 and key == OVER_QPS:
            # Mashery counts per second: about a second is what it asks for.
            raise _Retryable(f"over the key's requests-per-second limit ({detail})", status=status,
                             error_key=key, retry_after=_retry_after(response) or 1.0,
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
