"""Writers on real files: odd data, the CSV formula guard, Parquet, the atomic commit and the output options."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import sys
from typing import TYPE_CHECKING

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.exceptions import ConstantContactDataError, ConstantContactInputError
from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
from airflow_provider_cc.reports import REPORTS, columns_for
from airflow_provider_cc.sinks import (
    COMPRESSIONS,
    DEFAULT_MAX_XCOM_RECORDS,
    FORMATS,
    check_output_options,
    collect,
    extension,
    write_file,
    write_records,
)

if TYPE_CHECKING:
    from pathlib import Path

OPENS = columns_for(REPORTS["opens"])
CLICKS = columns_for(REPORTS["clicks"])


def opens(n: int, start: int = 0) -> list[dict]:
    return [{"activity_type": "EMAIL_OPEN", "campaign_id": "1100394165000", "contact_id": str(i),
             "email_address": f"c{i}@example.com",
             "open_date": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"}
            for i in range(start, start + n)]


def write(tmp_path: Path, batches: list[list[dict]], file_format: str, columns=OPENS, **options) -> Path:
    path = tmp_path / f"out{extension(file_format, options.get('compression'))}"
    write_file(iter(batches), ObjectStoragePath(f"file://{path}"), file_format=file_format, columns=columns,
               **options)
    return path


def strict_json(line: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


def csv_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def parquet_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


# ---- item 17: data the writers must survive ------------------------------------------------------------------
ODD = {"activity_type": "EMAIL_CLICK", "campaign_id": "1", "contact_id": "2",
       "email_address": "broken\ud83d@example.com", "click_date": "2024-01-01T00:00:00.000Z", "link_id": "3",
       "link_uri": "pair \ud83d\ude00 ok", "score": math.nan, "rank": -math.inf,
       "nested": {"k\udc00": [1, math.nan, {"deep": "\ud800"}], "ok": True}}


def test_jsonl_survives_lone_surrogates_nan_and_nested_values(tmp_path):
    good = opens(3)
    path = write(tmp_path, [good, [ODD], good], "jsonl", columns=CLICKS)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7
    records = [strict_json(line) for line in lines]  # every line is valid JSON: no NaN, no Infinity
    odd = records[3]
    assert odd["email_address"] == "broken\ufffd@example.com"
    assert odd["link_uri"] == "pair \U0001f600 ok", "a surrogate pair is one character"
    assert odd["score"] is None and odd["rank"] is None
    assert odd["nested"] == {"k\ufffd": [1, None, {"deep": "\ufffd"}], "ok": True}
    assert records[:3] == good and records[4:] == good, "clean batches around it are untouched"


def test_clean_jsonl_keeps_todays_bytes(tmp_path):
    batch = [{**r, "campaign_id": "1100394165000", "note": "é ü \u2028"} for r in opens(5)]
    path = write(tmp_path, [batch], "jsonl")
    expected = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in batch)
    assert path.read_bytes() == expected.encode()


def test_csv_survives_odd_values_and_writes_nested_values_as_json(tmp_path):
    path = write(tmp_path, [opens(2), [ODD]], "csv", columns=(*CLICKS, "score", "rank", "nested"))
    rows = csv_rows(path)
    odd = rows[2]
    assert odd["email_address"] == "broken\ufffd@example.com" and odd["link_uri"] == "pair \U0001f600 ok"
    assert odd["score"] == "" and odd["rank"] == "", "NaN and infinities are missing values"
    assert json.loads(odd["nested"]) == {"k\ufffd": [1, None, {"deep": "\ufffd"}], "ok": True}
    assert rows[0]["email_address"] == "c0@example.com"


def test_csv_cells_of_other_types(tmp_path):
    record = {"activity_type": True, "campaign_id": 12, "contact_id": None, "email_address": 1.5,
              "open_date": ["a", 1]}
    rows = csv_rows(write(tmp_path, [[record]], "csv"))
    assert rows == [{"activity_type": "true", "campaign_id": "12", "contact_id": "", "email_address": "1.5",
                     "open_date": '["a",1]'}]


def test_parquet_survives_odd_values(tmp_path):
    odd = {**ODD, "email_address": 42, "link_id": {"nested": math.nan}}
    rows = parquet_rows(write(tmp_path, [[odd]], "parquet", columns=CLICKS))
    assert rows[0]["email_address"] == "42" and rows[0]["link_id"] == '{"nested":null}'
    assert rows[0]["link_uri"] == "pair \U0001f600 ok"


def test_csv_fields_left_out_of_the_file_keep_the_fast_path(tmp_path, monkeypatch):
    """Only the file's cells decide the path: nested values or NaN in other fields cost nothing."""
    from airflow_provider_cc.sinks import cells, csvfile

    exact: list[object] = []
    monkeypatch.setattr(csvfile, "cell_text", lambda value, guard: exact.append(value) or cells.cell_text(value, guard))
    records = [{**r, "extra": {"nested": [1, math.nan]}, "score": math.nan} for r in opens(5)]
    rows = csv_rows(write(tmp_path, [records], "csv"))
    assert exact == [], "no cell went through the exact path"
    assert rows == [{c: r[c] for c in OPENS} for r in opens(5)]
    odd = [{**opens(1)[0], "email_address": 1.5}]
    assert csv_rows(write(tmp_path, [odd], "csv"))[0]["email_address"] == "1.5" and exact == [*odd[0].values()]


def test_parquet_chooses_each_column_s_conversion_once_per_file(tmp_path, monkeypatch):
    from airflow_provider_cc.sinks import parquet

    made: list[int] = []
    real = parquet._converters
    monkeypatch.setattr(parquet, "_converters", lambda schema: made.append(1) or real(schema))
    odd = [{**r, "email_address": 42, "open_date": "2024-01-01 00:00:00.000z"} for r in opens(50)]
    rows = parquet_rows(write(tmp_path, [odd[:20], odd[20:40], odd[40:]], "parquet"))
    assert made == [1] and [r["email_address"] for r in rows] == ["42"] * 50


# ---- item 18: CSV formula injection --------------------------------------------------------------------------
FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "-1", "@SUM(A1:A9)",
            "\tx", "\r=1", "=1,2"]


def formula_records() -> list[dict]:
    return [{"activity_type": "EMAIL_UNSUBSCRIBE", "campaign_id": "1", "contact_id": str(i),
             "email_address": "a@b.c", "unsubscribe_date": "2024-01-01T00:00:00.000Z",
             "unsubscribe_source": "ACTION_BY_CONTACT", "unsubscribe_reason": text}
            for i, text in enumerate(FORMULAS)]


def test_csv_neutralises_formulas_by_default(tmp_path):
    columns = columns_for(REPORTS["unsubscribes"])
    rows = csv_rows(write(tmp_path, [opens(3), formula_records()], "csv", columns=columns))
    reasons = [r["unsubscribe_reason"] for r in rows[3:]]
    assert reasons == ["'" + text for text in FORMULAS], "every trigger, negative numbers included (OWASP)"
    assert [r["email_address"] for r in rows[:3]] == ["c0@example.com", "c1@example.com", "c2@example.com"]


def test_csv_formula_guard_can_be_turned_off_and_jsonl_is_never_altered(tmp_path):
    columns = columns_for(REPORTS["unsubscribes"])
    rows = csv_rows(write(tmp_path, [formula_records()], "csv", columns=columns, csv_formula_guard=False))
    assert [r["unsubscribe_reason"] for r in rows] == FORMULAS
    lines = write(tmp_path, [formula_records()], "jsonl").read_text().splitlines()
    assert [json.loads(line)["unsubscribe_reason"] for line in lines] == FORMULAS


def test_carriage_returns_and_quotes_inside_cells_round_trip(tmp_path):
    texts = ["line\rbreak", "crlf\r\nend", 'say "hi", then\nleave', "plain"]
    records = [{**formula_records()[0], "unsubscribe_reason": text} for text in texts]
    columns = columns_for(REPORTS["unsubscribes"])
    for guard in (True, False):
        rows = csv_rows(write(tmp_path, [records], "csv", columns=columns, csv_formula_guard=guard))
        assert [r["unsubscribe_reason"] for r in rows] == texts


def test_text_that_merely_contains_a_trigger_is_left_alone(tmp_path):
    record = {**formula_records()[0], "unsubscribe_reason": "a=b, c-d @e", "email_address": "x+y@b.c"}
    rows = csv_rows(write(tmp_path, [[record]], "csv", columns=columns_for(REPORTS["unsubscribes"])))
    assert rows[0]["unsubscribe_reason"] == "a=b, c-d @e" and rows[0]["email_address"] == "x+y@b.c"


# ---- Parquet -------------------------------------------------------------------------------------------------
def test_parquet_has_typed_columns_and_the_records(tmp_path):
    records = opens(1200)
    path = write(tmp_path, [records[:500], records[500:1000], records[1000:]], "parquet")
    table = pq.read_table(path)
    assert table.schema.field("open_date").type == pa.timestamp("ms", tz="UTC")
    assert all(table.schema.field(c).type == pa.string() for c in OPENS if c != "open_date")
    rows = table.to_pylist()
    assert [r["contact_id"] for r in rows] == [r["contact_id"] for r in records]
    assert rows[7]["open_date"].isoformat() == "2024-01-01T00:00:07.007000+00:00"


def test_parquet_row_groups_follow_batches_of_pages(tmp_path):
    records = opens(2500)
    batches = [records[i:i + 500] for i in range(0, 2500, 500)]
    path = tmp_path / "rg.parquet"
    write_file(iter(batches), ObjectStoragePath(f"file://{path}"), file_format="parquet", columns=OPENS)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    from airflow_provider_cc.sinks.parquet import ROW_GROUP_ROWS, write_parquet

    many = opens(40_000)
    write_file((many[i:i + 500] for i in range(0, 40_000, 500)), ObjectStoragePath(f"file://{path}"),
               file_format="parquet", columns=OPENS)
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == 40_000 and len(sizes) >= 2 and max(sizes) <= ROW_GROUP_ROWS + 500 <= 17_000, (
        "memory is bounded by a row group of about 16,384 rows (bench: +20 MB at 1 M records), not 65,536")

    with (tmp_path / "small.parquet").open("wb") as f:
        write_parquet(f, iter(batches), OPENS, row_group_rows=1000)
    sizes = [pq.ParquetFile(tmp_path / "small.parquet").metadata.row_group(i).num_rows for i in range(3)]
    assert sizes == [1000, 1000, 500], "a row group closes once the pending pages reach row_group_rows"


@pytest.mark.parametrize(("codec", "stored"), [("snappy", "SNAPPY"), ("zstd", "ZSTD"), ("none", "UNCOMPRESSED")])
def test_parquet_compression_and_identical_bytes_on_a_rerun(tmp_path, codec, stored):
    first = write(tmp_path, [opens(700)], "parquet", parquet_compression=codec).read_bytes()
    second = write(tmp_path, [opens(700)], "parquet", parquet_compression=codec).read_bytes()
    assert first == second
    meta = pq.ParquetFile(io.BytesIO(first)).metadata
    assert meta.row_group(0).column(0).compression == stored
    assert set(meta.metadata) == {b"ARROW:schema"}, "no time, host or run in the file's metadata"


def test_parquet_reads_other_date_forms_and_refuses_unreadable_ones(tmp_path):
    records = opens(3)
    records[0]["open_date"] = "1354817210430"  # epoch milliseconds
    records[1]["open_date"] = "2012-12-06 13:06:14.762z"
    records[2]["open_date"] = "2012-12-06T13:06:14.7629Z"  # finer than the column: cut to the millisecond
    rows = parquet_rows(write(tmp_path, [records], "parquet"))
    assert [r["open_date"].isoformat() for r in rows] == [
        "2012-12-06T18:06:50.430000+00:00", "2012-12-06T13:06:14.762000+00:00", "2012-12-06T13:06:14.762000+00:00"]
    records[0]["open_date"] = "soon"
    with pytest.raises(ConstantContactDataError, match="open_date='soon'"):
        write(tmp_path, [records], "parquet")
    assert list(tmp_path.iterdir()) == [tmp_path / "out.parquet"], "no temporary file left"


def test_an_empty_parquet_file_has_the_schema(tmp_path):
    table = pq.read_table(write(tmp_path, [], "parquet", columns=CLICKS))
    assert table.num_rows == 0 and table.schema.names == list(CLICKS)


# ---- options -------------------------------------------------------------------------------------------------
def test_output_options():
    assert FORMATS == ("jsonl", "csv", "parquet") and COMPRESSIONS == (None, "gzip")
    assert DEFAULT_MAX_XCOM_RECORDS == 1000
    assert extension("parquet", None) == ".parquet" and extension("csv", "gzip") == ".csv.gz"
    check_output_options("parquet", None, 10, parquet_compression="zstd")
    with pytest.raises(ConstantContactInputError, match="gzipped Parquet file is unreadable"):
        check_output_options("parquet", "gzip", 10)
    with pytest.raises(ConstantContactInputError, match="parquet_compression='lz4'"):
        check_output_options("parquet", None, 10, parquet_compression="lz4")
    with pytest.raises(ConstantContactInputError, match="csv_formula_guard='no'"):
        check_output_options("csv", None, 10, csv_formula_guard="no")
    with pytest.raises(ConstantContactInputError, match="max_xcom_records"):
        collect(iter([[{}] * 3]), 2, "label")


def test_parquet_without_pyarrow_is_a_clear_error_before_any_request(emulator, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConstantContactInputError, match=r"needs pyarrow.*\[parquet\]"):
        check_output_options("parquet", None, 10)
    check_output_options("jsonl", None, 10)
    op = ConstantContactCampaignTrackingOperator(task_id="p", campaign_id=emulator.campaign_ids()[0], report="opens",
                                                 destination=f"{tmp_path}/", file_format="parquet",
                                                 created_since="2024-01-01", created_before="2024-01-02")
    with pytest.raises(ConstantContactInputError, match="needs pyarrow"):
        op.execute({})
    assert emulator.requests == [] and list(tmp_path.iterdir()) == []


def test_a_pyarrow_that_cannot_be_imported_is_named_as_such(tmp_path, monkeypatch):
    # The way pyarrow 26 fails beside numpy 1.x: installed, but its import raises ImportError.
    (tmp_path / "pyarrow").mkdir()
    (tmp_path / "pyarrow" / "__init__.py").write_text("raise ImportError('pyarrow requires NumPy 2.0 or newer')\n")
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConstantContactInputError, match="installed but cannot be imported: pyarrow requires NumPy"):
        check_output_options("parquet", None, 10)


# ---- the atomic commit on local disk ---------------------------------------------------------------------------
def test_nothing_is_ever_written_into_an_existing_directory(tmp_path):
    folder = tmp_path / "out.jsonl"
    folder.mkdir()
    with pytest.raises(ConstantContactInputError, match="is an existing directory"):
        write_file(iter([opens(3)]), ObjectStoragePath(f"file://{folder}"), file_format="jsonl")
    assert list(folder.iterdir()) == [] and list(tmp_path.iterdir()) == [folder]


def test_a_directory_appearing_during_the_write_is_not_replaced(tmp_path):
    target = tmp_path / "out.jsonl"

    def batches():
        yield opens(3)
        target.mkdir()
        (target / "keep").write_text("x")

    with pytest.raises(IsADirectoryError):
        write_file(batches(), ObjectStoragePath(f"file://{target}"), file_format="jsonl")
    assert [p.name for p in target.iterdir()] == ["keep"] and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_failure_or_refusal_before_commit_leaves_nothing(tmp_path, file_format):
    def refuse() -> None:
        raise RuntimeError("not this one")

    with pytest.raises(RuntimeError, match="not this one"):
        write_file(iter([opens(3)]), ObjectStoragePath(f"file://{tmp_path}/x"), file_format=file_format,
                   columns=OPENS, before_commit=refuse)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("file_format", FORMATS)
def test_the_data_is_synced_to_disk_before_the_rename(tmp_path, monkeypatch, file_format):
    """Else a crash soon after the commit could leave an empty or partial file at the final path."""
    import os

    from airflow_provider_cc.sinks import commit

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source: str, target: str) -> None:
        events.append(("replace", source))
        real_replace(source, target)

    monkeypatch.setattr(commit.os, "fsync", fsync)
    monkeypatch.setattr(commit.os, "replace", replace)
    write(tmp_path, [opens(700)], file_format)
    (_, synced), (step, renamed) = events
    assert events[0][0] == "fsync" and step == "replace" and synced == renamed, "the complete temporary file"


def test_a_store_without_an_atomic_commit_is_refused_before_writing():
    target = ObjectStoragePath("memory://sinks/out.jsonl")
    with pytest.raises(ConstantContactInputError, match="protocol 'memory' is not one of them"):
        write_file(iter([opens(3)]), target, file_format="jsonl")
    assert not fsspec.filesystem("memory").exists("/sinks")


@pytest.mark.parametrize(("file_format", "compression"), [("jsonl", None), ("csv", "gzip"), ("parquet", None)])
def test_written_counts_records_and_stored_bytes(tmp_path, file_format, compression):
    path = tmp_path / "w"
    written = write_records(iter([opens(600), opens(10)]), ObjectStoragePath(f"file://{path}"),
                            file_format=file_format, compression=compression, columns=OPENS)
    assert written.records == 610 and written.bytes == path.stat().st_size > 0
    if compression:
        assert len(gzip.decompress(path.read_bytes()).splitlines()) == 611
