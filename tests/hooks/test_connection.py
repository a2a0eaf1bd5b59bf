"""Reading the Airflow connection, and the provider's registration with Airflow."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import pytest

from airflow_provider_cc.get_provider_info import get_provider_info
from airflow_provider_cc.hooks.connection import ConnectionSettings
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook


def conn(**kw):
    base = {"conn_id": "c", "host": None, "schema": None, "port": None, "login": None, "password": "tok",
            "extra_dejson": {"api_key": "key"}}
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize(
    ("fields", "base_url"),
    [
        ({}, "https://api.constantcontact.com"),
        ({"host": "http://127.0.0.1:8099/"}, "http://127.0.0.1:8099"),
        ({"host": "localhost", "schema": "http", "port": 8099}, "http://localhost:8099"),
        ({"host": "api.example.com"}, "https://api.example.com"),
    ],
)
def test_host_forms(fields, base_url):
    assert ConnectionSettings.from_connection(conn(**fields)).base_url == base_url


def test_extras_plain_legacy_and_defaults():
    s = ConnectionSettings.from_connection(conn(extra_dejson={
        "extra__constant_contact__api_key": "legacy", "requests_per_second": "2.5", "max_retries": 3}))
    assert (s.api_key, s.requests_per_second, s.max_retries, s.timeout) == ("legacy", 2.5, 3, 60.0)
    assert "legacy" not in repr(s) and "tok" not in repr(s)


def test_env_var_json_connection_is_read(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps({
        "conn_type": "constant_contact", "password": "tok-123", "extra": {"api_key": "key-456"}}))
    s = ConstantContactHook().settings
    assert (s.base_url, s.api_key, s.token) == ("https://api.constantcontact.com", "key-456", "tok-123")


def test_hook_overrides_win(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps({
        "conn_type": "constant_contact", "password": "t", "extra": {"api_key": "k", "timeout": 5}}))
    assert ConstantContactHook(timeout=9, max_retries=1).settings.timeout == 9


def test_provider_info_matches_airflow_s_schema():
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_airflow_discovers_the_provider_and_hook():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-constant-contact" in manager.providers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hook_info = manager.hooks["constant_contact"]
    assert hook_info is not None and hook_info.hook_class_name.endswith("ConstantContactHook")
    assert hook_info.connection_id_attribute_name == "constant_contact_conn_id"
    from airflow import __version__ as airflow_version

    major_minor = tuple(int(p) for p in airflow_version.split(".")[:2])
    if major_minor >= (3, 2) or major_minor < (3, 0):  # conn-fields (3.2+) or the FAB form (2.x)
        assert "extra__constant_contact__api_key" in manager.connection_form_widgets
        assert manager.field_behaviours["constant_contact"]["relabeling"]["password"] == "Access token"
    else:  # 3.0 and 3.1 render provider fields only through FAB widgets, absent without the FAB provider
        assert "extra__constant_contact__api_key" not in manager.connection_form_widgets


def test_airflow_2_form_methods():
    assert ConstantContactHook.get_ui_field_behaviour()["hidden_fields"] == ["schema", "port", "login"]
    try:
        import flask_appbuilder  # noqa: F401  (Airflow 2 has the FAB UI; Airflow 3 reads conn-fields)
    except ImportError:
        with pytest.raises(ImportError):
            ConstantContactHook.get_connection_form_widgets()
        return
    widgets = ConstantContactHook.get_connection_form_widgets()
    assert set(widgets) == {"api_key", "requests_per_second", "timeout", "max_retries"}


def test_airflow_cli_lists_the_provider_and_its_hook():
    import os
    import subprocess
    import sys

    def airflow(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "airflow", *args, "--output", "json"], capture_output=True,
                              text=True, env=os.environ.copy(), timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    assert "airflow-provider-constant-contact" in airflow("providers", "get", "airflow-provider-constant-contact")
    hooks = airflow("providers", "hooks")
    assert "constant_contact" in hooks and "ConstantContactHook" in hooks
