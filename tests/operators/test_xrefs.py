"""The cross-reference operator over real HTTP against one emulator serving one account through both APIs: it
maps every v2 campaign folder and every v2 contact under the root, 50 campaigns and 500 contacts a request,
into two tables written atomically; a second run asks nothing for ids already mapped; bad input is refused
before any request."""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING

import pytest

from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from airflow_provider_cc.operators.xrefs import ConstantContactCampaignXrefsOperator
from tests.conftest import FAST_RETRY, start_v3

if TYPE_CHECKING:
    from pathlib import Path

# 60 SENT campaigns within three days; about 1,200 of 1,500 contacts have activity: 2 campaign and 3 contact
# cross-reference requests.
DATA = DataConfig(campaigns=60, contacts=1500, activities=20)
WINDOW = {"data_interval_start": "2024-01-01T00:00:00Z", "data_interval_end": "2024-01-04T00:00:00Z"}


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory):
    """One emulator behind a v2 and a v3 connection, and a root the v2 account operator filled: (emu, root)."""
    monkeypatch = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("xrefs")
    emu = start_v3(monkeypatch, str(tmp / "tokens"), DATA, options=V3Options(resend_every=3))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.connection_json(**FAST_RETRY))
    ConstantContactAccountTrackingOperator(task_id="v2", destination=f"file://{tmp}/v2/").execute(WINDOW)
    try:
        yield emu, tmp / "v2"
    finally:
        emu.stop()
        monkeypatch.undo()


def copy_root(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def xref_requests(emu: Emulator, since: int = 0) -> dict[str, int]:
    paths = [p for p, _ in emu.requests[since:]]
    return {"campaigns": paths.count("/v3/emails/campaign_id_xrefs"),
            "contacts": paths.count("/v3/contacts/contact_id_xrefs"), "v3": sum(p.startswith("/v3/") for p in paths)}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def v2_contacts(root: Path) -> set[str]:
    found = set()
    for path in root.glob("campaign/*/campaign_id=*/*.jsonl"):
        found.update(r["contact_id"] for r in rows(path))
    return found


def xrefs(root: Path, **kwargs) -> ConstantContactCampaignXrefsOperator:
    return ConstantContactCampaignXrefsOperator(task_id="xrefs", destination=f"file://{root}/", **kwargs)


def test_every_v2_campaign_and_contact_is_mapped_in_chunks_and_a_rerun_asks_nothing(account, tmp_path, caplog):
    emu, v2_root = account
    root = copy_root(v2_root, tmp_path / "root")
    view = emu.v3.view
    sent = [c.id for c in emu.dataset.campaigns.values() if c.status == "SENT"]
    contacts = v2_contacts(root)
    assert len(sent) == 60 and 1000 < len(contacts) <= 1500
    seen = len(emu.requests)
    with caplog.at_level(logging.INFO, logger="airflow_provider_cc.operators.xrefs"):
        answer = xrefs(root).execute({})
    assert xref_requests(emu, seen) == {"campaigns": 2, "contacts": 3, "v3": 5}, "⌈60/50⌉ + ⌈contacts/500⌉"
    assert f"{len(sent)} v2 campaigns (0 mapped before) and {len(contacts)} v2 contacts (0 mapped before); " \
           "5 requests" in caplog.text
    assert answer["requests"] == 5 and answer["unmapped_campaigns"] == []

    table = rows(root / "xrefs" / "campaigns.jsonl")
    assert table == [{"v2_campaign_id": i, "campaign_id": view.by_v2[i].campaign.id,
                      "campaign_activity_id": view.by_v2[i].id} for i in sorted(sent, key=int)]
    resends = [r for r in table if view.activities[r["campaign_activity_id"]].role == "resend"]
    assert len(resends) == 20, "a v2 resend maps to its v3 campaign's resend activity"
    assert rows(root / "xrefs" / "contacts.jsonl") == [
        {"v2_contact_id": c, "contact_id": view.contact_ids[int(c)]} for c in sorted(contacts, key=int)]
    assert not list(root.glob("xrefs/.*")), "no temporary file left"

    before = {p.name: p.read_bytes() for p in (root / "xrefs").iterdir()}
    seen = len(emu.requests)
    again = xrefs(root).execute({})
    assert xref_requests(emu, seen)["v3"] == 0 and again["requests"] == 0
    assert {p.name: p.read_bytes() for p in (root / "xrefs").iterdir()} == before


def test_given_ids_only_the_new_and_an_unknown_one_is_not_asked_twice(account, tmp_path, caplog):
    emu, v2_root = account
    root = copy_root(v2_root, tmp_path / "root")
    first, second = sorted((c.id for c in emu.dataset.campaigns.values() if c.status == "SENT"), key=int)[:2]
    seen = len(emu.requests)
    xrefs(root, v2_campaign_ids=f"{first}", contacts=False).execute({})
    assert xref_requests(emu, seen) == {"campaigns": 1, "contacts": 0, "v3": 1}
    assert not (root / "xrefs" / "contacts.jsonl").exists()
    seen = len(emu.requests)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_cc.operators.xrefs"):
        answer = xrefs(root, v2_campaign_ids=[first, second, "0099"], contacts=False).execute({})
    asked = [q for p, q in emu.requests[seen:] if p == "/v3/emails/campaign_id_xrefs"]
    assert asked == [{"v2_email_campaign_ids": f"99,{second}"}], "only the ids not mapped yet, once"
    assert answer["unmapped_campaigns"] == ["99"] and "99" in caplog.text
    assert [r["v2_campaign_id"] for r in rows(root / "xrefs" / "campaigns.jsonl")] == ["99", first, second]
    assert rows(root / "xrefs" / "campaigns.jsonl")[0] == {"v2_campaign_id": "99", "campaign_id": None,
                                                           "campaign_activity_id": None}
    seen = len(emu.requests)
    xrefs(root, v2_campaign_ids=["99", first], contacts=False).execute({})
    assert xref_requests(emu, seen)["v3"] == 0, "an id the API does not know is not asked again"


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"destination": "/data/cc"}, "must be the root"),
    ({"destination": "data/cc/"}, "relative path"),
    ({"v2_campaign_ids": ["1100394165000", "abc"]}, "v2_campaign_ids='abc' is not a numeric id"),
    ({"v2_campaign_ids": ["e4cf53f0-e37f-11e8-9f32-f2801f1b9fd1"]}, "is not a numeric id"),
    ({"v2_campaign_ids": []}, "v2_campaign_ids is empty"),
    ({"constant_contact_conn_id": "constant_contact_default"}, "is a v2 connection"),
])
def test_bad_input_is_refused_before_any_request(account, tmp_path, kwargs, words):
    emu, v2_root = account
    root = copy_root(v2_root, tmp_path / "root")
    seen = len(emu.requests)
    with pytest.raises(ConstantContactInputError, match=words):
        xrefs(root, **kwargs).execute({}) if "destination" not in kwargs else \
            ConstantContactCampaignXrefsOperator(task_id="x", **kwargs).execute({})
    assert emu.requests[seen:] == []
    assert not (root / "xrefs").exists()


def test_a_root_without_v2_folders_or_with_a_broken_table_is_refused_before_any_request(account, tmp_path):
    emu, v2_root = account
    seen = len(emu.requests)
    with pytest.raises(ConstantContactInputError, match="no v2 campaign folder"):
        xrefs(tmp_path / "empty").execute({})
    root = copy_root(v2_root, tmp_path / "root")
    (root / "xrefs").mkdir()
    (root / "xrefs" / "campaigns.jsonl").write_text('{"v2_campaign_id": "1"}\n{"campaign_id": "x"}\n')
    with pytest.raises(ConstantContactInputError, match="campaigns.jsonl line 2 is not a mapping row"):
        xrefs(root).execute({})
    assert emu.requests[seen:] == []


def test_the_hook_checks_every_id_before_the_first_request_and_chunks(account):
    emu, _ = account
    hook = ConstantContactV3Hook()
    seen = len(emu.requests)
    with pytest.raises(ConstantContactInputError, match="v2_contact_id='x' is not a numeric id"):
        hook.get_contact_xrefs([*range(1, 600), "x"])
    assert emu.requests[seen:] == []
    found = hook.get_contact_xrefs(range(1, 1201))
    assert [p for p, _ in emu.requests[seen:] if p.startswith("/v3/")] == ["/v3/contacts/contact_id_xrefs"] * \
        math.ceil(1200 / 500)
    assert {x["sequence_id"]: x["contact_id"] for x in found} == {
        str(n): emu.v3.view.contact_ids[n] for n in range(1, 1201)}
