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
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "api_key": {
        "label": "API key",
        "description": "The v2 API key (sent as the api_key query parameter).",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
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
                       "(needs the [redis] extra). Empty: a limiter per process.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
}
DEFAULTS: dict[str, Any] = {name: field["schema"].get("default") for name, field in CONN_FIELDS.items()}
DEFAULT_CONN_ID = "constant_contact_default"

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login"],
    "relabeling": {"password": "Access token", "host": "API host"},
    "placeholders": {
        "host": "https://api.constantcontact.com",
        "password": "v2 OAuth2 access token",
        "rate_limiter_url": "redis://redis:6379/0",
    },
}


# The v3 connection (OAuth2): the client id is the login, the client secret the password; the rest are extras.
# The transport's settings are the v2 table's, so both forms describe them alike.
_SHARED = ("requests_per_second", "timeout", "max_retries", "backoff", "max_page_bytes", "allow_insecure_http",
           "rate_limiter_url")
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
    "oauth_store": {
        "label": "Token store",
        "description": "Where rotated refresh tokens and cached access tokens live: airflow (an Airflow Variable, "
                       "the default), a directory path or file:// URL on a disk every process shares, or a "
                       "redis:// URL (a real lock; the [redis] extra). See the README's v3 section.",
        "schema": {"type": ["string", "null"], "default": "airflow", "format": "password"},
    },
    **{name: {**CONN_FIELDS[name], "description": CONN_FIELDS[name]["description"].replace(
        "per API key", "per application (client id)").replace("the token and api_key", "the tokens")}
       for name in _SHARED},
}
V3_DEFAULTS: dict[str, Any] = {name: field["schema"].get("default") for name, field in V3_CONN_FIELDS.items()}

V3_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    # The port stays visible: Airflow 3.3's UI sends a hidden port as 0, and its Test button then refuses a
    # stored connection (port null) as "a different host or port".
    "hidden-fields": ["schema"],
    "relabeling": {"login": "Client id (API key)", "password": "Client secret", "host": "API host",
                   "port": "API port (optional)"},
    "placeholders": {
        "host": V3_DEFAULT_HOST,
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
            {"integration-name": "Constant Contact", "python-modules": ["airflow_provider_cc.triggers.campaign"]}
        ],
    }
