"""JSON Schemas of the output records, generated from the catalogue and shipped as ``schemas/<report>.json``
(v2) and ``schemas/v3/<report>.json`` (v3).

v2: one schema per report (``sends`` ... ``bounces``, and ``all`` for the mixed contact report). v3: one per
campaign report (``sends``, ``opens``, ``unique_opens``, ``clicks``, ``forwards``, ``unsubscribes`` (URL
segment ``optouts``), ``bounces``, ``didnotopens``) and ``activity`` (what a v3 contact tracking file holds,
whichever report it was asked for). They describe one JSON line exactly as the provider writes it (and one
CSV / Parquet row): ids as strings, dates as the API's ISO-8601 UTC text, fields the API adds beyond the
catalogue allowed. After changing the catalogue, regenerate the shipped files with
``python -m airflow_provider_cc.schemas --write`` (in a checkout); ``--check`` only compares them (exit 1
when stale), and a test checks they match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_provider_cc.dimensions import DIMENSIONS, Dimension, dimension_of
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.reports import (
    ACTIVITY_REPORTS,
    ALL,
    API_VERSIONS,
    CATALOGUE,
    COMMON_COLUMNS,
    CONTACT_REPORT_NAMES,
    V2,
    V3,
    V3_COMMON_COLUMNS,
    V3_CONTACT_ACTIVITY,
    V3_REPORTS,
    Column,
    Report,
    contact_report,
    natural_key_of,
    report_of,
    schema_of,
)

DIRECTORY = Path(__file__).resolve().parent
# One schema per report a file can hold. v2: the contact reports (every activity report, and "all"); v3: every
# campaign report, and the contact activity report.
SCHEMA_NAMES: tuple[str, ...] = CONTACT_REPORT_NAMES
V3_SCHEMA_NAMES: tuple[str, ...] = (*CATALOGUE[V3], V3_CONTACT_ACTIVITY.name)
SCHEMAS: dict[str, tuple[str, ...]] = {V2: SCHEMA_NAMES, V3: V3_SCHEMA_NAMES}
_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# What every v3 record the provider writes holds (the spec's required fields, and the campaign it adds).
_V3_ALWAYS = tuple(c for c in V3_COMMON_COLUMNS if c not in ("first_name", "last_name", "deleted_at"))


def report_for(name: str, api: str = V2) -> Report | None:
    """The report whose records schema ``name`` of ``api`` describes (``None``: v2's mixed ``all``); a clear
    input error for a name with no schema.

    :param name: schema name (``opens``..., v2 ``all``, v3 ``activity``).
    :param api: ``v2`` or ``v3``.
    """
    if api == V2:
        return contact_report(name)
    if api == V3 and name == V3_CONTACT_ACTIVITY.name:
        return V3_CONTACT_ACTIVITY
    if api == V3 and (name in CATALOGUE[V3] or name in V3_REPORTS):  # the URL segment optouts too
        return report_of(name, V3)
    choices = SCHEMAS.get(api)
    raise ConstantContactInputError(
        f"no {api} schema called {name!r}; choose one of {', '.join(choices)}" if choices else
        f"api={api!r} is not one of {', '.join(API_VERSIONS)}")


def property_of(column: Column, *, required: bool) -> dict[str, Any]:
    """The JSON Schema of one column's value, from the catalogue's type table; ``null`` allowed unless required.

    :param column: the typed column.
    :param required: whether every record has it.
    """
    kind = column.kind
    prop: dict[str, Any] = {"type": kind.json_type if required else [kind.json_type, "null"]}
    if kind.json_format:
        prop["format"] = kind.json_format
    return {**prop, "description": column.description} if column.description else prop


def _required(report: Report | None) -> list[str]:
    """The columns every record of ``report`` has: the common ones and the natural key."""
    if report is None:
        return list(COMMON_COLUMNS)
    key = natural_key_of(report)
    if report.api == V2:
        return list(dict.fromkeys((*COMMON_COLUMNS, *key)))
    return [c for c in report.columns if c in _V3_ALWAYS or c in key]


def _activity_types(report: Report | None) -> dict[str, Any]:
    """The constraint on a record's activity type: one value per report, the mixed reports' set otherwise."""
    if report is None:
        return {"enum": [r.activity_type for r in ACTIVITY_REPORTS]}
    if report is V3_CONTACT_ACTIVITY:
        return {"enum": list(dict.fromkeys(r.activity_type for r in CATALOGUE[V3].values() if not r.snapshot))}
    return {"const": report.activity_type}


def json_schema(report: Report | None) -> dict[str, Any]:
    """The JSON Schema of one output record of ``report`` (``None``: v2's mixed ``all`` report)."""
    name = ALL if report is None else report.name
    api = V2 if report is None else report.api
    key = natural_key_of(report)
    required = _required(report)
    properties = {c.name: property_of(c, required=c.name in required) for c in schema_of(report)}
    type_field = "activity_type" if report is None else report.type_field
    properties[type_field] = {**_activity_types(report), **properties[type_field]}
    what = "contact activity record" if report is V3_CONTACT_ACTIVITY else f"tracking record: {name}"
    schema: dict[str, Any] = {
        "$schema": _DIALECT,
        "$id": f"urn:airflow-provider-constant-contact:schema:{'' if api == V2 else 'v3:'}{name}",
        "title": f"Constant Contact {api} {what}",
        "description": (
            "One record as the provider writes it: one JSON line, one CSV row or one Parquet row. Ids are "
            "strings; dates are ISO-8601 UTC text with milliseconds (Parquet: timestamp[ms, tz=UTC]). Natural "
            f"key (deduplicate on it): {', '.join(key)}."
        ),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": True,
        "x-natural-key": list(key),
    }
    if report is None:  # each activity type brings its own date (and link) field
        schema["allOf"] = [
            {"if": {"properties": {"activity_type": {"const": r.activity_type}}, "required": ["activity_type"]},
             "then": {"required": [c for c in natural_key_of(r) if c not in COMMON_COLUMNS]}}
            for r in ACTIVITY_REPORTS
        ]
    return schema


def dimension_schema(dimension: Dimension) -> dict[str, Any]:
    """The JSON Schema of one row of a dimension table (its natural key required, every other column nullable)."""
    prefix = "" if dimension.api == V2 else f"{dimension.api}:"
    return {
        "$schema": _DIALECT,
        "$id": f"urn:airflow-provider-constant-contact:schema:{prefix}dimension:{dimension.name}",
        "title": f"Constant Contact {dimension.api} dimension: {dimension.name}",
        "description": (
            f"One row of the {dimension.name} table the account operator writes beside the events: one JSON "
            "line, one CSV row or one Parquet row, one per natural key in a file; across runs, the latest file's "
            f"row is current. Read from {dimension.source}. Ids are strings; dates are ISO-8601 UTC text with "
            f"milliseconds (Parquet: timestamp[ms, tz=UTC]). Natural key: {', '.join(dimension.key)}."
        ),
        "type": "object",
        "properties": {c.name: property_of(c, required=c.name in dimension.key) for c in dimension.schema},
        "required": list(dimension.key),
        "additionalProperties": False,
        "x-natural-key": list(dimension.key),
    }


def duckdb_columns(report: Report | None) -> dict[str, str]:
    """``{column: DuckDB type}`` of a report of either version, for ``read_json(..., columns=...)`` and
    ``read_csv``."""
    return {c.name: c.kind.duckdb for c in schema_of(report)}


def schema_path(name: str, api: str = V2, directory: Path = DIRECTORY) -> Path:
    """Where the schema of report ``name`` of ``api`` lives: ``<directory>/<name>.json`` (v2),
    ``<directory>/v3/<name>.json`` (v3).

    :param name: schema name.
    :param api: ``v2`` or ``v3``.
    :param directory: the schema folder (default: the shipped one).
    """
    return (directory if api == V2 else directory / api) / f"{name}.json"


def dimension_path(name: str, api: str = V2, directory: Path = DIRECTORY) -> Path:
    """Where the schema of dimension ``name`` of ``api`` lives: ``<directory>[/v3]/dimensions/<name>.json``."""
    return (directory if api == V2 else directory / api) / "dimensions" / f"{name}.json"


def load(name: str, api: str = V2) -> dict[str, Any]:
    """The shipped JSON Schema of report ``name`` of ``api`` (v2: ``sends`` ... ``bounces`` or ``all``; v3: its
    campaign reports or ``activity``)."""
    report_for(name, api)  # a clear error for an unknown name
    return json.loads(schema_path(name, api).read_text(encoding="utf-8"))


def load_dimension(name: str, api: str = V2) -> dict[str, Any]:
    """The shipped JSON Schema of dimension ``name`` of ``api`` (``campaigns``, ``links``; v3
    ``campaign_activities`` too)."""
    if dimension_of(name, api) is None:
        raise ConstantContactInputError(f"no {api} dimension called {name!r}; choose one of "
                                        f"{', '.join(DIMENSIONS.get(api, {}))}")
    return json.loads(dimension_path(name, api).read_text(encoding="utf-8"))


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def render(name: str, api: str = V2) -> str:
    """The text of the schema file of report ``name`` of ``api``, as generated from the catalogue."""
    return _text(json_schema(report_for(name, api)))


def _every(directory: Path) -> list[tuple[Path, str]]:
    """Every schema file of both versions, reports and dimensions, with its generated text."""
    return [*((schema_path(name, api, directory), render(name, api)) for api, names in SCHEMAS.items()
              for name in names),
            *((dimension_path(d.name, api, directory), _text(dimension_schema(d))) for api, table in DIMENSIONS.items()
              for d in table.values())]


def write_all(directory: Path = DIRECTORY) -> list[Path]:
    """(Re)generate every schema file of both versions in ``directory``; returns the paths written.

    :param directory: where to write (default: the package's own folder, for a checkout).
    """
    written = []
    for path, text in _every(directory):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path = DIRECTORY) -> list[Path]:
    """The schema files of both versions in ``directory`` that are missing or differ from the generated ones.

    :param directory: where the schema files are (default: the shipped ones).
    """
    return [path for path, text in _every(directory) if not path.is_file() or path.read_text(encoding="utf-8") != text]
