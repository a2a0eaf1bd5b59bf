"""Provider metadata for Airflow's ProvidersManager. Imports nothing heavy: every Airflow process calls it."""

from __future__ import annotations

from typing import Any

from airflow_provider_cc import __version__

HOOK_CLASS = "airflow_provider_cc.hooks.constant_contact.ConstantContactHook"
V3_HOOK_CLASS = "airflow_provider_cc.hooks.constant_contact_v3.ConstantContactV3Hook"
V3_CONN_TYPE = "constant_contact_v3"
V3_DEFAULT_CONN_ID = "constant_contact_v3_default"
V3_DEFAULT_HOST = "https://api.cc.email"
V3_TOKEN_URL = "https://authz.constantcontact.com/oauth2/default/v1/token"

# The connection's extras and the form that edits them, shared by Airflow 3.2+ (read from here) and 2.x (the
# hook's classmethods build the same fields from this table). The defaults here are the ones the hook applies.
# The v2 API key is the connection's login (the form's standard section, relabelled "API key"); connections made
# before keep it in the extra "api_key", which is still read.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "requests_per_second": {
        "label": "Requests per second",
        "description": "Client-side ceiling per API key (Constant Contact allows 4). Hooks on one key share one "
                       "limiter at the lowest rate configured; 0 turns throttling off.",
        "schema": {"type": ["number", "null"], "default": 4, "minimum": 0},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Bound on a whole request: connect, headers and body.",
        "schema": {"type": ["number", "null"], "default": 60, "minimum": 0.001},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries per request on throttling, 5xx, timeouts, network errors and malformed pages.",
        "schema": {"type": ["integer", "null"], "default": 5, "minimum": 0},
    },
    "backoff": {
        "label": "Retry backoff (seconds)",
        "description": "First wait between retries; doubles each retry, with jitter.",
        "schema": {"type": ["number", "null"], "default": 1, "minimum": 0},
    },
    "max_page_bytes": {
        "label": "Max page size (bytes)",
        "description": "Cap on one decoded answer (64 MiB by default, far above a 500-record page).",
        "schema": {"type": ["integer", "null"], "default": 64 * 1024 * 1024, "minimum": 1024},
    },
    "allow_insecure_http": {
        "label": "Allow plain http",
        "description": "Send the token and api_key over unencrypted http to a non-local host. Off: refused.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "rate_limiter_url": {
        "label": "Shared rate limiter (Redis URL)",
        "description": "redis://host:6379/0 to share the key's rate across worker processes and machines "
                       "(needs the [redis] extra). No password in it: Airflow would show it; put it in Redis "
                       "password below. Empty: a limiter per process.",
        "schema": {"type": ["string", "null"]},
    },
    # Its name holds "password", so Airflow masks it everywhere (UI, REST API, logs) on 2.11 and 3.x.
    "redis_password": {
        "label": "Redis password",
        "description": "The password of the Redis server above, if it has one. Empty: none.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
}
DEFAULTS: dict[str, Any] = {name: field["schema"].get("default") for name, field in CONN_FIELDS.items()}
DEFAULT_CONN_ID = "constant_contact_default"

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    # The port stays visible: Airflow 3.3's Test button sends an empty port as 0 and then refuses a stored
    # connection whose port is empty ("The host or port to test differs"): a filled port (443) makes it work.
    "hidden-fields": ["schema"],
    "relabeling": {"login": "API key", "password": "Access token", "host": "API host", "port": "API port"},
    "placeholders": {
        "host": "https://api.constantcontact.com",
        "port": "443 (needed by Airflow 3.3's Test button)",
        "login": "the v2 API key (required)",
        "password": "the v2 OAuth2 access token (required)",
        "rate_limiter_url": "redis://redis:6379/0",
    },
}


# The v3 connection (OAuth2): the client id is the login, the client secret the password; the rest are extras.
# The transport's settings are the v2 table's, so both forms describe them alike.
_SHARED = ("requests_per_second", "timeout", "max_retries", "backoff", "max_page_bytes", "allow_insecure_http",
           "rate_limiter_url", "redis_password")
V3_CONN_FIELDS: dict[str, dict[str, Any]] = {
    "refresh_token": {
        "label": "Refresh token",
        "description": "The refresh token the login command printed (python -m airflow_provider_cc.auth login). "
                       "Once the store holds a newer one (rotating tokens), the store's wins until this changes.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    # Not named token_url / token_store: Airflow hides the value of any extra whose name holds "token" (the
    # form would show the default as ***, and saving it would store ***).
    "oauth_url": {
        "label": "OAuth2 token URL",
        "description": f"The OAuth2 token endpoint (default {V3_TOKEN_URL}; the emulator's for tests).",
        "schema": {"type": ["string", "null"], "default": V3_TOKEN_URL},
    },
    "oauth_chain": {
        "label": "Token chain",
        "description": "Names this authorization's tokens in the store (the login command prints it; not a "
                       "secret). Empty: a hash of the refresh token above.",
        "schema": {"type": ["string", "null"]},
    },
    # A setting of its own: a token answer holds the only copy of a rotated refresh token, so a call given up
    # after the server answered loses the chain (the retry sends a token the server has already replaced).
    "oauth_timeout": {
        "label": "Token call timeout (seconds)",
        "description": "Bound on a whole token-endpoint request (empty: the Timeout above). Its answer holds the "
                       "only copy of a rotated refresh token: given up after the server answered, the chain is "
                       "lost. Set it above Timeout if you lower Timeout below what the token endpoint needs.",
        "schema": {"type": ["number", "null"], "minimum": 0.001},
    },
    "oauth_store": {
        "label": "Token store",
        "description": "Where rotated refresh tokens and cached access tokens live: airflow (an Airflow Variable, "
                       "the default), a directory path or file:// URL on a disk every process shares, or a "
                       "redis:// URL without a password (a real lock; the [redis] extra; its password in Redis "
                       "password). See docs/v3.md.",
        "schema": {"type": ["string", "null"], "default": "airflow"},
    },
    **{name: {**CONN_FIELDS[name], "description": CONN_FIELDS[name]["description"].replace(
        "per API key", "per application (client id)").replace("the token and api_key", "the tokens").replace(
        "of the Redis server above", "of the Redis server of a Redis token store and of the shared rate "
        "limiter (one password for both)")}
       for name in _SHARED},
}
V3_DEFAULTS: dict[str, Any] = {name: field["schema"].get("default") for name, field in V3_CONN_FIELDS.items()}

V3_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    # The port stays visible: Airflow 3.3's Test button sends an empty port as 0 and then refuses a stored
    # connection whose port is empty ("The host or port to test differs"): a filled port (443) makes it work.
    "hidden-fields": ["schema"],
    "relabeling": {"login": "Client id (API key)", "password": "Client secret", "host": "API host",
                   "port": "API port"},
    "placeholders": {
        "host": V3_DEFAULT_HOST,
        "port": "443 (needed by Airflow 3.3's Test button)",
        "login": "the application's API key (client id) from the v3 developer portal",
        "password": "client secret (leave empty for a PKCE or device-flow app)",
        "oauth_url": V3_TOKEN_URL,
        "oauth_store": "airflow",
        "rate_limiter_url": "redis://redis:6379/0",
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata dict (schema: airflow/provider_info.schema.json)."""
    return {
        "package-name": "airflow-provider-constant-contact",
        "name": "Constant Contact",
        "description": "Pull Constant Contact (v2 and v3) email-campaign tracking reports into XCom or object storage.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "constant_contact",
                "hook-class-name": HOOK_CLASS,
                "hook-name": "Constant Contact",
                # Airflow's schema has no key for it yet (its UI model has default_conn_name, unfilled).
                "default-conn-name": DEFAULT_CONN_ID,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            },
            {
                "connection-type": V3_CONN_TYPE,
                "hook-class-name": V3_HOOK_CLASS,
                "hook-name": "Constant Contact (v3, OAuth2)",
                "default-conn-name": V3_DEFAULT_CONN_ID,
                "conn-fields": V3_CONN_FIELDS,
                "ui-field-behaviour": V3_UI_FIELD_BEHAVIOUR,
            },
        ],
        "hooks": [
            {"integration-name": "Constant Contact",
             "python-modules": ["airflow_provider_cc.hooks.constant_contact",
                                "airflow_provider_cc.hooks.constant_contact_v3"]}
        ],
        "operators": [
            {"integration-name": "Constant Contact",
             "python-modules": ["airflow_provider_cc.operators.tracking", "airflow_provider_cc.operators.account",
                                "airflow_provider_cc.operators.xrefs"]}
        ],
        "sensors": [
            {"integration-name": "Constant Contact", "python-modules": ["airflow_provider_cc.sensors.campaign"]}
        ],
        "triggers": [
            {"integration-name": "Constant Contact", "python-modules": ["airflow_provider_cc.triggers.campaign",
                                                                   "airflow_provider_cc.triggers.quota",
                                                                   "airflow_provider_cc.triggers.sent"]}
        ],
    }
