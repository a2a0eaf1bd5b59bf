"""Both connection forms in a real browser: headless Chromium (tests/browser.py installs Debian's, or another
way where that is impossible) driven by Playwright against a real Airflow UI (the Airflow 3 API server; the
Airflow 2.11 webserver on that leg), with the emulator behind it. A person's steps: fill the form, save, press
Test, read what the UI says. Checked: the labels and which fields are masked; Test succeeds for a v2
connection and for v3 connections with the port apart from the host or joined to it; a failing Test shows the
reason and names no connection id Airflow made up; the REST API shows no secret (the Redis password included);
a connection saved through the form pulls."""

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
from tests.conftest import ROOT, copy_migrated_db
from tests.system.conftest import Processes, _fernet_key, free_port, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

V2_LABELS = ("API host", "API port", "API key", "Access token")
V3_LABELS = ("API host", "API port", "Client id (API key)", "Client secret")
V3_EXTRA_LABELS = ("Refresh token", "OAuth2 token URL", "Token store", "Shared rate limiter (Redis URL)",
                   "Redis password")
V2_SUCCESS = "Connection to Constant Contact succeeded."
V3_SUCCESS = "Connection to Constant Contact (v3) succeeded."
REDIS_PASSWORD = "hunter2-redis-pw"
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


@pytest.fixture(scope="module")
def chromium() -> str:
    """A Chromium binary; where none can be installed, the test is skipped with the reason, except in CI
    (``CI`` set), which must run it."""
    try:
        return ensure_chromium()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no browser: {exc}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Airflow's UI on a fresh home, SQLite, every user an admin, Test enabled (Airflow ships it disabled): the
    Airflow 3 API server, or the Airflow 2 webserver. One per module: the tests use distinct connection ids."""
    home = tmp_path_factory.mktemp("airflow")
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
        # The UI and its REST API only: no task reports here, and the execution API's versioned routes (Cadwyn)
        # cost about 4 CPU-seconds to build.
        server = ["api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1", "--apps", "core"]
        probe = "/api/v2/monitor/health"
    else:
        (home / "webserver_config.py").write_text(WEBSERVER_CONFIG)
        env["AIRFLOW__WEBSERVER__SECRET_KEY"] = secrets.token_hex(32)
        # gunicorn's master gives up on a worker that has not booted in 120 s (the default): on a busy machine
        # loading every provider takes longer.
        env["AIRFLOW__WEBSERVER__WEB_SERVER_MASTER_TIMEOUT"] = env["AIRFLOW__WEBSERVER__WEB_SERVER_WORKER_TIMEOUT"] \
            = "900"
        server = ["webserver", "--hostname", "127.0.0.1", "--port", port, "--workers", "1"]
        probe = "/health"
    processes = Processes(home, env)
    try:
        copy_migrated_db(migrated_db, home / "airflow.db")  # as `airflow db migrate` leaves it
        proc = processes.start("ui", [sys.executable, "-m", "airflow", *server])
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"Airflow's UI exited with code {proc.returncode}\n{processes.tails()}")
            try:
                return requests.get(f"{url}{probe}", timeout=5).json()["metadatabase"]["status"] == "healthy"
            except (requests.RequestException, ValueError, KeyError, TypeError):  # not (yet) Airflow answering
                return False

        wait_for("Airflow's UI to answer its health check", healthy, 600, 1, processes.tails)
        yield url, env
    finally:
        processes.stop_all()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(DataConfig(campaigns=1, contacts=30, activities=25), v3=V3Options()) as emulator:
        yield emulator


@pytest.fixture
def browser_page(chromium: str, tmp_path: Path) -> Iterator[tuple[Any, list[tuple[int, str]]]]:
    """A page of a headless Chromium started for the test and closed after it; a screenshot and the server's
    answers to Test are kept for a failure's message."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS,
                                             env={**os.environ, **library_path()})
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            tested: list[tuple[int, str]] = []
            page.on("response", lambda r: tested.append((r.status, r.text())) if "connections/test" in r.url else None)
            yield page, tested
            page.screenshot(path=str(tmp_path / "form.png"), full_page=True)
        finally:
            browser.close()


def labels_on(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("label:visible").all_inner_texts()]


# ---- Airflow 3: the React form, and the connection list's Test button ------------------------------------------
def add_connection_airflow_3(page: Any, url: str, conn_id: str, type_name: str, standard: dict[str, str],
                             extras: dict[str, str], labels: tuple[str, ...],
                             extra_labels: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Add a connection through the form as a person does; return each extra field's input type."""
    page.goto(f"{url}/connections", wait_until="networkidle")
    page.get_by_role("button", name="Add Connection").click()
    page.get_by_label("Connection ID").fill(conn_id)
    page.get_by_text("Select Connection Type").click(force=True)
    page.keyboard.type(type_name)
    page.keyboard.press("Enter")
    shown = labels_on(page)
    assert all(label in shown for label in labels), shown
    for label, value in standard.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Extra Fields", exact=True).click()
    shown = labels_on(page)
    assert all(label in shown for label in extra_labels), shown
    kinds = {}
    for name, value in extras.items():  # the form's labels name no input (Airflow's form): by id
        field = page.locator(f"#element_{name}")
        kinds[name] = field.get_attribute("type") or "text"
        field.fill(value)
    page.get_by_role("button", name="Save").click()
    page.locator("tr", has_text=conn_id).first.wait_for(timeout=60_000)
    return kinds


def press_test_airflow_3(page: Any, conn_id: str, expect: str) -> str:
    """Press Test on the connection's row of the list; return the toast that says ``expect``."""
    row = page.locator("tr", has_text=conn_id).first
    row.get_by_role("button", name="Test Connection").click()
    toast = page.get_by_text(expect, exact=False).first
    toast.wait_for(timeout=120_000)
    return toast.inner_text()


def press_test_without_a_stored_port(page: Any, url: str, emu: Emulator, tested: list[tuple[int, str]]) -> None:
    """What Airflow 3.3 answers (before any provider code runs) when the port was left empty: the list's Test
    sends an empty port as 0, which differs from the stored null, and the toast says only "Bad Request".
    Documented in docs/v3.md, so a user who meets it knows to fill the port."""
    created = requests.post(f"{url}/api/v2/connections", timeout=30, json={
        "connection_id": "cc_v2_no_port", "conn_type": "constant_contact", "host": emu.url, "login": emu.api_key,
        "password": emu.token})
    assert created.status_code == 201, created.text
    page.goto(f"{url}/connections", wait_until="networkidle")
    with page.expect_response(lambda r: "connections/test" in r.url, timeout=120_000) as answer:
        page.locator("tr", has_text="cc_v2_no_port").first.get_by_role("button", name="Test Connection").click()
    assert answer.value.status == 400 and "The host or port to test differs" in answer.value.text(), tested
    toast = page.get_by_text("Test Connection Failed").first
    toast.wait_for(timeout=60_000)
    assert "Bad Request" in toast.locator("../..").inner_text(), "all Airflow 3.3 says: docs/v3.md explains it"


def api_extra(url: str, conn_id: str) -> dict[str, Any]:
    saved = requests.get(f"{url}/api/v2/connections/{conn_id}", timeout=30).json()
    return json.loads(saved["extra"] or "{}")


@pytest.mark.skipif(not AIRFLOW_V_3, reason="Airflow 3's React form; the 2.11 leg runs the FAB form's test below")
def test_airflow_3_forms_test_button_for_v2_and_v3_and_what_failures_show(ui, emu, browser_page, tmp_path):
    url, env = ui
    page, tested = browser_page
    host, _, port = emu.url.rpartition(":")
    try:
        # v2: the API key among the standard fields; the port filled (Airflow 3.3's Test needs a stored port).
        kinds = add_connection_airflow_3(
            page, url, "cc_v2_form", "Constant Contact",
            {"API host": emu.url, "API port": port, "API key": emu.api_key, "Access token": emu.token},
            {"rate_limiter_url": "", "redis_password": ""}, V2_LABELS)
        assert kinds == {"rate_limiter_url": "text", "redis_password": "password"}, "only secrets are masked"
        assert press_test_airflow_3(page, "cc_v2_form", V2_SUCCESS)

        # v3, the port apart from the host, a Redis password (unused: the store is a directory).
        refresh_token = emu.v3.oauth.issue()["refresh_token"]
        store = str(tmp_path / "tokens")
        v3_standard = {"API host": host, "API port": port, "Client id (API key)": emu.v3.options.client_id,
                       "Client secret": emu.v3.options.client_secret}
        v3_extras = {"refresh_token": refresh_token, "oauth_url": emu.token_url, "oauth_store": store,
                     "redis_password": REDIS_PASSWORD}
        kinds = add_connection_airflow_3(page, url, "cc_v3_port_apart", "Constant Contact (v3", v3_standard,
                                         v3_extras, V3_LABELS, V3_EXTRA_LABELS)
        assert kinds == {"refresh_token": "password", "oauth_url": "text", "oauth_store": "text",
                         "redis_password": "password"}, "only secrets are masked: the token store is plain"
        assert press_test_airflow_3(page, "cc_v3_port_apart", V3_SUCCESS)

        # v3, the port joined to the host as every printed connection has it (and in the port field too).
        add_connection_airflow_3(page, url, "cc_v3_port_joined", "Constant Contact (v3",
                                 {**v3_standard, "API host": emu.url}, {**v3_extras, "redis_password": ""},
                                 V3_LABELS)
        assert press_test_airflow_3(page, "cc_v3_port_joined", V3_SUCCESS)

        # A failure: no refresh token anywhere. The reason is shown, with no made-up connection id in it.
        add_connection_airflow_3(page, url, "cc_v3_no_token", "Constant Contact (v3", v3_standard,
                                 {"oauth_url": emu.token_url, "oauth_store": str(tmp_path / "empty")}, V3_LABELS)
        shown = press_test_airflow_3(page, "cc_v3_no_token", "has no refresh token")
        assert "--conn-id <your connection id>" in shown, shown

        press_test_without_a_stored_port(page, url, emu, tested)
    except Exception as exc:
        page.screenshot(path=str(tmp_path / "form.png"), full_page=True)
        raise AssertionError(f"{exc}\nthe server's answers to Test: {tested}\nscreenshot: {tmp_path}/form.png") \
            from None
    made_up = [body for _, body in tested if "cc_v3_no_token" not in body]
    answers = "\n".join(body for _, body in tested)
    assert "--conn-id cc_" not in answers and not [b for b in made_up if "--conn-id " in b and "<your" not in b], \
        answers

    # The REST API (what the UI's connection page reads) hides every secret, the Redis password included.
    extra = api_extra(url, "cc_v3_port_apart")
    assert extra["oauth_store"] == store and extra["oauth_url"] == emu.token_url
    assert extra["refresh_token"] == "***" and extra["redis_password"] == "***", extra
    listed = requests.get(f"{url}/api/v2/connections", timeout=30).text
    assert REDIS_PASSWORD not in listed and refresh_token not in listed and emu.token not in listed

    # The connection saved through the form pulls, on the chain the Test button's copy refreshed.
    activity = emu.v3_activity_ids()[0]
    pulled = subprocess.run([sys.executable, "-c", PULL, "cc_v3_port_apart", activity], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    assert json.loads(pulled.stdout.strip().splitlines()[-1]) == {
        "hook": "ConstantContactV3Hook", "records": len(emu.v3_records(activity, "sends"))}
    assert not emu.v3.oauth.reused, "the API server's test (a transient copy) and the task share one chain"


# ---- Airflow 2.11: the FAB form tests the form's values itself -------------------------------------------------
@pytest.mark.skipif(AIRFLOW_V_3, reason="Airflow 2's FAB form")
def test_airflow_2_forms_test_button_for_v2_and_v3(ui, emu, browser_page, tmp_path):
    url, env = ui
    page, tested = browser_page
    refresh_token = emu.v3.oauth.issue()["refresh_token"]
    store = str(tmp_path / "tokens")
    try:
        page.goto(f"{url}/connection/add", wait_until="networkidle")
        page.select_option("#conn_type", "constant_contact")
        assert all(label in labels_on(page) for label in V2_LABELS), labels_on(page)
        assert page.locator("#extra__constant_contact__redis_password").get_attribute("type") == "password"
        assert page.locator("#extra__constant_contact__rate_limiter_url").get_attribute("type") == "text"
        page.locator("#conn_id").fill("cc_v2_form")
        page.locator("#host").fill(emu.url)
        page.locator("#login").fill(emu.api_key)
        page.locator("#password").fill(emu.token)
        page.get_by_role("button", name="Test").click()
        page.get_by_text(V2_SUCCESS).wait_for(timeout=120_000)

        page.goto(f"{url}/connection/add", wait_until="networkidle")
        page.select_option("#conn_type", "constant_contact_v3")
        assert all(label in labels_on(page) for label in V3_LABELS + V3_EXTRA_LABELS), labels_on(page)
        prefix = "#extra__constant_contact_v3__"
        assert page.locator(f"{prefix}refresh_token").get_attribute("type") == "password"
        assert page.locator(f"{prefix}oauth_store").get_attribute("type") == "text", "a plain field"
        page.locator("#conn_id").fill("cc_v3_form")
        page.locator("#host").fill(emu.url)
        page.locator("#login").fill(emu.v3.options.client_id)
        page.locator("#password").fill(emu.v3.options.client_secret)
        page.locator(f"{prefix}refresh_token").fill(refresh_token)
        page.locator(f"{prefix}oauth_url").fill(emu.token_url)
        page.locator(f"{prefix}oauth_store").fill(store)
        page.get_by_role("button", name="Test").click()
        page.get_by_text(V3_SUCCESS).wait_for(timeout=120_000)
        page.get_by_role("button", name="Save").click()
        page.get_by_text("Added Row").wait_for(timeout=60_000)
    except Exception as exc:
        page.screenshot(path=str(tmp_path / "form.png"), full_page=True)
        raise AssertionError(f"{exc}\nthe server's answers to Test: {tested}\nscreenshot: {tmp_path}/form.png") \
            from None
    activity = emu.v3_activity_ids()[0]
    pulled = subprocess.run([sys.executable, "-c", PULL, "cc_v3_form", activity], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    assert json.loads(pulled.stdout.strip().splitlines()[-1])["records"] == len(emu.v3_records(activity, "sends"))
