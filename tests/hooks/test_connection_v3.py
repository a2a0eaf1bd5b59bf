"""Reading a constant_contact_v3 connection, and its registration with Airflow (form fields on 2.11 and 3.2+)."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_cc.exceptions import ConstantContactError, ConstantContactInputError
from airflow_provider_cc.get_provider_info import V3_CONN_FIELDS, get_provider_info
from airflow_provider_cc.hooks.connection_v3 import V3Settings
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

V3_EXTRAS = {"refresh_token", "oauth_url", "oauth_chain", "oauth_store", "oauth_timeout", "requests_per_second",
             "timeout", "max_retries", "backoff", "max_page_bytes", "allow_insecure_http", "rate_limiter_url",
             "redis_password"}


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
    assert (s.timeout, s.oauth_timeout, s.token_timeout) == (60, None, 60)
    assert V3Settings.from_connection(conn(extra_dejson={"oauth_timeout": "120"})).token_timeout == 120
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
    ({"extra_dejson": {"oauth_timeout": 0}}, "oauth_timeout"),
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
    assert V3Settings.from_connection(conn(extra_dejson={"oauth_store": "redis://r:6379/1"})).token_store == \
        "redis://r:6379/1"
    named = V3Settings.from_connection(conn(extra_dejson={"token_store": "/var/x", "token_url": "https://a.b/t"}))
    assert (named.token_store, named.token_url) == ("/var/x", "https://a.b/t"), "token_* names accepted too"


def test_provider_info_has_both_connection_types():
    types = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    assert set(types) == {"constant_contact", "constant_contact_v3"}
    assert set(types["constant_contact_v3"]["conn-fields"]) == V3_EXTRAS


def v3_discovered(manager: Any, major_minor: tuple[int, ...]) -> None:
    """What Airflow's providers manager found of the v3 type (tests/hooks/test_connection.py asks it once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hook_info = manager.hooks["constant_contact_v3"]
    assert hook_info is not None and hook_info.hook_class_name.endswith("ConstantContactV3Hook")
    if major_minor >= (3, 2) or major_minor < (3, 0):
        widgets = manager.connection_form_widgets
        assert {f"extra__constant_contact_v3__{name}" for name in V3_EXTRAS} <= set(widgets)
        behaviour = manager.field_behaviours["constant_contact_v3"]
        assert behaviour["relabeling"]["login"] == "Client id (API key)"
        assert behaviour["relabeling"]["password"] == "Client secret"
    if major_minor >= (3, 2):
        assert widgets["extra__constant_contact_v3__refresh_token"].is_sensitive
        assert widgets["extra__constant_contact_v3__redis_password"].is_sensitive
        assert not widgets["extra__constant_contact_v3__oauth_store"].is_sensitive, "only secrets are masked"


def test_airflow_2_form_fields_match_the_table():
    try:
        import flask_appbuilder  # noqa: F401
    except ImportError:
        return
    widgets = ConstantContactV3Hook.get_connection_form_widgets()
    assert set(widgets) == set(V3_CONN_FIELDS)
    assert {name for name, widget in widgets.items() if widget.field_class.__name__ == "PasswordField"} == {
        "refresh_token", "redis_password"}, "only secrets are masked: the token store is a plain field"


def test_the_hook_reads_an_env_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT", json.dumps({
        "conn_type": "constant_contact_v3", "login": "cid", "extra": {"refresh_token": "r-1234567"}}))
    hook = ConstantContactV3Hook()
    assert hook.settings.client_id == "cid" and hook.settings.client_secret == ""


@pytest.mark.parametrize(("fields", "base_url"), [
    ({"host": "http://127.0.0.1:8099"}, "http://127.0.0.1:8099"),  # joined, as every printed connection has it
    ({"host": "http://127.0.0.1", "port": 8099}, "http://127.0.0.1:8099"),  # apart, as the form has it
    ({"host": "http://127.0.0.1:8099", "port": 8099}, "http://127.0.0.1:8099"),  # both (Test on Airflow 3.3)
    ({"host": None, "port": 443}, "https://api.cc.email"),
])
def test_the_port_joined_to_the_host_or_entered_apart(fields, base_url):
    assert V3Settings.from_connection(conn(**fields)).base_url == base_url


@pytest.mark.parametrize("extra", ["oauth_store", "rate_limiter_url"])
def test_a_redis_password_inside_a_url_is_refused_naming_redis_password_without_echo(extra):
    with pytest.raises(ConstantContactInputError, match=f'extra {extra} carries a Redis password.*"redis_password"') \
            as info:
        V3Settings.from_connection(conn(extra_dejson={extra: "redis://:hunter2-pw@r:6379/0"}))
    assert "hunter2-pw" not in str(info.value)


def test_one_redis_password_opens_the_token_store_and_the_limiter():
    s = V3Settings.from_connection(conn(extra_dejson={"oauth_store": "redis://r:6379/1", "rate_limiter_url":
                                                      "redis://r:6379/2", "redis_password": "p w!"}))
    assert (s.token_store, s.rate_limiter_url) == ("redis://:p%20w%21@r:6379/1", "redis://:p%20w%21@r:6379/2")
    assert "p w!" in s.secrets and "p w!" not in repr(s) and "p%20w%21" not in repr(s)
    again = s.replace(timeout=5)
    assert again.token_store == s.token_store, "the settings' own URLs (password joined) are accepted again"


def test_a_password_protected_redis_serves_the_token_store_and_the_limiter(v3, monkeypatch, redis_server):
    """The hook pulls with its tokens and its limiter on a Redis that requires a password, given only in the
    extra redis_password; a wrong one fails before any API request, without showing it."""
    client = redis_server.client()
    client.config_set("requirepass", "s3cret pw")
    try:
        connection = json.loads(v3.v3_connection_json(oauth_store=redis_server.url, rate_limiter_url=redis_server.url,
                                                      redis_password="s3cret pw", requests_per_second=4))
        monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT", json.dumps(connection))
        campaign = next(iter(v3.v3.view.campaigns))
        assert ConstantContactV3Hook().get_campaign(campaign)["campaign_id"] == campaign
        connection["extra"]["redis_password"] = "wrong pw"
        monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT", json.dumps(connection))
        before = len(v3.requests)
        with pytest.raises(ConstantContactError) as info:
            ConstantContactV3Hook().get_campaign(campaign)
        assert "wrong pw" not in str(info.value) and "wrong%20pw" not in str(info.value)
        assert [p for p, _ in v3.requests[before:] if p.startswith("/v3/")] == [], "no API request was sent"
    finally:
        import redis

        redis.Redis(host="127.0.0.1", port=redis_server.port, password="s3cret pw").config_set("requirepass", "")


def test_a_failed_test_names_no_connection_id_airflow_made_up(v3, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_XQZRNDMC", json.dumps({
        "conn_type": "constant_contact_v3", "host": v3.url, "login": v3.v3.options.client_id,
        "extra": {"oauth_url": v3.token_url, "oauth_store": str(tmp_path / "empty")}}))
    ok, message = ConstantContactV3Hook("XQZRNDMC").test_connection()
    assert not ok and "XQZRNDMC" not in message, message
    assert "--conn-id <your connection id>" in message, message
