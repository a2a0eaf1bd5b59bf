"""A real engine reads what the operators wrote: DuckDB over a root, with hive partitioning, per format.

The operators pull 2 campaigns x 3 reports x 2 windows into one root per format; DuckDB must read back
exactly the emulator's records, typed (ids VARCHAR, dates TIMESTAMP WITH TIME ZONE), and deduplicate on the
natural key when an overlapping window was written too. The SQL here is the recipe in
docs/storage-and-formats.md.
"""

from __future__ import annotations

from datetime import timezone
from typing import TYPE_CHECKING, Any

import duckdb
import pendulum
import pytest

from airflow_provider_cc.emulator import DataConfig, V3Options
from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
from airflow_provider_cc.reports import REPORTS, V3, natural_key_of, report_of, schema_of
from airflow_provider_cc.schemas import duckdb_columns
from airflow_provider_cc.window import format_api
from tests.conftest import FAST_RETRY, as_output, start_emulator, start_v3

if TYPE_CHECKING:
    from pathlib import Path

REPORT_NAMES = ("opens", "clicks", "bounces")
DAYS = [pendulum.datetime(2024, 1, d) for d in (1, 2, 3)]
WINDOWS = [(DAYS[0], DAYS[1]), (DAYS[1], DAYS[2])]
OVERLAP = (DAYS[0].add(hours=12), DAYS[1].add(hours=12))
EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}


def source(file_format: str, files: str, report: str) -> str:
    """The DuckDB table function over a report's files: hive partitions (campaign_id=...) read as text."""
    hive = "hive_partitioning = true, hive_types = {'campaign_id': VARCHAR}, filename = true"
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in duckdb_columns(REPORTS[report]).items()) + "}"
    if file_format == "jsonl":
        return f"read_json('{files}', format = 'newline_delimited', columns = {columns}, {hive})"
    if file_format == "csv":
        return f"read_csv('{files}', header = true, columns = {columns}, {hive})"
    return f"read_parquet('{files}', {hive})"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run the operators once for every format; yield (emulator, roots by format)."""
    monkeypatch = pytest.MonkeyPatch()
    emu = start_emulator(monkeypatch, DataConfig(campaigns=2, contacts=300, activities=400))
    roots: dict[str, Path] = {}
    try:
        for file_format in EXTENSIONS:
            root = tmp_path_factory.mktemp(file_format)
            roots[file_format] = root
            for cid in emu.campaign_ids():
                for report in REPORT_NAMES:
                    op = ConstantContactCampaignTrackingOperator(
                        task_id=f"{report}_{cid}", campaign_id=cid, report=report, destination=f"file://{root}/",
                        file_format=file_format, limit=60)
                    for start, end in WINDOWS:
                        op.execute({"data_interval_start": start, "data_interval_end": end})
        yield emu, roots
    finally:
        emu.stop()
        monkeypatch.undo()


def expected(emu: Any, report: str, file_format: str) -> list[tuple]:
    """The emulator's records of both windows as rows; in CSV an empty cell is also a missing value (NULL)."""
    names = [c.name for c in schema_of(REPORTS[report])]
    rows = []
    for cid in emu.campaign_ids():
        records = as_output(emu.records(cid, report, created_since=format_api(DAYS[0]),
                                        created_before=format_api(DAYS[2])))
        rows += [tuple(None if file_format == "csv" and r.get(n) == "" else r.get(n) for n in names)
                 for r in records]
    return sorted(rows, key=repr)


def loaded(con: Any, sql: str, report: str) -> list[tuple]:
    names = [c.name for c in schema_of(REPORTS[report])]
    rows = con.execute(f"SELECT {', '.join(names)} FROM ({sql})").fetchall()
    dates = {i for i, c in enumerate(schema_of(REPORTS[report])) if c.type == "timestamp"}
    return sorted((tuple(format_api(v.astimezone(timezone.utc)) if i in dates and v is not None else v
                         for i, v in enumerate(row)) for row in rows), key=repr)


@pytest.fixture
def con() -> Any:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


@pytest.mark.parametrize("file_format", list(EXTENSIONS))
@pytest.mark.parametrize("report", REPORT_NAMES)
def test_duckdb_reads_exactly_the_emulators_records_typed(written, con, file_format, report):
    emu, roots = written
    files = f"{roots[file_format]}/campaign/{report}/*/*.{EXTENSIONS[file_format]}"
    sql = f"SELECT * FROM {source(file_format, files, report)}"
    rows = loaded(con, sql, report)
    assert rows == expected(emu, report, file_format) and len(rows) > 10
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {sql})").fetchall())
    date_field = REPORTS[report].date_field
    assert types[date_field] == "TIMESTAMP WITH TIME ZONE"
    assert types["campaign_id"] == types["contact_id"] == "VARCHAR"
    assert {r[0] for r in con.execute(f"SELECT DISTINCT campaign_id FROM ({sql})").fetchall()} == set(
        emu.campaign_ids()), "every partition read"


@pytest.mark.parametrize("file_format", list(EXTENSIONS))
def test_dedup_on_the_natural_key_over_overlapping_windows(written, con, tmp_path, file_format):
    emu, _ = written
    report = "clicks"
    for cid in emu.campaign_ids():  # both windows, and a third one overlapping them, in the same partitions
        op = ConstantContactCampaignTrackingOperator(task_id="overlap", campaign_id=cid, report=report,
                                                     destination=f"file://{tmp_path}/", file_format=file_format)
        for start, end in (*WINDOWS, OVERLAP):
            op.execute({"data_interval_start": start, "data_interval_end": end})
    files = f"{tmp_path}/campaign/{report}/*/*.{EXTENSIONS[file_format]}"
    raw = f"SELECT * FROM {source(file_format, files, report)}"
    key = ", ".join(natural_key_of(REPORTS[report]))
    deduped = f"{raw} QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY filename DESC) = 1"
    assert len(loaded(con, raw, report)) > len(expected(emu, report, file_format)), "the overlap brought duplicates"
    assert loaded(con, deduped, report) == expected(emu, report, file_format)


# ---- v3: the same recipe over files written on a v3 connection ---------------------------------------------
V3_REPORT_NAMES = ("opens", "clicks", "bounces", "unique_opens")
V3_WINDOW = {"data_interval_start": "2000-01-01T00:00:00Z", "data_interval_end": "2100-01-01T00:00:00Z"}


def v3_source(file_format: str, files: str, report: str) -> str:
    """:func:`source` for v3 files: two partition levels (campaign_id=.../campaign_activity_id=...)."""
    hive = ("hive_partitioning = true, hive_types = {'campaign_id': VARCHAR, 'campaign_activity_id': VARCHAR}, "
            "filename = true")
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in duckdb_columns(report_of(report, V3)).items()) + "}"
    if file_format == "jsonl":
        return f"read_json('{files}', format = 'newline_delimited', columns = {columns}, {hive})"
    if file_format == "csv":
        return f"read_csv('{files}', header = true, columns = {columns}, {hive})"
    return f"read_parquet('{files}', {hive})"


@pytest.fixture(scope="module")
def written_v3(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tracking operator on a v3 connection, every format: (emulator, roots by format)."""
    monkeypatch = pytest.MonkeyPatch()
    tokens = str(tmp_path_factory.mktemp("tokens"))
    emu = start_v3(monkeypatch, tokens, DataConfig(campaigns=2, contacts=120, activities=150),
                   options=V3Options(resend_every=1, device_interval=1))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT",
                       emu.v3_connection_json(**{**FAST_RETRY, "oauth_store": tokens}))
    roots: dict[str, Path] = {}
    try:
        for file_format in EXTENSIONS:
            roots[file_format] = tmp_path_factory.mktemp(f"v3{file_format}")
            for campaign in v3_campaigns(emu):
                for report in V3_REPORT_NAMES:
                    ConstantContactCampaignTrackingOperator(
                        task_id=f"{report}_{campaign.id}", campaign_id=campaign.id, report=report,
                        destination=f"file://{roots[file_format]}/", file_format=file_format, limit=40,
                    ).execute(V3_WINDOW)
        yield emu, roots
    finally:
        emu.stop()
        monkeypatch.undo()


def v3_campaigns(emu: Any) -> list[Any]:
    return [c for c in emu.v3.view.campaigns.values() if c.status == "SENT"]


def v3_expected(emu: Any, report: str, file_format: str) -> list[tuple]:
    """Every record the emulator serves for the report's activities, with the campaign the provider adds."""
    names = report_of(report, V3).columns
    rows = []
    for campaign in v3_campaigns(emu):
        for activity in emu.v3.view.reported(campaign):
            for record in emu.v3_records(activity.id, report_of(report, V3).segment):
                record = {**record, "campaign_id": campaign.id}
                rows.append(tuple(None if file_format == "csv" and record.get(n) == "" else record.get(n)
                                  for n in names))
    return sorted(rows, key=repr)


def v3_loaded(con: Any, sql: str, report: str) -> list[tuple]:
    schema = schema_of(report_of(report, V3))
    rows = con.execute(f"SELECT {', '.join(c.name for c in schema)} FROM ({sql})").fetchall()
    dates = {i for i, c in enumerate(schema) if c.type == "timestamp"}
    return sorted((tuple(format_api(v.astimezone(timezone.utc)) if i in dates and v is not None else v
                         for i, v in enumerate(row)) for row in rows), key=repr)


@pytest.mark.parametrize("file_format", list(EXTENSIONS))
@pytest.mark.parametrize("report", V3_REPORT_NAMES)
def test_duckdb_reads_the_v3_files_typed(written_v3, con, file_format, report):
    emu, roots = written_v3
    files = f"{roots[file_format]}/campaign/{report}/*/*/*.{EXTENSIONS[file_format]}"
    sql = f"SELECT * FROM {v3_source(file_format, files, report)}"
    rows = v3_loaded(con, sql, report)
    assert rows == v3_expected(emu, report, file_format) and len(rows) > 5
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {sql})").fetchall())
    assert types["created_time"] == "TIMESTAMP WITH TIME ZONE"
    ids = ["campaign_id", "campaign_activity_id", "contact_id", *(["url_id"] if report == "clicks" else [])]
    assert {types[c] for c in ids} == {"VARCHAR"}
    activities = {a.id for c in v3_campaigns(emu) for a in emu.v3.view.reported(c)}
    assert {r[0] for r in con.execute(f"SELECT DISTINCT campaign_activity_id FROM ({sql})").fetchall()} == \
        activities and len(activities) >= 2, "every activity's partition read"
