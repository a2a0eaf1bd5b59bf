"""The dimension catalogue: typed columns and natural keys, JSON Schemas from the same generator (the schema
command checks them), and rows built from answers without deciding anything."""

from __future__ import annotations

import json

import jsonschema
import pytest

from airflow_provider_cc.dimensions import DIMENSIONS, v2_rows, v3_link_rows
from airflow_provider_cc.schemas import load_dimension, write_all
from airflow_provider_cc.schemas.__main__ import main as schemas_main


@pytest.mark.parametrize("stale_file", ["dimensions/campaigns.json", "v3/dimensions/campaign_activities.json",
                                        "v3/dimensions/links.json"])
def test_the_schema_check_covers_the_dimension_schemas(tmp_path, capsys, stale_file):
    write_all(tmp_path)
    assert schemas_main(["--check", "--directory", str(tmp_path)]) == 0
    path = tmp_path / stale_file
    schema = json.loads(path.read_text())
    schema["required"].pop()
    path.write_text(json.dumps(schema, indent=2) + "\n")
    capsys.readouterr()
    assert schemas_main(["--check", "--directory", str(tmp_path)]) == 1
    assert stale_file.rpartition("/")[2] in capsys.readouterr().err


def test_every_dimension_has_its_key_among_its_columns_and_a_shipped_schema():
    for api, table in DIMENSIONS.items():
        for name, dimension in table.items():
            assert set(dimension.key) <= set(dimension.columns)
            assert len(set(dimension.columns)) == len(dimension.columns)
            schema = load_dimension(name, api)
            assert schema["x-natural-key"] == list(dimension.key) and list(schema["properties"]) == list(
                dimension.columns)


def test_v2_rows_take_what_the_answer_says_and_nothing_else():
    answer = {"id": 7, "name": "N", "subject": "S", "status": "SENT", "from_name": None, "from_email": ["odd"],
              "created_date": "2024-01-01T00:00:00.000Z", "last_run_date": "not a date",
              "click_through_details": [{"url": "https://x/2", "url_uid": "2", "click_count": 3},
                                        {"url": "https://x/1", "url_uid": "1", "click_count": "3"}]}
    rows = v2_rows(answer)
    (campaign,) = rows["campaigns"]
    assert campaign == {"campaign_id": "7", "name": "N", "subject": "S", "from_name": None, "from_email": None,
                        "status": "SENT", "created_date": "2024-01-01T00:00:00.000Z", "modified_date": None,
                        "last_run_date": None}
    assert rows["links"] == [{"campaign_id": "7", "link_id": "1", "link_uri": "https://x/1", "click_count": None},
                             {"campaign_id": "7", "link_id": "2", "link_uri": "https://x/2", "click_count": 3}]
    for name in ("campaigns", "links"):
        for row in rows[name]:
            jsonschema.validate(row, load_dimension(name, "v2"))


def test_v3_link_rows_are_one_per_url_sorted():
    rows = v3_link_rows("c", "a", [{"url_id": "9", "link_url": "u9", "unique_clicks": 1},
                                   {"url_id": "10", "link_url": "u10"}])
    assert [r["url_id"] for r in rows] == ["10", "9"] and rows[0]["unique_clicks"] is None
