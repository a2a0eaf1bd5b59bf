"""Getting the first refresh token against the emulator's OAuth2 server: the device flow (approved through
the control endpoint, slow_down honoured, expiry), PKCE (the browser's redirect pasted back), and the login
command end to end, whose secrets reach no argument, output or log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import requests

from airflow_provider_cc.auth import flows
from airflow_provider_cc.auth.store import FileTokenStore, store_key
from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
from airflow_provider_cc.exceptions import ConstantContactTokenError
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
from tests.conftest import ROOT, V3_CONN_ENV


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
    start = oauth.v3.oauth.device_authorize
    oauth.v3.oauth.device_authorize = lambda form, base: (  # type: ignore[method-assign]
        lambda r: (r[0], {**r[1], "interval": 1}))(start(form, base))  # ...1 s: the client hears slow_down
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


def test_login_command_end_to_end_then_the_connection_pulls(oauth, monkeypatch, tmp_path):
    """``python -m airflow_provider_cc.auth login``: the device flow in a real process, the tokens in the
    store, a printed connection without any token; the hook built from it pulls. No secret in the command
    line, its output or the emulator's log."""
    directory = str(tmp_path / "tokens")
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_cc.auth", "login", "--client-id", oauth.v3.options.client_id,
         "--token-url", oauth.token_url, "--host", oauth.url, "--token-store", directory, "--contact-data"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=os.environ.copy())
    assert proc.stdout is not None
    first = proc.stdout.readline()
    approve_when_shown(oauth, [first])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    pasted = next(line for line in out.splitlines() if line.startswith("export AIRFLOW_CONN_"))
    shell = subprocess.run(["bash", "-c", pasted + f"\nprintenv {V3_CONN_ENV}"], capture_output=True, text=True,
                           timeout=120, check=True)
    connection = json.loads(shell.stdout)
    assert "refresh_token" not in connection["extra"] and "password" not in connection
    monkeypatch.setenv(V3_CONN_ENV, shell.stdout.strip())
    store = FileTokenStore(directory, store_key(connection["extra"]["oauth_chain"], oauth.v3.options.client_id))
    state = store.read()
    assert state is not None and oauth.v3.oauth.chain_intact(state.refresh_token)
    hook = ConstantContactV3Hook()
    assert hook.get_campaign(next(iter(oauth.v3.view.campaigns)))
    secrets = oauth.v3.oauth.refresh_tokens() | oauth.v3.oauth.seen_tokens
    everything = first + out + err + json.dumps(oauth.requests)
    assert not [s for s in secrets if s in everything]
    assert hook.tokens.token_calls == 0, "the stored access token was used"


def test_refresh_command_refreshes_now(v3):
    ConstantContactV3Hook().get_campaign(next(iter(v3.v3.view.campaigns)))
    time.sleep(1.1)
    proc = subprocess.run([sys.executable, "-m", "airflow_provider_cc.auth", "refresh"], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tokens fresh" in proc.stdout
    assert [c[2] for c in v3.v3.oauth.token_calls if c[1] == "refresh_token"] == ["ok", "ok"]


