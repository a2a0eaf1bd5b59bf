"""The typed schema of the catalogue and the shipped JSON Schemas, checked against real and emulated records."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest

from airflow_provider_cc.dimensions import DIMENSIONS
from airflow_provider_cc.emulator import DataConfig, V3Options
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.operators.tracking import (
    ConstantContactCampaignTrackingOperator,
    ConstantContactContactTrackingOperator,
)
from airflow_provider_cc.reports import (
    ACTIVITY_REPORTS,
    ALL,
    CATALOGUE,
    COLUMN_TYPES,
    INTEGER,
    REPORTS,
    STRING,
    TIMESTAMP,
    V2,
    V3,
    V3_CONTACT_ACTIVITY,
    Column,
    columns_for,
    natural_key_of,
    schema_of,
)
from airflow_provider_cc.schemas import (
    SCHEMA_NAMES,
    V3_SCHEMA_NAMES,
    duckdb_columns,
    load,
    property_of,
    render,
    report_for,
    schema_path,
    stale,
    write_all,
)
from airflow_provider_cc.schemas.__main__ import main as schemas_main
from tests.conftest import FAST_RETRY, FIXTURES, Proxy, start_v3

ALL_TIME = {"created_since": "2000-01-01", "created_before": "2100-01-01"}
DAYS = {"created_since": "2024-01-01", "created_before": "2024-01-05"}


def validator(name: str, api: str = V2) -> jsonschema.Draft202012Validator:
    schema = load(name, api)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def assert_valid(name: str, records: list[dict], api: str = V2) -> None:
    check = validator(name, api)
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
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.json")) == sorted(
        [f"{n}.json" for n in SCHEMA_NAMES] + [f"v3/{n}.json" for n in V3_SCHEMA_NAMES]
        + [f"{'' if api == V2 else api + '/'}dimensions/{n}.json" for api, table in DIMENSIONS.items()
           for n in table])
    assert schemas_main(["--check", "--directory", str(tmp_path)]) == 0
    (tmp_path / "opens.json").write_text("{}\n")
    capsys.readouterr()
    assert schemas_main(["--check", "--directory", str(tmp_path)]) == 1
    assert "opens.json" in capsys.readouterr().err


@pytest.mark.parametrize("stale_file", ["v3/opens.json", "v3/activity.json", "v3/unsubscribes.json"])
def test_the_check_covers_the_v3_schemas(tmp_path, capsys, stale_file):
    write_all(tmp_path)
    assert schemas_main(["--check", "--directory", str(tmp_path)]) == 0
    path = tmp_path / stale_file
    schema = json.loads(path.read_text())
    schema["required"].remove("contact_id")  # what a catalogue change the file missed looks like
    path.write_text(json.dumps(schema, indent=2) + "\n")
    capsys.readouterr()
    assert schemas_main(["--check", "--directory", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"stale: {path}", "only that file, named"
    path.unlink()
    assert stale(tmp_path) == [path], "a missing v3 file is stale too"


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


# ---- v3 ---------------------------------------------------------------------------------------------------
V3_WINDOW = {"data_interval_start": "2000-01-01T00:00:00Z", "data_interval_end": "2100-01-01T00:00:00Z"}


@pytest.fixture
def v3emu(monkeypatch, tmp_path):
    """A v3 emulator with a resend per campaign, behind ``constant_contact_default`` (a v3 connection)."""
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig(campaigns=2, contacts=80, activities=80),
                   options=V3Options(resend_every=1, device_interval=1))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.v3_connection_json(
        **{**FAST_RETRY, "oauth_store": str(tmp_path / "tokens")}))
    yield emu
    emu.stop()


@pytest.mark.parametrize("name", V3_SCHEMA_NAMES)
def test_shipped_v3_schema_is_the_generated_one_of_the_v3_row(name):
    assert schema_path(name, V3).read_text(encoding="utf-8") == render(name, V3), (
        "the shipped schema is stale: run python -m airflow_provider_cc.schemas --write")
    report = report_for(name, V3)
    schema = load(name, V3)
    assert report.api == V3 and schema["x-natural-key"] == list(natural_key_of(report))
    assert list(schema["properties"]) == list(report.columns)
    assert {n for n, p in schema["properties"].items() if p.get("format") == "date-time"} == {"created_time"}
    assert schema_path(name, V3).parent.name == "v3" and schema_path(name).parent == schema_path(name, V3).parent.parent


def test_v3_names_follow_the_catalogue_and_unknown_ones_are_refused():
    assert V3_SCHEMA_NAMES == ("sends", "opens", "unique_opens", "clicks", "forwards", "unsubscribes", "bounces",
                               "didnotopens", "activity")
    assert report_for("optouts", V3) is report_for("unsubscribes", V3), "the URL segment names the same schema"
    assert report_for("activity", V3) is V3_CONTACT_ACTIVITY
    with pytest.raises(ConstantContactInputError, match="no v3 schema called 'all'; choose one of sends"):
        load("all", V3)
    with pytest.raises(ConstantContactInputError, match="unknown contact tracking report 'didnotopens'"):
        load("didnotopens")
    with pytest.raises(ConstantContactInputError, match="api='v4' is not one of v2, v3"):
        load("opens", "v4")


def test_the_v3_schema_rejects_what_the_provider_never_writes():
    check = validator("clicks", V3)
    good = {"tracking_activity_type": "em_clicks", "campaign_id": "c", "campaign_activity_id": "a",
            "contact_id": "p", "email_address": "a@b.c", "created_time": "2024-01-01T00:00:00.000Z", "url_id": "1",
            "link_url": "https://x", "first_name": None, "device_type": None}
    assert check.is_valid(good)
    assert not check.is_valid({**good, "url_id": 1}), "ids are strings"
    assert not check.is_valid({**good, "created_time": "yesterday"})
    assert not check.is_valid({**good, "tracking_activity_type": "em_opens"})
    for key in ("url_id", "campaign_id", "created_time"):
        assert not check.is_valid({k: v for k, v in good.items() if k != key}), key
    assert validator("unique_opens", V3).is_valid({**good, "tracking_activity_type": "em_opens"})
    activity = validator("activity", V3)
    seen = {"tracking_activity_type": "em_optouts", "contact_id": "p", "campaign_activity_id": "a",
            "created_time": "2024-01-01T00:00:00.000Z", "campaign_activity_name": None}
    assert activity.is_valid(seen)
    assert not activity.is_valid({**seen, "tracking_activity_type": "em_didnotopens"}), "not a contact activity"


def test_every_v3_record_the_emulator_serves_validates_in_the_files_written(v3emu, tmp_path):
    root = f"file://{tmp_path}/"
    view = v3emu.v3.view
    campaigns = [c for c in view.campaigns.values() if c.status == "SENT"]
    served: dict[str, list[dict]] = {}
    for campaign in campaigns:
        for report in CATALOGUE[V3].values():
            ConstantContactCampaignTrackingOperator(task_id=report.name, campaign_id=campaign.id, report=report.name,
                                                    destination=root).execute(V3_WINDOW)
            for activity in view.reported(campaign):
                served.setdefault(report.name, []).extend(
                    {**r, "campaign_id": campaign.id} for r in v3emu.v3_records(activity.id, report.segment))
    assert len({a.role for c in campaigns for a in view.reported(c)}) == 2, "primary emails and resends"
    written: dict[str, list[dict]] = {}
    for path in sorted(tmp_path.glob("campaign/*/*/*/*.jsonl")):
        written.setdefault(path.relative_to(tmp_path).parts[1], []).extend(
            json.loads(line) for line in path.read_text().splitlines())
    for name, records in written.items():
        assert_valid(name, records, V3)
    key = json.dumps
    assert {n: sorted(map(key, rs)) for n, rs in written.items()} == {
        n: sorted(map(key, rs)) for n, rs in served.items()}, "every record served, in a file"
    assert all(served[r.name] for r in CATALOGUE[V3].values()), "every report has records"
    # A contact's activity: every type at once, and one report, both files of the activity schema.
    for report, contact in (("all", served["clicks"][0]["contact_id"]), ("opens", served["opens"][0]["contact_id"])):
        ConstantContactContactTrackingOperator(task_id=report, contact_id=contact, report=report,
                                               destination=root).execute(V3_WINDOW)
    (everything,) = tmp_path.glob("contact/all/*/*.jsonl")
    (opens,) = tmp_path.glob("contact/opens/*/*.jsonl")
    rows = [json.loads(line) for line in everything.read_text().splitlines()]
    assert {r["tracking_activity_type"] for r in rows} >= {"em_sends", "em_clicks"}
    assert_valid("activity", rows, V3)
    rows = [json.loads(line) for line in opens.read_text().splitlines()]
    assert rows and {r["tracking_activity_type"] for r in rows} == {"em_opens"}
    assert_valid("activity", rows, V3)


def _v3_samples() -> list[Path]:
    """Every v3 tracking page in the SDK fixtures (``{"tracking_activities": [...]}``)."""
    return [p for p in sorted(FIXTURES.rglob("*.json")) if '"tracking_activities"' in p.read_text()]


def test_the_v3_samples_are_one_per_report():
    assert sorted(p.stem.removeprefix("tracking_") for p in _v3_samples()) == sorted(
        r.segment for r in CATALOGUE[V3].values())


@pytest.mark.parametrize("sample", _v3_samples(), ids=lambda p: p.stem)
def test_records_of_every_v3_sample_validate_after_the_provider(v3emu, monkeypatch, tmp_path, sample):
    """The docs' record, served by a proxy in the emulator's place, through the operator to XCom and a file."""
    body = json.loads(sample.read_text())
    segment = sample.stem.removeprefix("tracking_")
    report = report_for(segment, V3)
    aid = v3emu.v3_activity_ids()[0]
    cid = v3emu.v3.view.activities[aid].campaign.id

    def mutate(path: str, query: dict, status: int, answer: Any) -> tuple[int, Any]:
        return (200, body) if path == f"/v3/reports/email_reports/{aid}/tracking/{segment}" else (status, answer)

    proxy = Proxy(v3emu, mutate).start()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", json.dumps({
            **v3emu.v3_connection(**{**FAST_RETRY, "oauth_store": str(tmp_path / "tokens")}), "host": proxy.url}))
        records = ConstantContactCampaignTrackingOperator(task_id="x", campaign_id=aid, report=report.name
                                                          ).execute(V3_WINDOW)
        ConstantContactCampaignTrackingOperator(task_id="f", campaign_id=aid, report=report.name,
                                                destination=f"file://{tmp_path}/out/").execute(V3_WINDOW)
    finally:
        proxy.stop()
    assert records == [{**r, "campaign_id": cid} for r in body["tracking_activities"]]
    assert_valid(report.name, records, V3)
    (path,) = (tmp_path / "out").rglob("*.jsonl")
    assert_valid(report.name, [json.loads(line) for line in path.read_text().splitlines()], V3)
