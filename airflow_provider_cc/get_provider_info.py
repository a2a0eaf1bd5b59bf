"""Provider metadata for Airflow's ProvidersManager. Imports nothing heavy: every Airflow process calls it."""

from __future__ import annotations

from typing import Any

from airflow_provider_cc import __version__

HOOK_CLASS = "airflow_provider_cc.hooks.constant_contact.ConstantContactHook"

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


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata dict (schema: airflow/provider_info.schema.json)."""
    return {
        "package-name": "airflow-provider-constant-contact",
        "name": "Constant Contact",
        "description": "Pull Constant Contact v2 email-campaign tracking reports into XCom or object storage.",
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
            }
        ],
        "hooks": [
            {"integration-name": "Constant Contact",
             "python-modules": ["airflow_provider_cc.hooks.constant_contact"]}
        ],
        "operators": [
            {"integration-name": "Constant Contact",
             "python-modules": ["airflow_provider_cc.operators.tracking"]}
        ],
        "sensors": [
            {"integration-name": "Constant Contact", "python-modules": ["airflow_provider_cc.sensors.campaign"]}
        ],
        "triggers": [
            {"integration-name": "Constant Contact", "python-modules": ["airflow_provider_cc.triggers.campaign"]}
        ],
    }
