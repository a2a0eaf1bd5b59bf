"""Getting the first refresh token against the emulator's OAuth2 server: the device flow (approved through
the control endpoint, slow_down honoured, expiry), PKCE (the browser's redirect pasted back), and the login
command end to end, whose secrets reach no argument, output or log."""

from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from airflow_provider_cc.auth import flows
from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
from airflow_provider_cc.exceptions import ConstantContactTokenError


@pytest.fixture
def oauth():
    with Emulator(DataConfig(campaigns=1, contacts=20, activities=10),
                  v3=V3Options(device_interval=1, token_calls_per_second=0)) as emu:
        yield emu


def approve_when_shown(emu: Emulator, shown: list[str], deny: bool = False, after: float = 1.5) -> threading.Thread:
    """The person at the browser: reads the code the flow showed, approves it a little later."""

    def act() -> None:
        for _ in range(200):
            if shown:
                code = re.search(r"code ([A-F0-9]{4}-[A-F0-9]{4})", shown[0])
                time.sleep(after)
                requests.post(f"{emu.url}/_emulator/oauth/device", json={"user_code": code.group(1), "deny": deny},
                              timeout=10)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def announce(emu: Emulator, **changes: Any) -> None:
    """The emulator's device authorization answers with ``changes`` (a value ``None``: that key left out)."""
    start = emu.v3.oauth.device_authorize

    def patched(*args: Any) -> Any:
        status, body = start(*args)
        return status, {k: v for k, v in {**body, **changes}.items() if v is not None}

    emu.v3.oauth.device_authorize = patched  # type: ignore[method-assign]


def test_the_device_flow_polls_until_approved(oauth):
    shown: list[str] = []
    waits: list[float] = []
    approver = approve_when_shown(oauth, shown)

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    answer = flows.device_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), show=shown.append,
                               sleep=sleep)
    approver.join(10)
    assert oauth.v3.oauth.chain_intact(answer["refresh_token"])
    assert "/_emulator/oauth/device?user_code=" in shown[0]
    outcomes = [c[2] for c in oauth.v3.oauth.token_calls]
    assert "authorization_pending" in outcomes and outcomes[-1] == "ok"
    assert all(w >= 1 for w in waits), "polled at the server's interval"


def test_the_device_flow_slows_down_when_told_and_reports_a_denial(oauth):
    oauth.v3.oauth.device_interval = 3  # the server enforces 3 s but announces...
    announce(oauth, interval=1)  # ...1 s: the client hears slow_down
    shown: list[str] = []
    approve_when_shown(oauth, shown, deny=True, after=3.5)
    waits: list[float] = []
    with pytest.raises(ConstantContactTokenError, match="access_denied"):
        flows.device_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), show=shown.append,
                          sleep=lambda s: (waits.append(s), time.sleep(min(s, 1.0))))
    assert "slow_down" in [c[2] for c in oauth.v3.oauth.token_calls]
    assert waits[-1] >= 1 + flows.SLOW_DOWN_STEP, "each slow_down adds 5 s to the interval"


def test_the_device_flow_gives_up_when_the_code_expires(oauth):
    oauth.v3.oauth.device_lifetime = 1.5
    with pytest.raises(ConstantContactTokenError, match="expired"):
        flows.device_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), show=lambda _: None,
                          sleep=time.sleep)


def test_the_device_flow_checks_the_codes_lifetime_before_each_wait(oauth):
    """A server asking for an interval of 1e9 s: no wait is longer than what is left of the code's life (nor
    than MAX_INTERVAL), and the flow gives up when the code expires."""
    announce(oauth, interval=1e9, expires_in=2)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(min(seconds, 0.5))

    with pytest.raises(ConstantContactTokenError, match="expired before it was approved"):
        flows.device_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), show=lambda _: None,
                          sleep=sleep)
    assert waits and max(waits) <= 2, waits


def test_slow_down_and_throttling_never_raise_the_interval_past_the_cap(oauth, monkeypatch):
    monkeypatch.setattr(flows, "MAX_INTERVAL", 2.0)
    oauth.v3.oauth.device_interval = 30  # the server enforces 30 s but announces 1 s: slow_down on every poll
    announce(oauth, interval=1, expires_in=4)
    waits: list[float] = []
    with pytest.raises(ConstantContactTokenError, match="expired"):
        flows.device_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), show=lambda _: None,
                          sleep=lambda s: (waits.append(s), time.sleep(min(s, 0.5))))
    assert "slow_down" in [c[2] for c in oauth.v3.oauth.token_calls]
    assert max(waits) <= 2.0, waits


class DripServer(ThreadingHTTPServer):
    """An authorization server whose device authorization is correct and whose every poll answer drips, one
    byte at a time; it records whether a poll answer was ever sent whole."""

    daemon_threads = True

    def __init__(self, start: dict[str, Any], pause: float = 0.2) -> None:
        self.start_answer = start
        self.pause = pause
        self.polls: list[str] = []  # "whole" or "cut" per poll answer
        super().__init__(("127.0.0.1", 0), DripHandler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/oauth2/default/v1/token"


class DripHandler(BaseHTTPRequestHandler):
    server: DripServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/device/authorize"):
            body = json.dumps(self.server.start_answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = json.dumps({"error": "authorization_pending"}).encode() + b" " * 40
        try:
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(self.server.pause)
        except OSError:
            self.server.polls.append("cut")
            return
        self.server.polls.append("whole")


def test_a_dripping_poll_is_cut_at_the_codes_deadline():
    """Each poll is bounded as a whole (not per read): an answer dripping a byte every 0.2 s (12 s in all) is
    given up when the code's 2-s life ends, and the flow says so."""
    server = DripServer({"device_code": "dc", "user_code": "AB-CD", "verification_uri": "https://x.example/",
                         "interval": 0.2, "expires_in": 2})
    try:
        with pytest.raises(ConstantContactTokenError, match="expired before it was approved.*no complete answer"):
            flows.device_flow(server.token_url, "client", flows.scopes(), show=lambda _: None, sleep=time.sleep)
        for _ in range(100):  # the server notices the closed socket at its next write
            if server.polls:
                break
            time.sleep(0.1)
        assert server.polls and "whole" not in server.polls, server.polls
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("field", "value"), [("interval", -1), ("interval", "NaN"), ("interval", "soon"),
                                              ("interval", 0), ("interval", True), ("interval", [5]),
                                              ("expires_in", "never"), ("expires_in", -5), ("expires_in", "inf")])
def test_a_malformed_interval_or_lifetime_is_a_clear_error(oauth, field, value):
    announce(oauth, **{field: value})
    oauth.v3.oauth.device_lifetime = 3  # the server's own clock ends any polling (bounded without the fix too)
    with pytest.raises(ConstantContactTokenError, match=f"answered {field}=.*not a positive number of seconds"):
        flows.device_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), show=lambda _: None,
                          sleep=lambda s: time.sleep(min(max(float(s), 0.0), 0.1)))


def test_terminal_escapes_from_the_server_are_shown_escaped(oauth):
    announce(oauth, verification_uri_complete="https://x.example/\x1b]0;pwned\x07\x1b[2J\u202e",
             user_code="\x1b[31mRED\x9b")
    oauth.v3.oauth.device_lifetime = 1
    shown: list[str] = []
    with pytest.raises(ConstantContactTokenError):
        flows.device_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), show=shown.append,
                          sleep=time.sleep)
    assert not [c for c in shown[0] if unicodedata.category(c).startswith("C") or c == "\u202e"], shown
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in shown[0] and "\\x1b[31mRED" in shown[0]


def test_a_refusal_is_shown_escaped_and_redacted():
    exc = flows._refused("the device flow", 400, {"error": "bad\x1b[2J", "error_description": "dc-secret-1 \x07"},
                         "dc-secret-1")
    assert "\x1b" not in str(exc) and "\x07" not in str(exc) and "dc-secret-1" not in str(exc)
    assert "\\x1b[2J" in str(exc) and "***" in str(exc)


def test_a_refusal_in_the_apis_error_form_names_its_error(oauth):
    """A 429 whose body is the API's form (``error_key``/``error_message``), not OAuth2's: the error says which."""
    oauth.arm("POST /oauth2/default/v1/device/authorize", "quota")
    with pytest.raises(ConstantContactTokenError, match=r"device authorization refused \(HTTP 429 quota_exceeded: "
                                                        r"Limit Exceeded\)"):
        flows.device_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), show=lambda _: None,
                          sleep=time.sleep)


def device_flow_by_hand(emu: Emulator, form_auth: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
    """A confidential client's device flow and one refresh, authenticated as given (the form's
    client_id/client_secret, or HTTP Basic): what any client of an RFC 6749 server may send."""
    base = emu.token_url.rsplit("/", 1)[0]
    start = requests.post(f"{base}/device/authorize", data={"scope": flows.scopes(), **form_auth}, auth=basic,
                          timeout=10)
    assert start.status_code == 200, start.text
    requests.post(f"{emu.url}/_emulator/oauth/device", json={"user_code": start.json()["user_code"]}, timeout=10)
    answer = requests.post(emu.token_url, data={"grant_type": flows.DEVICE_GRANT,
                                                "device_code": start.json()["device_code"], **form_auth},
                           auth=basic, timeout=10)
    assert answer.status_code == 200, answer.text
    refreshed = requests.post(emu.token_url, data={"grant_type": "refresh_token", **form_auth,
                                                   "refresh_token": answer.json()["refresh_token"]},
                              auth=basic, timeout=10)
    assert refreshed.status_code == 200, refreshed.text
    return refreshed.json()


def test_the_emulator_takes_the_client_secret_in_basic_or_in_the_form(oauth):
    """RFC 6749 §2.3.1: both client-authentication forms work for every grant; a wrong secret in either is
    invalid_client, and both forms at once are refused."""
    cid, secret = oauth.v3.options.client_id, oauth.v3.options.client_secret
    for form_auth, basic in (({}, (cid, secret)), ({"client_id": cid, "client_secret": secret}, None)):
        assert oauth.v3.oauth.chain_intact(device_flow_by_hand(oauth, form_auth, basic)["refresh_token"])
    for form_auth, basic in (({}, (cid, "wrong")), ({"client_id": cid, "client_secret": "wrong"}, None)):
        reply = requests.post(f"{oauth.token_url.rsplit('/', 1)[0]}/device/authorize",
                              data={"scope": flows.scopes(), **form_auth}, auth=basic, timeout=10)
        assert (reply.status_code, reply.json()["error"]) == (401, "invalid_client")
    both = requests.post(oauth.token_url, data={"grant_type": "refresh_token", "refresh_token": "x",
                                                "client_secret": secret}, auth=(cid, secret), timeout=10)
    assert both.json()["error"] == "invalid_request"


def test_a_confidential_clients_device_flow_authenticates_with_basic(oauth):
    """What the login command sends for --confidential: the secret as HTTP Basic, also to the device
    authorization (it failed with invalid_client there)."""
    shown: list[str] = []
    approve_when_shown(oauth, shown, after=0.2)
    answer = flows.device_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), show=shown.append,
                               client_secret=oauth.v3.options.client_secret)
    assert oauth.v3.oauth.chain_intact(answer["refresh_token"])


def browser(url: str) -> str:
    """What a browser does with the authorize URL: the user approves, the server redirects."""
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    return response.headers["Location"]


def test_pkce_flow_exchanges_the_pasted_redirect(oauth):
    shown: list[str] = []

    def read(prompt: str) -> str:
        url = shown[0].splitlines()[-1]
        assert "scope=campaign_data+offline_access+contact_data" in url and "code_challenge_method=S256" in url
        return browser(url)

    answer = flows.pkce_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(contact_data=True),
                             "https://localhost", read=read, show=shown.append)
    assert oauth.v3.oauth.chain_intact(answer["refresh_token"]) and "contact_data" in answer["scope"]


def test_pkce_refuses_a_foreign_redirect_and_a_wrong_verifier(oauth):
    with pytest.raises(ConstantContactTokenError, match="state does not match"):
        flows.pkce_flow(oauth.token_url, oauth.v3.options.client_id, flows.scopes(), "https://localhost",
                        read=lambda _: "https://localhost/?code=abc&state=someone-elses", show=lambda _: None)
    verifier, challenge = flows.pkce_pair()
    code = flows.code_from(browser(flows.authorize_url(flows.endpoint_of(oauth.token_url, "authorize"),
                                                       oauth.v3.options.client_id, "https://localhost",
                                                       flows.scopes(), "s", challenge)), "s")
    reply = requests.post(oauth.token_url, timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": "https://localhost",
        "code_verifier": verifier + "x", "client_id": oauth.v3.options.client_id})
    assert reply.json()["error"] == "invalid_grant", "the server checks the verifier"
