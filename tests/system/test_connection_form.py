"""The v3 connection form in a real browser: headless Chromium (tests/browser.py installs one) driven by
Playwright against a real Airflow UI (the Airflow 3 API server, or the Airflow 2.11 webserver on that leg).
The v3 fields are there with their labels; a connection saved through the form pulls from the emulator; its
Test button succeeds."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_cc._compat import AIRFLOW_V_3
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


# Airflow 2.11's webserver without a login: every visitor an admin (its FAB security manager's setting).
WEBSERVER_CONFIG = """from airflow.www.fab_security.manager import AUTH_DB
AUTH_TYPE = AUTH_DB
AUTH_ROLE_PUBLIC = "Admin"
"""


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Airflow's UI on a fresh home, SQLite, every user an admin, Test enabled: the Airflow 3 API server, or
    the Airflow 2 webserver."""
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CC_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",
    })
    if AIRFLOW_V_3:
        env.update({"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True", "AIRFLOW__API__PORT": port,
                    "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                    "AIRFLOW__API_AUTH__JWT_ISSUER": "cc-form-test", "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32)})
        server = ["api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"]
        probe = "/api/v2/monitor/health"
    else:
        (home / "webserver_config.py").write_text(WEBSERVER_CONFIG)
        env["AIRFLOW__WEBSERVER__SECRET_KEY"] = secrets.token_hex(32)
        server = ["webserver", "--hostname", "127.0.0.1", "--port", port, "--workers", "1"]
        probe = "/health"
    processes = Processes(home, env)
    try:
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                                 text=True, timeout=300, cwd=home)
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        processes.start("ui", [sys.executable, "-m", "airflow", *server])
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return requests.get(f"{url}{probe}", timeout=5).json()["metadatabase"]["status"] == "healthy"
            except (requests.RequestException, ValueError, KeyError):
                return False

        wait_for("Airflow's UI", healthy, 240, 1, processes.tails)
        yield url, env
    finally:
        processes.stop_all()


def fill_v3_form_airflow_3(page: Any, url: str, emu: Emulator, refresh_token: str, store: str) -> None:
    """Airflow 3's React form: add, pick the type, fill, save, then the list's Test button."""
    page.goto(f"{url}/connections", wait_until="networkidle")
    page.get_by_role("button", name="Add Connection").click()
    page.get_by_label("Connection ID").fill(CONN_ID)
    page.get_by_text("Select Connection Type").click(force=True)
    page.keyboard.type("Constant Contact (v3")
    page.keyboard.press("Enter")
    labels = page.locator("label").all_inner_texts()
    assert all(any(text.strip() == label for text in labels) for label in LABELS), labels
    # Host and port apart, as a user fills them (443 for Constant Contact): Airflow 3.3's Test sends an empty
    # port as 0, which no longer matches the stored connection's (null) and is refused.
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
    page.get_by_text("Connection to Constant Contact (v3) succeeded.").wait_for(timeout=60_000)


def fill_v3_form_airflow_2(page: Any, url: str, emu: Emulator, refresh_token: str, store: str) -> None:
    """Airflow 2's FAB form (get_connection_form_widgets): pick the type, fill, Test, then Save."""
    page.goto(f"{url}/connection/add", wait_until="networkidle")
    page.select_option("#conn_type", "constant_contact_v3")
    labels = page.locator("label:visible").all_inner_texts()
    assert all(any(text.strip() == label for text in labels) for label in LABELS + EXTRA_LABELS), labels
    prefix = "#extra__constant_contact_v3__"
    assert page.locator(f"{prefix}refresh_token").get_attribute("type") == "password"
    page.locator("#conn_id").fill(CONN_ID)
    page.locator("#host").fill(emu.url)
    page.locator("#login").fill(emu.v3.options.client_id)
    page.locator("#password").fill(emu.v3.options.client_secret)
    page.locator(f"{prefix}refresh_token").fill(refresh_token)
    page.locator(f"{prefix}oauth_url").fill(emu.token_url)
    page.locator(f"{prefix}oauth_store").fill(store)
    page.get_by_role("button", name="Test").click()
    page.get_by_text("Connection to Constant Contact (v3) succeeded.").wait_for(timeout=60_000)
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Added Row").wait_for(timeout=30_000)


def test_the_v3_connection_form_saves_a_connection_that_pulls_and_tests(ui, tmp_path):
    from playwright.sync_api import sync_playwright

    url, env = ui
    chromium = ensure_chromium()
    fill = fill_v3_form_airflow_3 if AIRFLOW_V_3 else fill_v3_form_airflow_2
    with Emulator(DataConfig(campaigns=1, contacts=30, activities=25), v3=V3Options()) as emu:
        refresh_token = emu.v3.oauth.issue()["refresh_token"]
        store = str(tmp_path / "tokens")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=ARGS,
                                                 env={**os.environ, **library_path()})
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            tested: list[tuple[int, str]] = []  # the server's answers to the Test button, for failures
            page.on("response", lambda r: tested.append((r.status, r.text())) if "/connections/test" in r.url else None)
            try:
                fill(page, url, emu, refresh_token, store)
            except Exception as exc:
                page.screenshot(path=str(tmp_path / "form.png"), full_page=True)
                raise AssertionError(f"{exc}\nthe server's answers to Test: {tested}") from None
            finally:
                browser.close()
        if AIRFLOW_V_3:
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
