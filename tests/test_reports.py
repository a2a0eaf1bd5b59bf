"""The typed schema of the catalogue and the shipped JSON Schemas, checked against real and emulated records."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import jsonschema
import pytest

from airflow_provider_cc.operators.tracking import (
    ConstantContactCampaignTrackingOperator,
    ConstantContactContactTrackingOperator,
)
from airflow_provider_cc.reports import (
    ACTIVITY_REPORTS,
    ALL,
    COLUMN_TYPES,
    INTEGER,
    REPORTS,
    STRING,
    TIMESTAMP,
    Column,
    columns_for,
    natural_key_of,
    schema_of,
)
from airflow_provider_cc.schemas import SCHEMA_NAMES, duckdb_columns, load, property_of, render, schema_path
from airflow_provider_cc.schemas.__main__ import main as schemas_main
from tests.conftest import FIXTURES

ALL_TIME = {"created_since": "2000-01-01", "created_before": "2100-01-01"}
DAYS = {"created_since": "2024-01-01", "created_before": "2024-01-05"}


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def assert_valid(name: str, records: list[dict]) -> None:
    check = validator(name)
    for record in records:
        errors = [e.message for e in check.iter_errors(record)]
        assert not errors, f"{name}: {record} -> {errors}"


def test_schema_follows_the_csv_columns_with_types():
    for report in (*ACTIVITY_REPORTS, None):
        schema = schema_of(report)
        assert tuple(c.name for c in schema) == columns_for(report)
        assert all(isinstance(c, Column) and c.description for c in schema)
        assert {c.name for c in schema if c.type == "timestamp"} == {c for c in columns_for(report)
                                                                      if c.endswith("_date")}
        assert {c.type for c in schema} <= {"string", "timestamp"}, "ids and codes are strings"


def test_natural_keys_follow_the_reference_dedup_note():
    assert natural_key_of(REPORTS["opens"]) == ("activity_type", "campaign_id", "contact_id", "open_date")
    assert natural_key_of(REPORTS["clicks"]) == ("activity_type", "campaign_id", "contact_id", "click_date",
                                                 "link_id")
    mixed = natural_key_of(None)
    assert {"link_id", *(r.date_field for r in ACTIVITY_REPORTS)} <= set(mixed)
    for report in (*ACTIVITY_REPORTS, None):
        assert set(natural_key_of(report)) <= set(columns_for(report))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_shipped_schema_is_the_generated_one(name):
    assert schema_path(name).read_text(encoding="utf-8") == render(name), (
        "the shipped schema is stale: run python -m airflow_provider_cc.schemas --write")
    assert load(name)["x-natural-key"] == list(natural_key_of(None if name == ALL else REPORTS[name]))


@pytest.mark.parametrize(("kind", "value"), [(STRING, {"type": "string"}), (INTEGER, {"type": "integer"}),
                                            (TIMESTAMP, {"type": "string", "format": "date-time"})])
def test_one_type_table_gives_every_column_type_its_json_schema_and_null_when_optional(kind, value):
    assert property_of(Column("c", kind), required=True) == value
    assert property_of(Column("c", kind), required=False) == {**value, "type": [value["type"], "null"]}
    assert set(COLUMN_TYPES) == {STRING, TIMESTAMP, INTEGER}
    with pytest.raises(ValueError, match="type 'float' is not one of string, timestamp, integer"):
        Column("c", "float")


def test_optional_dates_of_the_mixed_report_may_be_null():
    check = validator(ALL)
    click = {"activity_type": "EMAIL_CLICK", "campaign_id": "1", "contact_id": "2", "email_address": "a@b.c",
             "click_date": "2024-01-01T00:00:00.000Z", "link_id": "3"}
    assert check.is_valid({**click, "open_date": None, "link_uri": None})
    assert not check.is_valid({**click, "open_date": "yesterday"})


def test_the_schema_command_checks_without_writing_and_writes_only_when_asked(tmp_path, capsys):
    assert schemas_main(["--check"]) == 0, "the shipped schemas are the generated ones"
    with pytest.raises(SystemExit) as stop:
        schemas_main(["--directory", str(tmp_path)])
    assert stop.value.code == 2 and list(tmp_path.iterdir()) == [], "no action given: nothing written"
    assert schemas_main(["--check", "--directory", str(tmp_path)]) == 1, "missing files are stale"
    assert schemas_main(["--write", "--directory", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.iterdir()) == sorted(SCHEMA_NAMES)
    assert schemas_main(["--check", "--directory", str(tmp_path)]) == 0
    (tmp_path / "opens.json").write_text("{}\n")
    capsys.readouterr()
    assert schemas_main(["--check", "--directory", str(tmp_path)]) == 1
    assert "opens.json" in capsys.readouterr().err


def test_the_schema_rejects_what_the_provider_never_writes():
    check = validator("clicks")
    good = {"activity_type": "EMAIL_CLICK", "campaign_id": "1", "contact_id": "2", "email_address": "a@b.c",
            "click_date": "2024-01-01T00:00:00.000Z", "link_id": "3"}
    assert check.is_valid(good)
    assert not check.is_valid({**good, "campaign_id": 1}), "ids are strings"
    assert not check.is_valid({**good, "click_date": "yesterday"})
    assert not check.is_valid({**good, "activity_type": "EMAIL_OPEN"})
    assert not check.is_valid({k: v for k, v in good.items() if k != "link_id"}), "link_id is in the key"
    mixed = validator(ALL)
    assert not mixed.is_valid({k: v for k, v in good.items() if k != "click_date"})


def _fixture_cases() -> list[tuple[str, str, str]]:
    """(file, kind, report) for every tracking sample in the SDK fixtures."""
    php = {"get_sends": "sends", "get_opens": "opens", "get_clicks": "clicks", "get_forwards": "forwards",
           "get_opt_outs": "unsubscribes", "get_bounces": "bounces"}
    cases = [(f"php-sdk/{stem}.json", "campaign", report) for stem, report in php.items()]
    for kind in ("campaign", "contact"):
        cases += [(f"ruby-sdk/{kind}_tracking_{r}_response.json", kind, r) for r in REPORTS]
    return cases


@pytest.mark.parametrize(("fixture", "kind", "report"), _fixture_cases())
def test_records_from_every_sdk_fixture_validate_after_the_provider(scripted, fixture, kind, report):
    body = json.loads((FIXTURES / fixture).read_text())
    body["meta"]["pagination"] = {}  # one page: the fixtures' next links point at older paths
    if kind == "campaign":
        scripted.add(f"/v2/emailmarketing/campaigns/1100394165290/tracking/{report}", 200, body)
        op = ConstantContactCampaignTrackingOperator(task_id="t", campaign_id="1100394165290", report=report,
                                                     **ALL_TIME)
    else:
        scripted.add(f"/v2/contacts/21/tracking/{report}", 200, body)
        op = ConstantContactContactTrackingOperator(task_id="t", contact_id="21", report=report, **ALL_TIME)
    records = op.execute({})
    assert len(records) == len(body["results"]) > 0
    assert_valid(report, records)
    assert_valid(ALL, records)


def test_emulator_output_files_validate(emulator, tmp_path):
    root = f"file://{tmp_path}/"
    cid = emulator.campaign_ids()[0]
    for report in REPORTS:
        ConstantContactCampaignTrackingOperator(task_id=report, campaign_id=cid, report=report, destination=root,
                                                **DAYS).execute({})
    contact = emulator.records(cid, "clicks")[0]["contact_id"]
    ConstantContactContactTrackingOperator(task_id="all", contact_id=contact, destination=root, **DAYS).execute({})
    checked = 0
    for path in sorted(Path(tmp_path).rglob("*.jsonl")):
        report = path.relative_to(tmp_path).parts[1]
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert_valid(report, records)
        checked += len(records)
    assert checked > 100


def test_dates_the_api_sent_in_other_forms_are_written_in_the_schema_s_form(scripted, tmp_path):
    """Epoch milliseconds, a space, lowercase z: read for the window and written as canonical text, so the
    JSON lines validate (format date-time) and a typed loader reads the CSV (TIMESTAMPTZ)."""
    forms = ["1704110400123", 1704110400123, "2024-01-01 12:00:00.123Z", "2024-01-01T12:00:00.123z",
             "2024-01-01T13:00:00.123+01:00", "2024-01-01T12:00:00.1239Z"]
    results = [{"activity_type": "EMAIL_OPEN", "campaign_id": "1", "contact_id": str(i), "email_address": "a@b.c",
                "open_date": form} for i, form in enumerate(forms)]
    scripted.add("/v2/emailmarketing/campaigns/1/tracking/opens", 200, {"meta": {"pagination": {}}, "results": results})
    for file_format in ("jsonl", "csv"):
        ConstantContactCampaignTrackingOperator(task_id=file_format, campaign_id="1", report="opens",
                                                destination=f"{tmp_path}/{file_format}/", file_format=file_format,
                                                **DAYS).execute({})
    (jsonl,) = (tmp_path / "jsonl").rglob("*.jsonl")
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["open_date"] for r in records] == ["2024-01-01T12:00:00.123Z"] * len(forms)
    assert_valid("opens", records)
    (csv_file,) = (tmp_path / "csv").rglob("*.csv")
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in duckdb_columns(REPORTS["opens"]).items()) + "}"
    with duckdb.connect() as db:
        rows = db.execute(f"SELECT DISTINCT open_date FROM read_csv('{csv_file}', header = true, "
                          f"columns = {columns})").fetchall()
    assert rows == [(datetime(2024, 1, 1, 12, 0, 0, 123000, tzinfo=timezone.utc),)]
