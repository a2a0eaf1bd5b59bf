"""docs/analytics.md's DuckDB queries, as written there, reproduce the emulator's own campaign summaries from
the files a full history load (with dimensions) wrote, on v2 and v3."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest

from airflow_provider_cc.emulator import DataConfig, V3Options
from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from tests.conftest import start_emulator, start_v3

if TYPE_CHECKING:
    from airflow_provider_cc.emulator import Emulator

DOC = Path(__file__).resolve().parents[1] / "docs" / "analytics.md"
ALL_OF_IT = {"data_interval_start": "2022-01-01T00:00:00Z", "data_interval_end": "2023-01-01T00:00:00Z"}
COLUMNS = ("sends", "opens", "unique_opens", "clicks", "unique_clicks", "forwards", "bounces", "opt_outs")


def query(api: str, root: Path) -> str:
    """The doc's query for ``api``, on ``root``."""
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    (sql,) = [b for b in blocks if b.startswith(f"-- {api} campaign summary")]
    return sql.replace("ROOT", str(root))


def summary(root: Path, api: str) -> dict[str, dict[str, int]]:
    result = duckdb.sql(query(api, root))
    names = [d[0] for d in result.description]
    return {str(row[0]): dict(zip(names, row, strict=True)) for row in result.fetchall()}  # DuckDB reads UUIDs


def load(root: Path) -> dict:
    return ConstantContactAccountTrackingOperator(task_id="history", destination=f"file://{root}/",
                                                  dimensions=True).execute(ALL_OF_IT)


def test_the_v2_query_gives_every_campaigns_tracking_summary(monkeypatch, tmp_path):
    emu: Emulator = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300))
    try:
        load(tmp_path)
        got = summary(tmp_path, "v2")
        sent = emu.campaign_ids()
        assert sorted(got) == sorted(sent)
        for cid in sent:
            campaign = emu.dataset.campaigns[cid]
            want = emu.dataset.summary(campaign)
            row = got[cid]
            assert row["name"] == emu.dataset.campaign_object(campaign)["name"] and row["sent"] is not None
            compared = ("sends", "unique_opens", "unique_clicks", "forwards", "bounces", "opt_outs")
            assert {k: row[k] for k in compared} == {
                "sends": want["sends"], "unique_opens": want["opens"], "unique_clicks": want["clicks"],
                "forwards": want["forwards"], "bounces": want["bounces"], "opt_outs": want["unsubscribes"]}, cid
    finally:
        emu.stop()


def test_the_v3_query_gives_every_campaigns_stats(monkeypatch, tmp_path):
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig.realistic(weeks=8, activities=200),
                   options=V3Options(resend_every=3))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.v3_connection_json(
        **{"requests_per_second": 0, "backoff": 0.01, "max_retries": 10, "oauth_store": str(tmp_path / "tokens")}))
    try:
        load(tmp_path / "lake")
        got = summary(tmp_path / "lake", "v3")
        view = emu.v3.view
        sent = [c for c in view.campaigns.values() if c.status == "SENT"]
        assert sorted(got) == sorted(c.id for c in sent)
        for campaign in sent:
            stats = view.campaign_stats(campaign)
            row = got[campaign.id]
            assert row["name"] == view.campaign_item(campaign)["name"] and row["sent"] is not None
            assert {k: row[k] for k in COLUMNS} == {
                "sends": stats["em_sends"], "opens": stats["em_opens_all"], "unique_opens": stats["em_opens"],
                "clicks": stats["em_clicks_all"], "unique_clicks": stats["em_clicks"],
                "forwards": stats["em_forwards"], "bounces": stats["em_bounces"],
                "opt_outs": stats["em_optouts"]}, campaign.id
    finally:
        emu.stop()


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_the_doc_has_one_query_per_api(api, tmp_path):
    assert "read_json_auto" in query(api, tmp_path)
