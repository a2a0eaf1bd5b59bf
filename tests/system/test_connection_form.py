"""The v3 connection form in a real browser: headless Chromium (tests/browser.py installs one) driven by
Playwright against a real Airflow 3 API server. The v3 fields are there with their labels; a connection saved
through the form pulls from the emulator; its Test button succeeds."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
from tests.browser import ARGS, ensure_chromium, library_path
from tests.conftest import ROOT
from tests.system.conftest import Processes, _fernet_key, free_port, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CONN_ID = "cc_v3_from_the_form"
LABELS = ("API host", "API port (optional)", "Client id (API key)", "Client secret")
EXTRA_LABELS = ("Refresh token", "OAuth2 token URL", "Token store", "Shared rate limiter (Redis URL)")
# The connection as the form saved it, read from the metadata DB (a task reads it through the API server; a
# plain process on Airflow 3 has no such route), then the hook the operators get for it.
PULL = """
import json, os, sys
from airflow.models.connection import Connection
os.environ["AIRFLOW_CONN_" + sys.argv[1].upper()] = Connection.get_connection_from_secrets(sys.argv[1]).as_json()
from airflow_provider_cc.hooks.factory import hook_for
hook = hook_for(sys.argv[1])
records = list(hook.iter_activity_tracking(sys.argv[2], "sends"))
print(json.dumps({"hook": type(hook).__name__, "records": len(records)}))
"""


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """An Airflow 3 API server (the UI) on a fresh home, SQLite, every user an admin, Test enabled."""
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CC_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True", "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db", "AIRFLOW__API__PORT": port,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32), "AIRFLOW__API_AUTH__JWT_ISSUER": "cc-form-test",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
    })
    processes = Processes(home, env)
    try:
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                                 text=True, timeout=300, cwd=home)
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        processes.start("api-server", [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port",
                                       port, "--workers", "1"])
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return requests.get(f"{url}/api/v2/monitor/health", timeout=5).json()["metadatabase"]["status"] \
                    == "healthy"
            except (requests.RequestException, ValueError, KeyError):
                return False

        wait_for("the API server", healthy, 180, 1, processes.tails)
        yield url, env
    finally:
        processes.stop_all()


def test_the_v3_connection_form_saves_a_connection_that_pulls_and_tests(api_server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, env = api_server
    chromium = ensure_chromium()
    with Emulator(DataConfig(campaigns=1, contacts=30, activities=25), v3=V3Options()) as emu:
        refresh_token = emu.v3.oauth.issue()["refresh_token"]
        store = str(tmp_path / "tokens")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=ARGS,
                                                 env={**os.environ, **library_path()})
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            tested: list[tuple[int, str]] = []  # the API server's answers to the Test button, for failures
            page.on("response", lambda r: tested.append((r.status, r.text())) if "/connections/test" in r.url else None)
            try:
                page.goto(f"{url}/connections", wait_until="networkidle")
                page.get_by_role("button", name="Add Connection").click()
                page.get_by_label("Connection ID").fill(CONN_ID)
                page.get_by_text("Select Connection Type").click(force=True)
                page.keyboard.type("Constant Contact (v3")
                page.keyboard.press("Enter")
                labels = page.locator("label").all_inner_texts()
                assert all(any(text.strip() == label for text in labels) for label in LABELS), labels
                # Host and port apart, as a user fills them (443 for Constant Contact): Airflow 3.3's Test sends
                # an empty port as 0, which no longer matches the stored connection's (null) and is refused.
                host, _, port = emu.url.rpartition(":")
                page.get_by_label("API host").fill(host)
                page.get_by_label("API port (optional)").fill(port)
                page.get_by_label("Client id (API key)").fill(emu.v3.options.client_id)
                page.get_by_label("Client secret").fill(emu.v3.options.client_secret)
                page.get_by_role("button", name="Extra Fields", exact=True).click()
                labels = page.locator("label").all_inner_texts()
                assert all(any(text.strip() == label for text in labels) for label in EXTRA_LABELS), labels
                assert page.locator("#element_refresh_token").get_attribute("type") == "password"
                # The form's label elements name no input (Airflow's form), so the inputs go by their ids.
                page.locator("#element_refresh_token").fill(refresh_token)
                page.locator("#element_oauth_url").fill(emu.token_url)
                page.locator("#element_oauth_store").fill(store)
                page.get_by_role("button", name="Save").click()
                page.get_by_role("button", name="Test Connection").first.wait_for(timeout=30_000)
                page.get_by_role("button", name="Test Connection").first.click()
                toast = page.get_by_text("Connection to Constant Contact (v3) succeeded.")
                toast.wait_for(timeout=60_000)
            except Exception as exc:
                page.screenshot(path=str(tmp_path / "form.png"), full_page=True)
                raise AssertionError(f"{exc}\nthe API server's answers to Test: {tested}") from None
            finally:
                browser.close()
        saved: dict[str, Any] = requests.get(f"{url}/api/v2/connections/{CONN_ID}", timeout=10).json()
        assert saved["conn_type"] == "constant_contact_v3" and saved["login"] == emu.v3.options.client_id
        extra = json.loads(saved["extra"])
        assert extra["oauth_store"] == store and extra["refresh_token"] == "***", "the API hides the token"
        assert any(p == "/v3/emails" and q.get("limit") == "1" for p, q in emu.requests), "Test sent one request"
        activity = emu.v3_activity_ids()[0]
        pulled = subprocess.run([sys.executable, "-c", PULL, CONN_ID, activity], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        assert pulled.returncode == 0, pulled.stderr[-3000:]
        assert json.loads(pulled.stdout.strip().splitlines()[-1]) == {
            "hook": "ConstantContactV3Hook", "records": len(emu.v3_records(activity, "sends"))}
        assert not emu.v3.oauth.reused, "the API server's test (a transient copy) and the task share one chain"
