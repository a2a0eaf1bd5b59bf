"""Logging in to the emulator by hand: the banner names both APIs and prints the login command; the device
flow's verification URL is a page a person can open (it was a 403 "Account Inactive"), whose Approve button
lets the login command finish; its control endpoint takes JSON."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading

import requests

from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
from airflow_provider_cc.emulator.oauth import DEVICE_GRANT
from tests.conftest import ROOT

CLI = [sys.executable, "-u", "-m", "airflow_provider_cc.emulator"]


def start_device_flow(emu: Emulator) -> dict[str, str]:
    answer = requests.post(f"{emu.url}/oauth2/default/v1/device/authorize", timeout=30, data={
        "client_id": emu.v3.options.client_id, "scope": "campaign_data offline_access"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def poll(emu: Emulator, device_code: str) -> requests.Response:
    return requests.post(emu.token_url, timeout=30, data={
        "client_id": emu.v3.options.client_id, "grant_type": DEVICE_GRANT, "device_code": device_code})


def test_the_verification_url_is_a_page_whose_approve_button_approves():
    options = V3Options(device_interval=0, token_calls_per_second=0)
    with Emulator(DataConfig(campaigns=1, contacts=5, activities=5), v3=options) as emu:
        start = start_device_flow(emu)
        page = requests.get(start["verification_uri_complete"], timeout=30)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), page.text[:300]
        assert f'value="{start["user_code"]}"' in page.text and 'value="approve"' in page.text
        assert re.search(r'<form method="post">', page.text), "the buttons post the form back to the page"
        assert poll(emu, start["device_code"]).json()["error"] == "authorization_pending", "opening is not approving"

        # What the browser sends when the person presses Approve (the form, url-encoded).
        pressed = requests.post(start["verification_uri_complete"], timeout=30,
                                data={"user_code": start["user_code"].lower(), "decision": "approve"})
        assert pressed.status_code == 200 and "Approved" in pressed.text
        assert "access_token" in poll(emu, start["device_code"]).json()
        again = requests.post(start["verification_uri"], timeout=30,
                              data={"user_code": start["user_code"], "decision": "approve"})
        assert again.status_code == 404 and "already decided" in again.text

        denied = start_device_flow(emu)
        requests.post(denied["verification_uri"], timeout=30, data={"user_code": denied["user_code"],
                                                                    "decision": "deny"})
        assert poll(emu, denied["device_code"]).json()["error"] == "access_denied"

        by_program = start_device_flow(emu)  # the control endpoint, as documented: JSON
        control = requests.post(by_program["verification_uri"], timeout=30,
                                json={"user_code": by_program["user_code"], "deny": False})
        assert control.json() == {"ok": True}
        assert "access_token" in poll(emu, by_program["device_code"]).json()


def test_the_banner_names_both_apis_and_its_login_command_works_as_printed(tmp_path):
    proc = subprocess.Popen([*CLI, "--port", "0", "--campaigns", "1", "--api", "v3", "--device-interval", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = threading.Timer(600, proc.kill)  # a banner shorter than expected ends the reads (EOF), not the test
    deadline.start()
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        assert "the v2 API" in lines[0] and "the v3 API and its OAuth2 server" in lines[0], lines[0]
        url = lines[0].split(" on ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url[-1].isdigit(), "the URL readers parse stays first"
        command = shlex.split(lines[4])
        assert command[:3] == ["python", "-m", "airflow_provider_cc.auth"] and f"{url}/oauth2/default/v1/token" in \
            command, lines
        store = command.index("--token-store") + 1
        command[store] = str(tmp_path / "tokens")  # the test's own directory instead of the printed one
        login = subprocess.Popen([sys.executable, "-u", *command[1:]], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=ROOT, env=os.environ.copy())
        timer = threading.Timer(300, login.kill)
        timer.start()
        try:
            assert login.stdout is not None
            shown = login.stdout.readline()
            link = re.search(r"Open (\S+) in a browser", shown)
            assert link, shown
            page = requests.get(link[1], timeout=30)  # a person opens it, reads the code, presses Approve
            code = re.search(r'name="user_code" value="([^"]+)"', page.text)
            assert page.status_code == 200 and code, page.text[:500]
            requests.post(link[1], data={"user_code": code[1], "decision": "approve"}, timeout=30)
            out, err = login.communicate(timeout=300)
        finally:
            timer.cancel()
        assert login.returncode == 0, err[-2000:]
        pasted = next(line for line in out.splitlines() if line.startswith("export AIRFLOW_CONN_"))
        connection = json.loads(shlex.split(pasted.partition("=")[2])[0])
        assert connection["host"] == url and connection["extra"]["oauth_store"] == str(tmp_path / "tokens")
    finally:
        deadline.cancel()
        proc.terminate()
        proc.wait(timeout=60)
        proc.stdout.close()  # type: ignore[union-attr]
