"""Reading the Airflow connection, and the provider's registration with Airflow."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import pytest

from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.get_provider_info import get_provider_info
from airflow_provider_cc.hooks.connection import ConnectionSettings
from airflow_provider_cc.hooks.constant_contact import ConstantContactHook
from tests.hooks.test_connection_v3 import v3_discovered

# Every extra the documentation (docs/transport.md) lists (the API key is the login; "api_key" is still read).
DOCUMENTED_EXTRAS = {"requests_per_second", "timeout", "max_retries", "backoff", "max_page_bytes",
                     "allow_insecure_http", "rate_limiter_url", "redis_password"}


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
        # The port as the form lets a user give it (Airflow 3.3's Test needs it filled): apart, joined, both.
        ({"host": "http://127.0.0.1", "port": 8099}, "http://127.0.0.1:8099"),
        ({"host": "http://127.0.0.1:8099", "port": 8099}, "http://127.0.0.1:8099"),
        ({"host": "http://127.0.0.1:8099", "port": 0}, "http://127.0.0.1:8099"),  # 0: the UI's empty port
        ({"host": "https://api.constantcontact.com", "port": 443}, "https://api.constantcontact.com"),
        ({"host": None, "port": 443}, "https://api.constantcontact.com"),
        ({"host": "https://api.constantcontact.com:443"}, "https://api.constantcontact.com"),
    ],
)
def test_host_forms(fields, base_url):
    assert ConnectionSettings.from_connection(conn(**fields)).base_url == base_url


def test_a_port_field_that_contradicts_the_host_is_refused_naming_both():
    with pytest.raises(ConstantContactInputError, match="names port 8099 and the port field says 9000"):
        ConnectionSettings.from_connection(conn(host="http://127.0.0.1:8099", port=9000))


def test_the_api_key_is_the_login_the_form_s_api_key_field_and_the_old_extra_still_works():
    assert ConnectionSettings.from_connection(conn(login="key-from-login", extra_dejson={})).api_key == "key-from-login"
    assert ConnectionSettings.from_connection(conn(login=None)).api_key == "key", "older connections: extra api_key"
    both = conn(login="key-from-login", extra_dejson={"api_key": "old-key"})
    assert ConnectionSettings.from_connection(both).api_key == "key-from-login", "the form's field wins"
    with pytest.raises(ConstantContactInputError, match="has no API key \\(login\\): fill the form's API key"):
        ConnectionSettings.from_connection(conn(login=" ", extra_dejson={}))


def test_a_redis_password_inside_rate_limiter_url_is_refused_naming_the_masked_extra_without_echoing_it():
    with pytest.raises(ConstantContactInputError, match='carries a Redis password.*extra "redis_password"') as info:
        ConnectionSettings.from_connection(conn(extra_dejson={
            "api_key": "key", "rate_limiter_url": "redis://:hunter2-pw@redis:6379/0"}))
    assert "hunter2-pw" not in str(info.value) and str(info.value).startswith("connection 'c': extra rate_limiter_url")
    with pytest.raises(ConstantContactInputError, match="carries a Redis password"):
        ConnectionSettings.from_connection(conn(extra_dejson={
            "api_key": "key", "rate_limiter_url": "unix:///run/redis.sock?db=0&password=hunter2-pw"}))


@pytest.mark.parametrize(("url", "password", "client_url"), [
    ("redis://redis:6379/0", "p@ss:w/rd", "redis://:p%40ss%3Aw%2Frd@redis:6379/0"),
    ("rediss://user@redis:6380/1", "pw", "rediss://user:pw@redis:6380/1"),
    ("unix:///run/redis.sock?db=2", "pw", "unix://:pw@/run/redis.sock?db=2"),
    ("redis://redis:6379/0", "", "redis://redis:6379/0"),
])
def test_the_redis_password_extra_joins_the_url_the_client_connects_with(url, password, client_url):
    settings = ConnectionSettings.from_connection(conn(extra_dejson={
        "api_key": "key", "rate_limiter_url": url, "redis_password": password}))
    assert settings.rate_limiter_url == client_url
    if password:
        assert password in settings.secrets and password not in repr(settings)
        from redis.connection import parse_url

        assert parse_url(client_url)["password"] == password, "redis-py reads it back as given"


def test_airflow_masks_the_redis_password_extra_by_its_name():
    """Airflow hides an extra's value by its name (the REST API, the UI, logs): redis_password is hidden, the URL
    beside it is shown, which is why the URL may carry no password."""
    try:  # where the API server takes it from on Airflow 3
        from airflow._shared.secrets_masker import redact
    except ImportError:  # Airflow 2
        from airflow.utils.log.secrets_masker import redact

    shown = redact({"rate_limiter_url": "redis://redis:6379/0", "redis_password": "hunter2-pw", "api_key": "k"})
    assert shown == {"rate_limiter_url": "redis://redis:6379/0", "redis_password": "***", "api_key": "***"}


def test_a_failed_test_names_no_connection_id_airflow_made_up(monkeypatch, emulator):
    """Airflow's Test button tests a copy of the form under a random id; the message must not send the user
    after it."""
    monkeypatch.setenv("AIRFLOW_CONN_XQZRNDMA", json.dumps({
        "conn_type": "constant_contact", "host": emulator.url, "login": emulator.api_key, "password": "wrong-token",
        "extra": {"max_retries": 0}}))
    ok, message = ConstantContactHook("XQZRNDMA").test_connection()
    assert not ok and "XQZRNDMA" not in message and "401" in message, message
    monkeypatch.setenv("AIRFLOW_CONN_XQZRNDMB", json.dumps({"conn_type": "constant_contact", "host": emulator.url}))
    ok, message = ConstantContactHook("XQZRNDMB").test_connection()
    assert not ok and "XQZRNDMB" not in message, message
    assert message.startswith("this connection has no API key (login) and no access token"), message


def test_message_for_test_rewrites_every_mention_of_the_id():
    from airflow_provider_cc.hooks.connection import message_for_test

    text = ("connection 'AbC123xy': the chain is broken. Re-authorize: python -m airflow_provider_cc.auth login "
            "--conn-id AbC123xy (the connection 'AbC123xy' reads it)")
    assert message_for_test(Exception(text), "AbC123xy") == (
        "the chain is broken. Re-authorize: python -m airflow_provider_cc.auth login --conn-id <your connection id> "
        "(this connection reads it)")


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


def test_airflow_discovers_the_provider_and_both_hooks():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-constant-contact" in manager.providers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hook_info = manager.hooks["constant_contact"]
    assert hook_info is not None and hook_info.hook_class_name.endswith("ConstantContactHook")
    assert hook_info.connection_id_attribute_name == "constant_contact_conn_id"
    # What `airflow providers hooks` lists for it (the CLI reads this; a CLI run imports every provider's hooks,
    # 25-30 CPU-seconds, so the CLI is run once, by tests/test_packaging.py on the installed wheel).
    assert hook_info.package_name == "airflow-provider-constant-contact"
    from airflow import __version__ as airflow_version

    major_minor = tuple(int(p) for p in airflow_version.split(".")[:2])
    if major_minor >= (3, 2) or major_minor < (3, 0):  # conn-fields (3.2+) or the FAB form (2.x)
        assert "extra__constant_contact__redis_password" in manager.connection_form_widgets
        assert manager.field_behaviours["constant_contact"]["relabeling"]["password"] == "Access token"
        assert manager.field_behaviours["constant_contact"]["relabeling"]["login"] == "API key"
    else:  # 3.0 and 3.1 render provider fields only through FAB widgets, absent without the FAB provider
        assert "extra__constant_contact__redis_password" not in manager.connection_form_widgets
    if major_minor >= (3, 2):
        widgets = manager.connection_form_widgets
        assert {f"extra__constant_contact__{name}" for name in DOCUMENTED_EXTRAS} <= set(widgets)
        assert widgets["extra__constant_contact__redis_password"].is_sensitive, "only secrets are masked"
        assert not widgets["extra__constant_contact__rate_limiter_url"].is_sensitive
    # The v3 type, from the same discovery (it imports every installed provider's hooks: 10-15 CPU-seconds in
    # each process that asks, so one test asks for both types).
    v3_discovered(manager, major_minor)


def test_airflow_2_form_methods():
    behaviour = ConstantContactHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == ["schema"], "the API key (login) and the port (Test on 3.3) are shown"
    assert behaviour["relabeling"]["login"] == "API key" and "required" in behaviour["placeholders"]["login"]
    try:
        import flask_appbuilder  # noqa: F401  (Airflow 2 has the FAB UI; Airflow 3 reads conn-fields)
    except ImportError:
        with pytest.raises(ImportError):
            ConstantContactHook.get_connection_form_widgets()
        return
    widgets = ConstantContactHook.get_connection_form_widgets()
    assert set(widgets) == DOCUMENTED_EXTRAS
    kinds = {name: type(field.field_class).__name__ if hasattr(field, "field_class") else type(field).__name__
             for name, field in widgets.items()}
    assert {name: getattr(widgets[name], "field_class", None).__name__ for name in kinds} == {  # type: ignore[union-attr]
        "redis_password": "PasswordField", "rate_limiter_url": "StringField", "allow_insecure_http": "BooleanField",
        "max_retries": "IntegerField", "max_page_bytes": "IntegerField", "requests_per_second": "StringField",
        "timeout": "StringField", "backoff": "StringField"}


def test_every_documented_extra_is_in_the_form_and_the_default_conn_id_is_named():
    info = get_provider_info()["connection-types"][0]
    assert set(info["conn-fields"]) == DOCUMENTED_EXTRAS
    assert info["default-conn-name"] == ConstantContactHook.default_conn_name == "constant_contact_default"


@pytest.mark.parametrize("name", ["requests_per_second", "timeout", "max_retries", "backoff", "max_page_bytes"])
@pytest.mark.parametrize("value", ["nan", float("nan"), "inf", float("-inf"), -1, "-0.5", True])
def test_extras_that_are_not_finite_or_are_negative_are_refused(name, value):
    with pytest.raises(ConstantContactInputError, match=f"connection 'c': extra {name}="):
        ConnectionSettings.from_connection(conn(extra_dejson={"api_key": "key", name: value}))


@pytest.mark.parametrize(("name", "value", "words"), [
    ("max_retries", 2.5, "must be a whole number"), ("max_page_bytes", 10, "must be at least 1024"),
    ("timeout", 0, "must be at least 0.001"), ("allow_insecure_http", "maybe", "is not true or false"),
])
def test_other_bad_extras(name, value, words):
    with pytest.raises(ConstantContactInputError, match=words):
        ConnectionSettings.from_connection(conn(extra_dejson={"api_key": "key", name: value}))


def test_hook_overrides_are_checked_too(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps({
        "conn_type": "constant_contact", "password": "t", "extra": {"api_key": "k"}}))
    with pytest.raises(ConstantContactInputError, match="timeout=nan must be a finite number"):
        ConstantContactHook(timeout=float("nan")).settings  # noqa: B018


def test_secrets_lose_surrounding_whitespace(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps({
        "conn_type": "constant_contact", "host": emulator.url, "password": f" {emulator.token}\n",
        "extra": {"api_key": f"{emulator.api_key}\r\n", "requests_per_second": 0}}))
    assert ConstantContactHook().get_campaign(emulator.campaign_ids()[0])["status"] == "SENT"


@pytest.mark.parametrize(("field", "value"), [
    ("password", "tok\nen-secret"), ("password", "tök€n-secret"), ("password", "to\x00ken-secret"),
    ("api_key", "key\u2028-secret"), ("api_key", "k\x7fey-secret"),
])
def test_secrets_with_control_or_non_latin1_characters_are_refused_without_echo(emulator, monkeypatch, field, value):
    connection = {"conn_type": "constant_contact", "host": emulator.url, "password": "t", "extra": {"api_key": "k"}}
    if field == "password":
        connection["password"] = value
    else:
        connection["extra"] = {"api_key": value}
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps(connection))
    with pytest.raises(ConstantContactInputError, match="control character or a character outside Latin-1") as info:
        ConstantContactHook().get_campaign(1)
    assert "secret" not in str(info.value) and "secret" not in repr(info.value)
    assert emulator.requests == []


@pytest.mark.parametrize("host", ["https://api.constantcontact.com/v2", "https://gateway.example.com/cc/",
                                  "https://api.constantcontact.com?x=1", "https://user:pw@api.constantcontact.com",
                                  "ftp://api.constantcontact.com", "https://api.constantcontact.com:99999",
                                  "https://u:pw@api.constantcontact.com:99999/v2"])
def test_a_host_with_a_path_credentials_or_another_scheme_is_refused(host):
    with pytest.raises(ConstantContactInputError, match="connection 'c': (host|the host)") as info:
        ConnectionSettings.from_connection(conn(host=host))
    assert ":pw@" not in str(info.value), "a password in the host is never echoed"


def test_an_upper_case_host_is_normalised_and_its_next_links_followed(hostile, monkeypatch):
    port = hostile.server_address[1]
    assert ConnectionSettings.from_connection(conn(host=f"HTTP://LocalHost:{port}/")).base_url == \
        f"http://localhost:{port}"
    path = "/v2/emailmarketing/campaigns/1/tracking/sends"
    pages = [{"meta": {"pagination": {"next_link": f"http://localhost:{port}{path}?next=2"}}, "results": []},
             {"meta": {"pagination": {}}, "results": []}]
    hostile.respond = lambda h, n: h.answer(200, pages[min(n, 2) - 1])
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps({
        "conn_type": "constant_contact", "host": f"HTTP://LOCALHOST:{port}", "password": "t",
        "extra": {"api_key": "k", "requests_per_second": 0}}))
    stream = ConstantContactHook().iter_campaign_tracking(1, "sends")
    assert list(stream) == [] and stream.pages == 2


def test_settings_repr_hides_secrets_and_the_redis_password():
    settings = ConnectionSettings(base_url="https://api.constantcontact.com", api_key="key-1", token="tok-1",
                                  rate_limiter_url="redis://:hunter2@redis:6379/0")
    assert "key-1" not in repr(settings) and "tok-1" not in repr(settings) and "hunter2" not in repr(settings)
    assert "hunter2" in settings.secrets and "rate_limiter=redis" in repr(settings)
