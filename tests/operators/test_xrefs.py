"""The cross-reference operator over real HTTP against one emulator serving one account through both APIs: it
maps every v2 campaign folder and every v2 contact under the root, 50 campaigns and 500 contacts a request,
into two tables written atomically; a second run asks nothing for ids already mapped; bad input is refused
before any request."""

from __future__ import annotations

import json
import logging
import math
import re
from typing import TYPE_CHECKING

import pytest

from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
from airflow_provider_cc.exceptions import ConstantContactInputError, ConstantContactResponseError
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


def test_given_ids_only_the_new_and_an_unknown_one_is_confirmed_once_then_never_asked_again(account, tmp_path,
                                                                                              caplog):
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
    assert asked == [{"v2_email_campaign_ids": f"99,{second}"}, {"v2_email_campaign_ids": "99"}], \
        "only the ids not mapped yet; the one the answer left out is asked once more before it counts as unknown"
    assert answer["unmapped_campaigns"] == ["99"] and "99" in caplog.text and answer["requests"] == 2
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


# ---- answers are checked: a malformed one is retried, then fails naming the endpoint and the field -----------
CAMPAIGN_PATH = "/v3/emails/campaign_id_xrefs"
CONTACT_PATH = "/v3/contacts/contact_id_xrefs"


def _drop(item: dict, key: str) -> dict:
    return {k: v for k, v in item.items() if k != key}


def _with(index: int, **changes):
    def edit(body: dict) -> dict:
        items = [dict(x) for x in body["xrefs"]]
        items[index].update(changes)
        return {"xrefs": items}
    return edit


# (fault, how it edits a correct answer, words of the final error)
FAULTS = [
    ("body null", lambda b: None, "the body is null, not an object with xrefs"),
    ("body an array", lambda b: b["xrefs"], "the body is an array"),
    ("body a string", lambda b: "xrefs", "the body is a string"),
    ("body {}", lambda b: {}, "xrefs is missing, not an array"),
    ("xrefs null", lambda b: {"xrefs": None}, "xrefs is null, not an array"),
    ("xrefs an object", lambda b: {"xrefs": {"0": b["xrefs"][0]}}, "xrefs is an object, not an array"),
    ("an item not an object", lambda b: {"xrefs": [*b["xrefs"], "1"]}, r"xrefs\[6\] is a string, not an object"),
    ("an item without its v2 id", lambda b: {"xrefs": [_drop(b["xrefs"][0], "v2_email_campaign_id"),
                                                        *b["xrefs"][1:]]},
     r"xrefs\[0\].v2_email_campaign_id is missing"),
    ("a v2 id not digits", _with(0, v2_email_campaign_id="12a"),
     r"xrefs\[0\].v2_email_campaign_id is a string that is not a v2 id"),
    ("a v2 id not asked", _with(0, v2_email_campaign_id="1"), r"xrefs\[0\].v2_email_campaign_id 1 was not asked"),
    ("a campaign id not a UUID", _with(0, campaign_id="../../etc/passwd"),
     r"xrefs\[0\].campaign_id is a string that is not a v3 id"),
    ("an activity id not a UUID", _with(1, campaign_activity_id="not-a-uuid"),
     r"xrefs\[1\].campaign_activity_id is a string that is not a v3 id"),
    ("an activity id missing", lambda b: {"xrefs": [_drop(b["xrefs"][0], "campaign_activity_id"), *b["xrefs"][1:]]},
     r"xrefs\[0\].campaign_activity_id is null that is not a v3 id"),
    ("one v2 id twice, two activities", lambda b: {"xrefs": [*b["xrefs"], {
        **b["xrefs"][0], "campaign_activity_id": b["xrefs"][1]["campaign_activity_id"]}]},
     r"xrefs\[6\]: v2 id \d+ is listed twice with different v3 ids"),
]


@pytest.fixture
def hostile(account, monkeypatch, tmp_path):
    """The account's emulator behind a proxy that passes each v3 answer through ``proxy.mutate``, behind
    ``constant_contact_v3_default`` (2 retries): (emu, proxy, six SENT v2 campaign ids)."""
    from tests.conftest import V3_CONN_ENV, Proxy

    emu, _ = account
    proxy = Proxy(emu).start()
    conn = {**emu.v3_connection(**{**FAST_RETRY, "max_retries": 2, "oauth_store": str(tmp_path / "tokens")}),
            "host": proxy.url}
    monkeypatch.setenv(V3_CONN_ENV, json.dumps(conn))
    ids = sorted((c.id for c in emu.dataset.campaigns.values() if c.status == "SENT"), key=int)[:6]
    try:
        yield emu, proxy, ids
    finally:
        proxy.stop()


def faulty(path: str, edit, times: float):
    """A proxy ``mutate`` applying ``edit`` to the first ``times`` answers of ``path``."""
    left = {"n": times}

    def mutate(seen: str, query, status, body):
        if seen == path and status == 200 and left["n"] > 0:
            left["n"] -= 1
            return status, edit(body)
        return status, body
    return mutate


def exact_table(emu, ids: list[str]) -> list[dict]:
    view = emu.v3.view
    return [{"v2_campaign_id": i, "campaign_id": view.by_v2[i].campaign.id, "campaign_activity_id": view.by_v2[i].id}
            for i in sorted(ids, key=int)]


@pytest.mark.parametrize(("edit", "words"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_a_malformed_answer_once_is_retried_and_the_table_is_exact(hostile, tmp_path, edit, words):
    emu, proxy, ids = hostile
    proxy.mutate = faulty(CAMPAIGN_PATH, edit, 1)
    answer = xrefs(tmp_path, v2_campaign_ids=ids, contacts=False).execute({})
    assert rows(tmp_path / "xrefs" / "campaigns.jsonl") == exact_table(emu, ids)
    assert answer["unmapped_campaigns"] == [] and answer["requests"] == proxy.asked(CAMPAIGN_PATH) == 2


@pytest.mark.parametrize(("edit", "words"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_a_malformed_answer_every_time_fails_naming_endpoint_and_field_and_records_nothing(hostile, tmp_path, edit,
                                                                                           words):
    emu, proxy, ids = hostile
    proxy.mutate = faulty(CAMPAIGN_PATH, edit, math.inf)
    with pytest.raises(ConstantContactResponseError) as info:
        xrefs(tmp_path, v2_campaign_ids=ids, contacts=False).execute({})
    message = str(info.value)
    assert f"campaign id cross-reference GET {CAMPAIGN_PATH} (6 ids)" in message and "gave up after 3" in message
    assert re.search(words, message), message
    assert "etc/passwd" not in message and "not-a-uuid" not in message, "an answer's values are not echoed"
    assert not (tmp_path / "xrefs" / "campaigns.jsonl").exists(), "nothing a malformed answer said is kept"
    proxy.mutate = faulty(CAMPAIGN_PATH, edit, 0)
    xrefs(tmp_path, v2_campaign_ids=ids, contacts=False).execute({})
    assert rows(tmp_path / "xrefs" / "campaigns.jsonl") == exact_table(emu, ids), "the next run asks again"


def test_an_answer_leaving_ids_out_is_not_believed_until_a_second_answer_agrees(hostile, tmp_path):
    emu, proxy, ids = hostile
    proxy.mutate = faulty(CAMPAIGN_PATH, lambda b: {"xrefs": b["xrefs"][:2]}, 1)  # a partial answer, well formed
    answer = xrefs(tmp_path, v2_campaign_ids=ids, contacts=False).execute({})
    assert rows(tmp_path / "xrefs" / "campaigns.jsonl") == exact_table(emu, ids)
    assert answer["unmapped_campaigns"] == [] and answer["requests"] == 2
    assert proxy.seen[-1] == (CAMPAIGN_PATH, {"v2_email_campaign_ids": ",".join(ids[2:])}), "only the left-out ids"


def test_answers_are_read_leniently_and_written_in_one_form(hostile, tmp_path):
    """Upper-case UUIDs, zero-padded or numeric v2 ids, an item repeated as it was, an unknown id listed with
    no v3 ids: all accepted, the table in the canonical form."""
    emu, proxy, ids = hostile

    def edit(body: dict) -> dict:
        items = [dict(x) for x in body["xrefs"]]
        if len(items) < 6:
            return body  # the confirming request for 99
        items[0] = {**items[0], "campaign_id": items[0]["campaign_id"].upper(),
                    "campaign_activity_id": f" {items[0]['campaign_activity_id'].upper()} "}
        items[1]["v2_email_campaign_id"] = "000" + items[1]["v2_email_campaign_id"]
        items[2]["v2_email_campaign_id"] = int(items[2]["v2_email_campaign_id"])
        return {"xrefs": [*items, dict(items[3]),
                          {"v2_email_campaign_id": "99", "campaign_id": None, "campaign_activity_id": None}]}
    proxy.mutate = faulty(CAMPAIGN_PATH, edit, math.inf)
    answer = xrefs(tmp_path, v2_campaign_ids=[*ids, "99"], contacts=False).execute({})
    unknown = {"v2_campaign_id": "99", "campaign_id": None, "campaign_activity_id": None}
    assert rows(tmp_path / "xrefs" / "campaigns.jsonl") == [unknown, *exact_table(emu, ids)]
    assert answer["unmapped_campaigns"] == ["99"] and answer["requests"] == 2


def test_contact_answers_are_checked_too(hostile):
    emu, proxy, _ = hostile
    hook = ConstantContactV3Hook()
    proxy.mutate = faulty(CONTACT_PATH, _with(0, contact_id="0016633325"), 1)
    found = hook.get_contact_xrefs(["0001", 2, "3"])
    assert found == [{"sequence_id": str(n), "contact_id": emu.v3.view.contact_ids[n]} for n in (1, 2, 3)]
    assert proxy.asked(CONTACT_PATH) == 2
    proxy.mutate = faulty(CONTACT_PATH, lambda b: {"xrefs": [*b["xrefs"], {**b["xrefs"][0], "contact_id": str(
        emu.v3.view.contact_ids[2]).upper()}]}, math.inf)
    with pytest.raises(ConstantContactResponseError, match=rf"contact id cross-reference GET {CONTACT_PATH} \(3 ids\).*"
                                                           r"v2 id 1 is listed twice with different v3 ids"):
        hook.get_contact_xrefs([1, 2, 3])


@pytest.mark.parametrize("row", [
    '{"v2_campaign_id": "1", "campaign_id": "../../etc/passwd", "campaign_activity_id": null}',
    '{"v2_campaign_id": "1", "campaign_id": null, "campaign_activity_id": "E4CF53F0-E37F-11E8-9F32-F2801F1B9FD1"}',
    '{"v2_campaign_id": "2", "campaign_id": null, "campaign_activity_id": null}',
    '["1"]',
    '\xff',
], ids=["a path", "upper case", "an id twice", "an array", "not utf-8"])
def test_a_table_row_the_views_would_join_wrongly_is_refused_before_any_request(account, tmp_path, row):
    emu, _ = account
    (tmp_path / "xrefs").mkdir()
    (tmp_path / "xrefs" / "campaigns.jsonl").write_bytes(
        b'{"v2_campaign_id": "2", "campaign_id": null, "campaign_activity_id": null}\n' + row.encode("latin-1"))
    seen = len(emu.requests)
    with pytest.raises(ConstantContactInputError, match="campaigns.jsonl line 2 is not a mapping row"):
        xrefs(tmp_path, v2_campaign_ids=["1"], contacts=False).execute({})
    assert emu.requests[seen:] == []
