"""The switch from v2 to v3 without a gap, over real HTTP against one emulator serving one account through both
APIs: the v2 account operator's daily runs before day D, the v3 one's from D, the cross-reference operator once,
then DuckDB reads the documented views (switchover.duckdb_views, the SQL of docs/switch-over.md): every event
the emulator holds in the whole range exactly once, under its v3 ids, none missing at D and none twice, also
where the two DAGs' runs overlap around D."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from airflow_provider_cc.operators.xrefs import ConstantContactCampaignXrefsOperator
from airflow_provider_cc.reports import DEFAULT_REPORTS, V2, report_of
from airflow_provider_cc.switchover import SHARED_EXTRAS, duckdb_views
from airflow_provider_cc.window import format_api, record_instant
from tests.conftest import FAST_RETRY, start_v3

DOCS = Path(__file__).resolve().parent.parent / "docs" / "switch-over.md"
REPORTS = DEFAULT_REPORTS[V2]
DAY = timedelta(days=1)
# Weekly sends on Mondays 15:00 from 2022-02-07, every third SENT campaign served on v3 as the previous one's
# resend (the v2 campaign sent 02-21 is the resend of 02-14's). D is a Tuesday: the v2 days hold the sends of
# 02-28, the v3 days those of 03-07, and the resend's late activity falls on both sides.
D = datetime(2022, 3, 1, tzinfo=timezone.utc)
V2_DAYS, V3_DAYS = 7, 8
FIRST, LAST = D - V2_DAYS * DAY, D + V3_DAYS * DAY
COLUMNS = ("tracking_activity_type", "campaign_id", "campaign_activity_id", "contact_id", "email_address",
           "created_time")


def both_apis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data: DataConfig) -> Emulator:
    """One emulator; ``constant_contact_default`` is its v2 API, ``constant_contact_v3_default`` its v3 API."""
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), data, options=V3Options(resend_every=3))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.connection_json(**FAST_RETRY))
    return emu


def daily(root: Path, first: datetime, count: int, conn_id: str, **kwargs: Any) -> None:
    """The daily account DAG's runs from ``first``, on a connection (the DAG moves by changing it)."""
    op = ConstantContactAccountTrackingOperator(task_id="account", destination=f"file://{root}/",
                                                constant_contact_conn_id=conn_id, limit=40, **kwargs)
    for k in range(count):
        start = first + k * DAY
        op.execute({"data_interval_start": start, "data_interval_end": start + DAY})


def switch(root: Path, *, v2_days: tuple[datetime, int] = (FIRST, V2_DAYS),
           v3_days: tuple[datetime, int] = (D, V3_DAYS), **kwargs: Any) -> dict[str, Any]:
    daily(root, *v2_days, "constant_contact_default", **kwargs)
    daily(root, *v3_days, "constant_contact_v3_default", **kwargs)
    return ConstantContactCampaignXrefsOperator(task_id="xrefs", destination=f"file://{root}/").execute({})


def held(emu: Emulator, report: str, low: datetime = FIRST, high: datetime = LAST) -> Counter:
    """The events the emulator holds for a report in ``[low, high)``, as the views' columns, counted."""
    extras = tuple(SHARED_EXTRAS.get(report, {}))
    found: Counter = Counter()
    for campaign in emu.v3.view.campaigns.values():
        if campaign.status != "SENT":
            continue
        for activity in emu.v3.view.reported(campaign):
            for record in emu.v3_records(activity.id, report_of(report, "v3").segment):
                if low <= record_instant(record["created_time"]) < high:
                    row = {**record, "campaign_id": campaign.id}
                    found[tuple(row.get(c) for c in (*COLUMNS, *extras))] += 1
    return found


def viewed(con: Any, sql: str, report: str) -> Counter:
    extras = tuple(SHARED_EXTRAS.get(report, {}))
    rows = con.execute(f"SELECT {', '.join((*COLUMNS, *extras))} FROM ({sql})").fetchall()
    return Counter(tuple(format_api(v.astimezone(timezone.utc)) if isinstance(v, datetime) else v for v in row)
                   for row in rows)


@pytest.fixture(scope="module")
def switched(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The switch done once: (emulator, root, the xrefs operator's answer)."""
    monkeypatch = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("switch")
    emu = both_apis(monkeypatch, tmp, DataConfig.realistic(weeks=6, activities=80))
    try:
        answer = switch(tmp / "root")
        yield emu, tmp / "root", answer
    finally:
        emu.stop()
        monkeypatch.undo()


@pytest.fixture
def con() -> Any:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


@pytest.mark.parametrize("report", REPORTS)
def test_every_activity_of_the_range_is_in_the_view_exactly_once(switched, con, report):
    emu, root, _ = switched
    sql = duckdb_views(f"{root}/", D)[report]
    got, want = viewed(con, sql, report), held(emu, report)
    assert got == want and want, "every event once: none missing, none twice"
    sides = dict(con.execute(f"SELECT api, count(*) FROM ({sql}) GROUP BY api").fetchall())
    assert sides.get("v2") and sides.get("v3"), "both APIs' files are read"
    nulls = con.execute(f"SELECT count(*) FROM ({sql}) WHERE campaign_activity_id IS NULL OR contact_id IS NULL"
                        ).fetchone()
    assert nulls == (0,), "every v2 id mapped"


def test_no_gap_and_nothing_twice_at_d(switched, con):
    emu, root, _ = switched
    for report in ("sends", "opens", "clicks"):
        sql = duckdb_views(f"{root}/", D)[report]
        # The day either side of D: v2 files up to D, v3 files from D, the emulator's events around D exactly.
        around = viewed(con, f"SELECT * FROM ({sql}) WHERE created_time >= TIMESTAMPTZ '{format_api(D - DAY)}' "
                             f"AND created_time < TIMESTAMPTZ '{format_api(D + DAY)}'", report)
        assert around == held(emu, report, D - DAY, D + DAY) and around, report
        last_v2, first_v3 = con.execute(
            f"SELECT max(created_time) FILTER (api = 'v2'), min(created_time) FILTER (api = 'v3') FROM ({sql})"
        ).fetchone()
        assert last_v2 < D <= first_v3, report


def test_a_v2_resend_is_the_v3_resend_activity_in_the_view(switched, con):
    emu, root, _ = switched
    resend = next(a for a in emu.v3.view.activities.values() if a.role == "resend" and a.source is not None
                  and a.source.run_ms < D.timestamp() * 1000)  # the v2 campaign of 02-21
    sql = duckdb_views(f"{root}/", D)["opens"]
    rows = con.execute(f"SELECT api, campaign_id, v2_campaign_id, count(*) FROM ({sql}) WHERE campaign_activity_id "
                       f"= '{resend.id}' GROUP BY ALL ORDER BY api").fetchall()
    assert [r[:3] for r in rows] == [("v2", resend.campaign.id, resend.source.id), ("v3", resend.campaign.id, None)]


def test_overlapping_runs_around_d_still_give_each_activity_once(monkeypatch, tmp_path, con):
    """The v2 DAG ran one day too many and the v3 DAG started a day early: the files overlap, the views do not."""
    emu = both_apis(monkeypatch, tmp_path, DataConfig.realistic(weeks=6, activities=60))
    try:
        root = tmp_path / "root"
        switch(root, v2_days=(D - 2 * DAY, 3), v3_days=(D - DAY, 3), reports=["opens", "clicks"])
        low, high = D - 2 * DAY, D + 2 * DAY
        for report in ("opens", "clicks"):
            sql = duckdb_views(f"{root}/", D)[report]
            assert viewed(con, sql, report) == held(emu, report, low, high)
            v2_all = duckdb_views(f"{root}/", D + DAY)[report]  # the cut a day late: every v2 row
            v3_all = duckdb_views(f"{root}/", D - DAY)[report]  # a day early: every v3 row
            rows = con.execute(f"SELECT (SELECT count(*) FROM ({v2_all}) WHERE api = 'v2') + "
                               f"(SELECT count(*) FROM ({v3_all}) WHERE api = 'v3')").fetchone()[0]
            assert rows > sum(held(emu, report, low, high).values()), "without the cut at D the overlap doubles"
    finally:
        emu.stop()


def test_csv_files_read_through_the_same_views(monkeypatch, tmp_path, con):
    emu = both_apis(monkeypatch, tmp_path, DataConfig.realistic(weeks=6, activities=40))
    try:
        root = tmp_path / "root"
        switch(root, v2_days=(D - 2 * DAY, 2), v3_days=(D, 2), reports=["unsubscribes", "bounces"], file_format="csv",
               compression="gzip")
        for report in ("unsubscribes", "bounces"):
            sql = duckdb_views(f"{root}/", D, file_format="csv", compression="gzip")[report]
            assert viewed(con, sql, report) == held(emu, report, D - 2 * DAY, D + 2 * DAY)
    finally:
        emu.stop()


def test_the_views_in_the_doc_are_the_functions_sql():
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    views = duckdb_views("/data/cc/", "2024-03-01")
    for report, sql in views.items():
        assert f"CREATE VIEW cc_{report} AS\n{sql};\n" in blocks, report


@pytest.mark.parametrize(("args", "words"), [
    (("data/cc/", D), "ending in '/'"),
    (("/data/cc", D), "ending in '/'"),
    (("/data/o'brien/", D), "no quote"),
    (("/data/cc/", "2024-03-01T12:00:00Z"), "midnight UTC"),
    (("/data/cc/", "yesterday"), "not a date"),
])
def test_bad_view_arguments_are_refused(args, words):
    with pytest.raises(ConstantContactInputError, match=re.escape(words)):
        duckdb_views(*args)
    with pytest.raises(ConstantContactInputError, match="file_format"):
        duckdb_views("/data/cc/", D, file_format="parquet")


def test_a_side_without_files_yet_reads_as_no_rows(tmp_path, con):
    """Just after the switch, before the v3 DAG's first file (or a report that had none on v2): no error."""
    (tmp_path / "xrefs").mkdir()
    for name in ("campaigns.jsonl", "contacts.jsonl"):
        (tmp_path / "xrefs" / name).write_bytes(b"")
    for report, sql in duckdb_views(f"{tmp_path}/", D).items():
        described = [r[0] for r in con.execute(f"DESCRIBE {sql}").fetchall()]
        assert described == [*COLUMNS, *SHARED_EXTRAS.get(report, {}), "api", "v2_campaign_id", "v2_contact_id"]
        assert con.execute(f"SELECT count(*) FROM ({sql})").fetchone() == (0,), report
