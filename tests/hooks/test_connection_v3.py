"""Reading a constant_contact_v3 connection, and its registration with Airflow (form fields on 2.11 and 3.2+)."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import pytest

from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.get_provider_info import V3_CONN_FIELDS, get_provider_info
from airflow_provider_cc.hooks.connection_v3 import V3Settings
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

V3_EXTRAS = {"refresh_token", "oauth_url", "oauth_chain", "oauth_store", "requests_per_second", "timeout",
             "max_retries", "backoff", "max_page_bytes", "allow_insecure_http", "rate_limiter_url"}


def conn(**kw):
    base = {"conn_id": "c3", "host": None, "schema": None, "port": None, "login": "client-1", "password": "shh-secret",
            "extra_dejson": {"refresh_token": "refresh-0123456789"}}
    return SimpleNamespace(**{**base, **kw})


def test_defaults_and_secrets():
    s = V3Settings.from_connection(conn())
    assert (s.base_url, s.token_url, s.token_store) == (
        "https://api.cc.email", "https://authz.constantcontact.com/oauth2/default/v1/token", "airflow")
    assert (s.client_id, s.client_secret, s.refresh_token, s.api_key) == (
        "client-1", "shh-secret", "refresh-0123456789", "client-1")
    assert "shh-secret" not in repr(s) and "refresh-0123456789" not in repr(s)
    assert {"shh-secret", "refresh-0123456789"} <= set(s.secrets)


@pytest.mark.parametrize(("fields", "words"), [
    ({"login": None}, "has no client id"),
    ({"host": "https://api.cc.email/v3"}, "has a path"),
    ({"extra_dejson": {"oauth_url": "ftp://x/token"}}, "must be an https URL"),
    ({"extra_dejson": {"oauth_url": "http://authz.example.com/token"}}, "plain http"),
    ({"extra_dejson": {"oauth_store": "relative/dir"}}, "absolute path"),
    ({"extra_dejson": {"oauth_store": "s3://bucket/x"}}, "oauth_store must be airflow"),
    ({"extra_dejson": {"oauth_store": "redis://:pw-123@[::1/0"}}, "not a valid Redis URL"),
    ({"extra_dejson": {"timeout": "nan"}}, "finite"),
    ({"password": "sec\nret-xyz"}, "control character"),
])
def test_bad_values_are_refused_naming_them_without_echoing_secrets(fields, words):
    with pytest.raises(ConstantContactInputError, match=words) as info:
        V3Settings.from_connection(conn(**fields))
    assert "pw-123" not in str(info.value) and "ret-xyz" not in str(info.value)
    assert str(info.value).startswith("connection 'c3'")


def test_stores_and_other_extra_names():
    s = V3Settings.from_connection(conn(extra_dejson={"extra__constant_contact_v3__oauth_store": "file:///var/cc/",
                                                      "extra__constant_contact_v3__refresh_token": "r-legacy-1"}))
    assert (s.token_store, s.refresh_token) == ("/var/cc", "r-legacy-1")
    assert V3Settings.from_connection(conn(extra_dejson={"oauth_store": "redis://:p@r:6379/1"})).token_store == \
        "redis://:p@r:6379/1"
    named = V3Settings.from_connection(conn(extra_dejson={"token_store": "/var/x", "token_url": "https://a.b/t"}))
    assert (named.token_store, named.token_url) == ("/var/x", "https://a.b/t"), "token_* names accepted too"


def test_provider_info_has_both_connection_types_and_airflow_discovers_the_v3_hook():
    types = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    assert set(types) == {"constant_contact", "constant_contact_v3"}
    assert set(types["constant_contact_v3"]["conn-fields"]) == V3_EXTRAS
    from airflow import __version__ as airflow_version
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hook_info = manager.hooks["constant_contact_v3"]
    assert hook_info is not None and hook_info.hook_class_name.endswith("ConstantContactV3Hook")
    major_minor = tuple(int(p) for p in airflow_version.split(".")[:2])
    if major_minor >= (3, 2) or major_minor < (3, 0):
        widgets = manager.connection_form_widgets
        assert {f"extra__constant_contact_v3__{name}" for name in V3_EXTRAS} <= set(widgets)
        behaviour = manager.field_behaviours["constant_contact_v3"]
        assert behaviour["relabeling"]["login"] == "Client id (API key)"
        assert behaviour["relabeling"]["password"] == "Client secret"
    if major_minor >= (3, 2):
        assert widgets["extra__constant_contact_v3__refresh_token"].is_sensitive


def test_airflow_2_form_fields_match_the_table():
    try:
        import flask_appbuilder  # noqa: F401
    except ImportError:
        return
    widgets = ConstantContactV3Hook.get_connection_form_widgets()
    assert set(widgets) == set(V3_CONN_FIELDS)
    assert widgets["refresh_token"].field_class.__name__ == "PasswordField"


def test_the_hook_reads_an_env_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT", json.dumps({
        "conn_type": "constant_contact_v3", "login": "cid", "extra": {"refresh_token": "r-1234567"}}))
    hook = ConstantContactV3Hook()
    assert hook.settings.client_id == "cid" and hook.settings.client_secret == ""
