"""JSON Schemas of the output records, generated from the catalogue and shipped as ``schemas/<report>.json``.

One schema per report (``sends`` ... ``bounces``, and ``all`` for the mixed contact report). They describe
one JSON line exactly as the provider writes it (and one CSV / Parquet row): ids as strings, dates as the
API's ISO-8601 UTC text, fields the API adds beyond the catalogue allowed. After changing the catalogue,
regenerate the shipped files with ``python -m airflow_provider_cc.schemas --write`` (in a checkout);
``--check`` only compares them (exit 1 when stale), and a test checks they match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_provider_cc.reports import (
    ACTIVITY_REPORTS,
    ALL,
    COMMON_COLUMNS,
    CONTACT_REPORT_NAMES,
    Column,
    Report,
    contact_report,
    natural_key_of,
    schema_of,
)

DIRECTORY = Path(__file__).resolve().parent
# One schema per report a file can hold: the contact reports (every activity report, and "all").
SCHEMA_NAMES: tuple[str, ...] = CONTACT_REPORT_NAMES
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


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


def json_schema(report: Report | None) -> dict[str, Any]:
    """The JSON Schema of one output record of ``report`` (``None``: the mixed ``all`` report)."""
    name = ALL if report is None else report.name
    key = natural_key_of(report)
    required = list(dict.fromkeys((*COMMON_COLUMNS, *key))) if report is not None else list(COMMON_COLUMNS)
    properties = {c.name: property_of(c, required=c.name in required) for c in schema_of(report)}
    if report is not None:
        properties["activity_type"] = {"const": report.activity_type, **properties["activity_type"]}
    else:
        properties["activity_type"] = {"enum": [r.activity_type for r in ACTIVITY_REPORTS],
                                       **properties["activity_type"]}
    schema: dict[str, Any] = {
        "$schema": _DIALECT,
        "$id": f"urn:airflow-provider-constant-contact:schema:{name}",
        "title": f"Constant Contact v2 tracking record: {name}",
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


def duckdb_columns(report: Report | None) -> dict[str, str]:
    """``{column: DuckDB type}`` of a report, for ``read_json(..., columns=...)`` and ``read_csv``."""
    return {c.name: c.kind.duckdb for c in schema_of(report)}


def schema_path(name: str) -> Path:
    """Where the shipped schema of report ``name`` lives."""
    return DIRECTORY / f"{name}.json"


def load(name: str) -> dict[str, Any]:
    """The shipped JSON Schema of report ``name`` (``sends`` ... ``bounces`` or ``all``)."""
    contact_report(name)  # a clear error for an unknown name
    return json.loads(schema_path(name).read_text(encoding="utf-8"))


def render(name: str) -> str:
    """The text of the schema file of report ``name``, as generated from the catalogue."""
    return json.dumps(json_schema(contact_report(name)), indent=2, ensure_ascii=False) + "\n"


def write_all(directory: Path = DIRECTORY) -> list[Path]:
    """(Re)generate every schema file in ``directory``; returns the paths written.

    :param directory: where to write (default: the package's own folder, for a checkout).
    """
    written = []
    for name in SCHEMA_NAMES:
        path = directory / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path = DIRECTORY) -> list[Path]:
    """The schema files in ``directory`` that are missing or differ from the generated ones.

    :param directory: where the schema files are (default: the shipped ones).
    """
    paths = [directory / f"{name}.json" for name in SCHEMA_NAMES]
    return [path for name, path in zip(SCHEMA_NAMES, paths, strict=True)
            if not path.is_file() or path.read_text(encoding="utf-8") != render(name)]
