"""Provider metadata for Airflow's ProvidersManager. Imports nothing heavy: every Airflow process calls it."""

from __future__ import annotations

from typing import Any

from airflow_provider_cc import __version__

HOOK_CLASS = "airflow_provider_cc.hooks.constant_contact.ConstantContactHook"

# The connection form, shared by Airflow 3.2+ (read from here) and 2.x (the hook's classmethods).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "api_key": {
        "label": "API key",
        "description": "The v2 API key (sent as the api_key query parameter).",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "requests_per_second": {
        "label": "Requests per second",
        "description": "Client-side ceiling per API key (Constant Contact allows 4).",
        "schema": {"type": ["number", "null"], "default": 4},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 60},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries per request on throttling, 5xx and network errors.",
        "schema": {"type": ["integer", "null"], "default": 5},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login"],
    "relabeling": {"password": "Access token", "host": "API host"},
    "placeholders": {
        "host": "https://api.constantcontact.com",
        "password": "v2 OAuth2 access token",
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
