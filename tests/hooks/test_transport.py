"""The transport against hostile local servers over real HTTP: redirects, secrets echoed back, plain http,
dripping servers, gzip bombs and huge pages, odd Retry-After values, JSON nested too deeply."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import zlib
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import pytest

from airflow_provider_cc.exceptions import (
    ConstantContactError,
    ConstantContactInputError,
    ConstantContactRequestError,
    ConstantContactResponseError,
    ConstantContactServerError,
)
from airflow_provider_cc.hooks.connection import ConnectionSettings
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from airflow_provider_cc.hooks.transport import RetryPolicy, Transport, parse_retry_after
from tests.hooks.conftest import PAGE_PATH, HostileServer, page, record

if TYPE_CHECKING:
    from tests.hooks.conftest import HostileHandler

SUMMARY = "/v2/emailmarketing/campaigns/1/tracking/reports/summary"


def summary(hook: ConstantContactHook | None = None) -> Any:
    return (hook or ConstantContactHook()).get_campaign_summary(1)


def counts(sends: int) -> dict[str, int]:
    """A campaign summary as the API sends it (every counter: one missing is a malformed answer)."""
    return {"sends": sends, "opens": 0, "clicks": 0, "forwards": 0, "unsubscribes": 0, "bounces": 0}


# ---- redirects ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(hostile, status):
    evil = HostileServer(lambda h, n: h.answer(200, {"sends": 666}))
    threading.Thread(target=evil.serve_forever, args=(0.05,), daemon=True).start()
    try:
        hostile.respond = lambda h, n: h.answer(status, b"", {"Location": f"{evil.url}{SUMMARY}"})
        with pytest.raises(ConstantContactRequestError, match=f"HTTP {status}, a redirect to http://127.0.0.1") \
                as info:
            summary()
    finally:
        evil.shutdown()
        evil.server_close()
    assert evil.seen == [], "nothing, and no api_key, went to the other address"
    assert len(hostile.seen) == 1 and info.value.status == status


# ---- secrets echoed back by the server ----------------------------------------------------------------------------
NASTY_KEY = "k+y/z=w&v%x y"
NASTY_TOKEN = "t+k/n=&%20"


def _echo(h: HostileHandler, n: int) -> None:
    """Echo the request line and the Authorization header in every field a v2 or OAuth error has."""
    request = h.path
    auth = h.headers.get("Authorization", "")
    if h.path.startswith(SUMMARY):
        if n == 1:
            h.answer(500, [{"error_key": request, "error_message": f"retry {auth}"}])
        elif n == 2:
            h.answer(401, {"error": f"invalid_token {auth} {request}", "error_description": request.lower()})
        return
    if "next=" in h.path:
        h.answer(400, [{"error_key": f"bad.{request}", "error_message": f"{auth} {request.upper()}"}])
        return
    h.answer(200, page([], f"https://u:{quote_plus(NASTY_KEY)}@evil.example.com/v2/x?next=1")
             if h.path.startswith("/v2/contacts") else page([], f"{PAGE_PATH}?next=a"))


def test_echoed_secrets_never_leak_even_url_encoded(hostile, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    hostile.respond = _echo
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT",
                       hostile.connection(api_key=NASTY_KEY, token=NASTY_TOKEN, max_retries=1))
    hook = ConstantContactHook()
    errors: list[ConstantContactError] = []
    for call in (lambda: summary(hook), lambda: list(hook.iter_campaign_tracking(1, "sends")),
                 lambda: list(hook.iter_contact_tracking(1, "all"))):
        with pytest.raises(ConstantContactError) as info:
            call()
        errors.append(info.value)
    assert [type(e).__name__ for e in errors] == ["ConstantContactAuthError", "ConstantContactRequestError",
                                                  "ConstantContactError"]
    assert "evil.example.com" in str(errors[2])
    texts = [f"{e} {e!r} {e.error_key}" for e in errors] + [caplog.text, *capsys.readouterr()]
    assert "retry 1 of 1" in caplog.text and "GET /v2" in caplog.text, "the warnings and urllib3 lines were seen"
    everything = "\n".join(texts)
    forms = {NASTY_KEY, NASTY_TOKEN, quote(NASTY_KEY, safe=""), quote_plus(NASTY_KEY), quote_plus(NASTY_TOKEN),
             quote(NASTY_KEY, safe="").lower(), quote_plus(NASTY_KEY).lower()}
    for form in forms:
        assert form not in everything and form.lower() not in everything.lower(), form


# ---- plain http ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["http://api.example.com", "http://10.0.0.5:8080", "HTTP://Api.Example.com/"])
def test_plain_http_to_a_remote_host_is_refused_before_any_request(hostile, monkeypatch, host):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps(
        {"conn_type": "constant_contact", "host": host, "password": "t", "extra": {"api_key": "k"}}))
    with pytest.raises(ConstantContactInputError, match="plain http to a non-local host.*allow_insecure_http"):
        summary()


@pytest.mark.parametrize("host", ["http://localhost:1", "http://127.0.0.2:1", "http://[::1]:1",
                                  "http://api.example.com"])
def test_loopback_or_an_explicit_opt_in_allows_http(host):
    extra = {"allow_insecure_http": "true"} if "example" in host else {}
    settings = ConnectionSettings(base_url=host, api_key="k", token="t", **extra)
    assert settings.base_url.startswith("http://")


# ---- a whole-request deadline -------------------------------------------------------------------------------------
def _drip(body: bytes, *, headers_too: bool = False) -> Any:
    def respond(h: HostileHandler, n: int) -> None:
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode())
        data = head + body if headers_too else body
        if not headers_too:
            h.wfile.write(head)
        for i in range(len(data)):  # one byte every 0.25 s: each read succeeds, the whole never ends in time
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()
            time.sleep(0.25)
        h.close_connection = True

    return respond


@pytest.mark.parametrize("headers_too", [False, True])
def test_a_dripping_server_fails_after_the_timeout_then_retries(hostile, monkeypatch, headers_too):
    hostile.respond = _drip(json.dumps({"sends": 1, "opens": 2}).encode(), headers_too=headers_too)
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", hostile.connection(timeout=1, max_retries=1))
    with pytest.raises(ConstantContactServerError, match=r"no complete answer within the 1 s timeout; gave up "
                                                         r"after 2 attempts"):
        summary()
    assert len(hostile.seen) == 2


def test_a_slow_but_steady_answer_within_the_timeout_is_read(hostile, monkeypatch):
    body = json.dumps(counts(1)).encode()
    hostile.respond = lambda h, n: (time.sleep(0.3), h.answer(200, body))  # type: ignore[func-returns-value]
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", hostile.connection(timeout=5))
    assert summary() == counts(1)


# ---- size caps ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """About 0.3 MB on the wire, 256 MiB unpacked."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    return b"".join([*(packer.compress(block) for _ in range(256)), packer.flush()])


def test_a_gzip_bomb_fails_at_the_cap_without_retrying(hostile, gzip_bomb):
    hostile.respond = lambda h, n: h.answer(200, gzip_bomb, {"Content-Encoding": "gzip"})
    with pytest.raises(ConstantContactResponseError, match=r"larger than max_page_bytes \(67,108,864 bytes"):
        list(ConstantContactHook().iter_campaign_tracking(1, "sends"))
    assert len(hostile.seen) == 1, "a page above the cap is not fetched again"


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_page_above_max_page_bytes_fails_clearly(hostile, monkeypatch, encoding):
    records = [record(campaign_id="1", contact_id=str(i), email_address="x" * 200) for i in range(2000)]
    body = json.dumps(page(records)).encode()
    headers = {}
    if encoding:
        body, headers = gzip.compress(body), {"Content-Encoding": "gzip"}
    hostile.respond = lambda h, n: h.answer(200, body, headers)
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", hostile.connection(max_page_bytes=100_000))
    with pytest.raises(ConstantContactResponseError, match=r"larger than max_page_bytes \(100,000 bytes"):
        list(ConstantContactHook().iter_campaign_tracking(1, "sends"))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", hostile.connection())
    assert len(list(ConstantContactHook().iter_campaign_tracking(1, "sends"))) == 2000, "the default cap fits it"


def test_gzip_and_deflate_pages_are_decoded(hostile):
    body = json.dumps(page([record(campaign_id=1, contact_id=2)])).encode()
    answers = [(gzip.compress(body), "gzip"), (zlib.compress(body), "deflate"),
               (gzip.compress(body[:20]) + gzip.compress(body[20:]), "gzip")]  # two gzip members
    hostile.respond = lambda h, n: h.answer(200, answers[n - 1][0], {"Content-Encoding": answers[n - 1][1]})
    hook = ConstantContactHook()
    for _ in answers:
        assert list(hook.iter_campaign_tracking(1, "sends")) == [record(campaign_id="1", contact_id="2")]
    assert hostile.headers[0]["Accept-Encoding"] == "gzip, deflate"


# ---- Retry-After ---------------------------------------------------------------------------------------------------
def test_a_nan_retry_after_gives_a_normal_retry(hostile):
    answers = [(503, b"busy", {"Retry-After": "nan"}), (200, counts(3), {})]
    hostile.respond = lambda h, n: h.answer(*answers[min(n, 2) - 1])
    assert summary() == counts(3)
    assert len(hostile.seen) == 2


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("nan", 0.005, 0.01),  # ignored: the policy's own backoff (0.01 s first retry in these tests)
        ("garbage", 0.005, 0.01),
        ("inf", 60, 60),  # capped
        ("1e400", 60, 60),
        ("-5", 0, 0),
        ("2", 2, 2),
        ("HTTP-DATE+30", 25, 30),
        ("HTTP-DATE-30", 0, 0),
        ("Sun, 99 Foo 2024 99:99:99 GMT", 0.005, 0.01),
    ],
)
def test_retry_after_values_give_a_sane_bounded_wait(hostile, value, low, high):
    if value.startswith("HTTP-DATE"):
        value = formatdate(time.time() + int(value[9:]), usegmt=True)
    answers = [(503, b"busy", {"Retry-After": value}), (200, {"sends": 3}, {})]
    hostile.respond = lambda h, n: h.answer(*answers[min(n, 2) - 1])
    waits: list[float] = []
    settings = ConnectionSettings(base_url=hostile.url, api_key="k", token="t", requests_per_second=0, backoff=0.01)
    transport = Transport(settings, sleep=waits.append)
    url = transport.resolve(SUMMARY, what="summary")
    assert transport.get_json(url, what="summary") == {"sends": 3}
    assert len(waits) == 1 and low <= waits[0] <= high, waits


def test_parse_retry_after():
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("nan") is None
    assert parse_retry_after("-1") == 0 and parse_retry_after(" 7 ") == 7 and parse_retry_after("inf") == float("inf")
    assert 8 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10  # type: ignore[operator]
    assert RetryPolicy().wait(1, float("inf")) == 60


# ---- bodies the JSON decoder cannot take -----------------------------------------------------------------------
def test_json_nested_too_deeply_is_a_clear_error(hostile):
    deep = b"[" * 100_000 + b"]" * 100_000
    hostile.respond = lambda h, n: h.answer(200, deep)
    with pytest.raises(ConstantContactResponseError, match="nested too deeply.*gave up after 3 attempts"):
        list(ConstantContactHook().iter_campaign_tracking(1, "sends"))
    hostile.respond = lambda h, n: h.answer(400, deep)
    with pytest.raises(ConstantContactRequestError, match="HTTP 400"):
        summary()


def test_an_unasked_content_encoding_is_refused(hostile):
    hostile.respond = lambda h, n: h.answer(200, b"\x00\x01", {"Content-Encoding": "br"})
    with pytest.raises(ConstantContactResponseError, match="encoding that was not asked for"):
        summary()
