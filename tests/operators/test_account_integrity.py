"""The account operator against a server that lies a little, over real HTTP: a run never succeeds with a
campaign's data missing or doubled, and its state under the root never has the last word.

Each test puts a hostile proxy in front of the realistic emulator account and compares the files with those
of a run against the honest emulator (the reference)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from airflow_provider_cc.emulator import DataConfig
from airflow_provider_cc.exceptions import (
    ConstantContactBudgetError,
    ConstantContactError,
    ConstantContactResponseError,
    ConstantContactServerError,
    ConstantContactStateError,
)
from airflow_provider_cc.operators.tracking import (
    ConstantContactCampaignTrackingOperator,
    ConstantContactListCampaignsOperator,
)
from airflow_provider_cc.units import Checkpoint, window_state
from tests.conftest import start_emulator, start_proxy
from tests.operators.test_account import DAY, data_files, pull

CAMPAIGN = "/v2/emailmarketing/campaigns/{}"


@pytest.fixture
def emu(monkeypatch):
    emulator = start_emulator(monkeypatch, DataConfig.realistic(weeks=8, activities=300))
    yield emulator
    emulator.stop()


@pytest.fixture
def reference(emu, tmp_path_factory) -> dict[str, bytes]:
    """The week's files pulled from the honest emulator, in daily partitions."""
    root = tmp_path_factory.mktemp("reference")
    pull(root, partition=DAY)
    return data_files(root)


def checkpoint_of(root: Path) -> dict:
    return json.loads(next((root / "_state/account/checkpoints").iterdir()).read_text())


def test_a_404_on_a_later_page_fails_the_unit_and_leaves_the_window_open(emu, reference, monkeypatch, tmp_path):
    victim = emu.campaign_ids()[3]
    flaky = {"on": True}

    def mutate(path, query, status, body):
        if flaky["on"] and path.endswith(f"/campaigns/{victim}/tracking/opens") and "next" in query:
            return 404, [{"error_key": "http.status.not_found", "error_message": "Not found."}]
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        with pytest.raises(ConstantContactServerError, match=f"campaign {victim} opens: a page answered 404 while the "
                                                             "campaign itself is still there"):
            pull(tmp_path, partition=DAY, limit=25)
        assert checkpoint_of(tmp_path)["complete"] is False, "the window stays open"
        assert proxy.asked(CAMPAIGN.format(victim)) == 2, "its campaign request, and one to confirm"
        flaky["on"] = False
        _, manifest = pull(tmp_path, partition=DAY, limit=25)  # the retry
        assert data_files(tmp_path) == reference and not [s for s in manifest["skipped"] if s["reason"] == "deleted"]
    finally:
        proxy.stop()


def test_a_campaign_deleted_during_the_run_is_skipped_and_its_partial_files_removed(emu, reference, monkeypatch,
                                                                                     tmp_path):
    victim = emu.campaign_ids()[3]
    gone = {"on": False}

    def mutate(path, query, status, body):
        if path.endswith(f"/campaigns/{victim}/tracking/opens") and "next" in query:
            gone["on"] = True  # deleted between its first and second page
        if gone["on"] and victim in path:
            return 404, [{"error_key": "http.status.not_found", "error_message": "Not found."}]
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        op, manifest = pull(tmp_path, partition=DAY, limit=25, concurrency=1)
        deleted = [s for s in manifest["skipped"] if s["reason"] == "deleted"]
        # One unit at a time: its sends were pulled whole before the deletion; opens met it on page 2, the
        # reports after that on page 1.
        assert [s["report"] for s in deleted] == ["opens", "clicks", "forwards", "unsubscribes", "bounces"][
            :len(deleted)] and len(deleted) >= 3 and {s["campaign_id"] for s in deleted} == {victim}
        assert "answers 404" in deleted[0]["detail"] and "were removed" in deleted[0]["detail"]
        assert proxy.asked(CAMPAIGN.format(victim)) == 1 + 2, "its campaign request, then two to confirm, once"
        written = data_files(tmp_path)
        assert not [n for n in written if f"opens/campaign_id={victim}/" in n], "no partial opens of the campaign"
        assert {n: d for n, d in written.items() if victim in n} == {
            n: d for n, d in reference.items() if f"sends/campaign_id={victim}/" in n}, "its complete sends stay"
        assert {n: d for n, d in reference.items() if victim not in n} == {
            n: d for n, d in written.items() if victim not in n}
        assert manifest["removed_count"] >= 1 and all(f"opens/campaign_id={victim}/" in u for u in manifest["removed"])
        assert not [f for f in op.files_written if f["campaign_id"] == victim and f["report"] == "opens"]
        assert checkpoint_of(tmp_path)["complete"] is True, "a confirmed deletion is a decision"
    finally:
        proxy.stop()


def test_a_404_on_a_campaign_request_is_asked_again_before_it_means_deleted(emu, reference, monkeypatch, tmp_path):
    victim = emu.campaign_ids()[2]
    answers = []

    def mutate(path, query, status, body):
        if path == CAMPAIGN.format(victim):
            answers.append(status)
            if len(answers) == 1:
                return 404, [{"error_key": "http.status.not_found", "error_message": "Not found."}]
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        pull(tmp_path, partition=DAY)
        assert answers == [200, 200] and data_files(tmp_path) == reference
    finally:
        proxy.stop()


def test_a_send_time_that_cannot_be_true_is_asked_again_and_never_cached(emu, reference, monkeypatch, tmp_path):
    victim = emu.campaign_ids()[1]
    answers = []

    def mutate(path, query, status, body):
        if path == CAMPAIGN.format(victim):
            answers.append(len(answers))
            if len(answers) == 1:
                return status, {**body, "last_run_date": "2099-12-31T00:00:00.000Z"}
            if len(answers) == 2:
                return status, {**body, "last_run_date": "2001-01-01T00:00:00.000Z"}  # before its created_date
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        pull(tmp_path, partition=DAY)
        assert len(answers) == 3, "two answers that cannot be true, retried as malformed, then the real one"
        assert data_files(tmp_path) == reference
        cached = json.loads((tmp_path / "_state/campaigns/sent.json").read_text())["campaigns"][victim]
        assert cached["first"] == cached["last"] == emu.dataset.campaign_object(
            emu.dataset.campaigns[victim])["last_run_date"]
    finally:
        proxy.stop()


def test_cached_send_times_never_end_the_listing(emu, monkeypatch, tmp_path):
    ids = emu.campaign_ids()
    window = {"start": "2022-03-22T03:00:00Z", "end": "2022-03-29T03:00:00Z"}
    root_ref = tmp_path / "ref"
    pull(root_ref, sent_within=timedelta(days=3), **window)
    # Two old campaigns at the top of the SENT list, out of the documented order; the others newest first.
    top = [ids[1], ids[0]]
    order = [emu.dataset.campaign_summary_item(emu.dataset.campaigns[c]) for c in top + ids[:1:-1]]

    def mutate(path, query, status, body):
        if path == "/v2/emailmarketing/campaigns" and query.get("status") == "SENT":
            return status, {"meta": {"pagination": {}}, "results": order}
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        pull(tmp_path / "cc", **window)  # a run without a horizon warms the send-time cache
        for folder in (tmp_path / "cc").glob("campaign/*"):
            for file in folder.rglob("*.jsonl"):
                file.unlink()
        _, manifest = pull(tmp_path / "cc", sent_within=timedelta(days=3), **window)
        assert data_files(tmp_path / "cc") == data_files(root_ref)
        cached = [s for s in manifest["skipped"] if s["basis"] == "cache"]
        assert {s["campaign_id"] for s in cached} >= set(top), "the old ones decided by the cache, without asking"
    finally:
        proxy.stop()


def test_a_cold_cache_with_a_horizon_asks_only_about_recent_campaigns(monkeypatch, tmp_path):
    emu = start_emulator(monkeypatch, DataConfig.realistic(weeks=60, activities=20))
    try:
        ids = emu.campaign_ids()
        _, manifest = pull(tmp_path, sent_within=timedelta(days=20), start="2023-03-27T03:00:00Z",
                           end="2023-04-03T03:00:00Z")
        asked = {p.split("/")[4] for p, _ in emu.requests if p.count("/") == 4}
        # After the window (ids[60:]: none), in it or within 20 days (ids[57:60]), then 3 older ones that end
        # the listing, plus at most 3 requests in flight beyond them (concurrency 4).
        assert set(ids[54:60]) <= asked and len(asked) <= 6 + 3
        assert manifest["requests_selection"] <= 2 + len(asked)
    finally:
        emu.stop()


@pytest.mark.parametrize("twin", ["{}\n", " {}", "0{}", "\u2003{}"])
def test_a_campaign_listed_twice_under_two_spellings_is_pulled_once(emu, monkeypatch, tmp_path, twin):
    ids = emu.campaign_ids()
    victim = ids[4]

    def mutate(path, query, status, body):
        if path == "/v2/emailmarketing/campaigns" and query.get("status") == "SENT":
            item = emu.dataset.campaign_summary_item(emu.dataset.campaigns[victim])
            return status, {"meta": {"pagination": {}}, "results": [item, {**item, "id": twin.format(victim)},
                                                                    *body["results"]]}
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        _, manifest = pull(tmp_path)
        folders = {p.parent.name for p in tmp_path.rglob("*.jsonl") if victim in p.parent.name}
        assert folders == {f"campaign_id={victim}"}
        lines = [line for p in tmp_path.rglob("*.jsonl") if "_state" not in str(p)
                 for line in p.read_text().splitlines()]
        assert len(lines) == len(set(lines)) == manifest["records"], "no record twice"
        assert ConstantContactListCampaignsOperator(task_id="l").execute({}).count(victim) == 1
    finally:
        proxy.stop()


@pytest.mark.parametrize(("item", "words"), [({"name": "x", "status": "SENT"}, "no usable id \\(missing\\)"),
                                             ({"id": None, "status": "SENT"}, "no usable id \\(null\\)"),
                                             ({"id": "12ab", "status": "SENT"}, "no usable id \\(a string\\)")])
def test_a_list_item_without_a_usable_id_is_retried_then_fails(emu, monkeypatch, tmp_path, item, words):
    def mutate(path, query, status, body):
        if path == "/v2/emailmarketing/campaigns":
            return status, {**body, "results": [item, *body["results"]]}
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        with pytest.raises(ConstantContactResponseError, match=f"campaigns \\(page 1\\).*list item 1 has {words}"):
            pull(tmp_path)
        assert proxy.asked("/v2/emailmarketing/campaigns") == 3, "retried (max_retries=2), then failed"
    finally:
        proxy.stop()


@pytest.mark.parametrize(("change", "words"), [
    (lambda b: {k: v for k, v in b.items() if k != "status"}, "status is null \\(missing\\)"),
    (lambda b: {**b, "status": 3}, "status is a number"),
    (lambda b: [], "expected a campaign object, got an array"),
    (lambda b: None, "expected a campaign object, got null"),
    (lambda b: {**b, "tracking_summary": []}, "tracking_summary is an array, not an object"),
    (lambda b: {**b, "last_run_date": "yesterday"}, "last_run_date is a string that is not a date"),
])
def test_a_campaign_answer_of_the_wrong_shape_is_retried_then_fails(emu, monkeypatch, tmp_path, change, words):
    victim = emu.campaign_ids()[4]

    def mutate(path, query, status, body):
        return (status, change(body)) if path == CAMPAIGN.format(victim) else (status, body)

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        with pytest.raises(ConstantContactResponseError, match=f"campaign {victim}: .*{words}.*gave up after 3"):
            pull(tmp_path)
        with pytest.raises(ConstantContactResponseError, match=f"campaign {victim}: .*{words}"):
            # The per-campaign operator asks when a report comes back empty: it fails, it never skips.
            ConstantContactCampaignTrackingOperator(task_id="t", campaign_id=victim, report="forwards").execute(
                {"data_interval_start": "2030-01-01T00:00:00Z", "data_interval_end": "2030-01-02T00:00:00Z"})
    finally:
        proxy.stop()


@pytest.mark.parametrize("zero", [0, False, 0.0, "0"])
def test_a_zero_total_is_believed_only_as_an_integer_and_not_for_a_fresh_send(emu, reference, monkeypatch, tmp_path,
                                                                              zero):
    fresh, settled = emu.campaign_ids()[4], emu.campaign_ids()[2]  # sent 12 h and 2 weeks before the week's end

    def mutate(path, query, status, body):
        if path in (CAMPAIGN.format(fresh), CAMPAIGN.format(settled)):
            return status, {**body, "tracking_summary": {**body["tracking_summary"], "opens": zero, "sends": zero}}
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        _, manifest = pull(tmp_path, partition=DAY)
        got = data_files(tmp_path)
        lost = sorted(set(reference) - set(got))
        believed = {(s["campaign_id"], s["report"]) for s in manifest["skipped"] if s["reason"] == "no activity"}
        assert (fresh, "opens") not in believed and not [n for n in lost if fresh in n], "fresh sends: pulled"
        if zero.__class__ is int:  # an integer 0 of a settled campaign is believed, and says so
            assert {(settled, "opens"), (settled, "sends")} <= believed
            assert all(s["basis"] == "summary" for s in manifest["skipped"] if s["reason"] == "no activity")
        else:
            assert got == reference, f"a total of {zero!r} is not a count: every file pulled"
    finally:
        proxy.stop()


def test_resume_pulls_again_the_units_whose_files_are_gone(emu, reference, tmp_path):
    with pytest.raises(ConstantContactError, match="max_requests=40"):
        pull(tmp_path, partition=DAY, max_requests=40, limit=25)
    committed = checkpoint_of(tmp_path)["done"]
    assert [k for k, v in committed.items() if v["files"]]
    for folder in tmp_path.glob("campaign/*"):
        for file in folder.rglob("*.jsonl"):
            file.unlink()
    _, manifest = pull(tmp_path, partition=DAY, limit=25)
    assert data_files(tmp_path) == reference
    assert manifest["units"]["resumed"] == len([k for k, v in committed.items() if not v["files"]]), \
        "only the committed units without files (no records in the window) are resumed"


@pytest.mark.parametrize(("prepare", "words"), [
    (lambda text, doc: text[:100], "is not readable JSON"),
    (lambda text, doc: json.dumps({**doc, "done": "xyz"}), "has the wrong shape"),
    (lambda text, doc: json.dumps({**doc, "done": {next(iter(doc["done"])): {"files": [{"uri": "file:///x"}]}}}),
     "has the wrong shape"),
])
def test_a_damaged_checkpoint_names_the_file_and_what_to_do(emu, tmp_path, prepare, words):
    with pytest.raises(ConstantContactError, match="max_requests=40"):
        pull(tmp_path, max_requests=40, limit=25)
    path = next((tmp_path / "_state/account/checkpoints").iterdir())
    path.write_text(prepare(path.read_text(), json.loads(path.read_text())))
    with pytest.raises(ConstantContactStateError, match=f"the checkpoint file://{path} {words}.*resume=False"):
        pull(tmp_path, limit=25)
    _, manifest = pull(tmp_path, limit=25, resume=False)  # what the message says to do
    assert manifest["units"]["left"] == 0


def test_an_unreadable_send_time_cache_is_ignored_with_a_warning(emu, tmp_path, caplog, capsys):
    (tmp_path / "_state/campaigns").mkdir(parents=True)
    (tmp_path / "_state/campaigns/sent.json").write_text("{broken")
    with caplog.at_level(logging.WARNING):
        _, manifest = pull(tmp_path)
    assert manifest["units"]["left"] == 0
    assert "the send-time cache" in caplog.text + "".join(capsys.readouterr()) and "ignored" in caplog.text + "".join(
        capsys.readouterr())
    assert json.loads((tmp_path / "_state/campaigns/sent.json").read_text())["version"] == 2, "rewritten whole"


def test_a_small_budget_gets_through_across_retries_and_a_hopeless_one_fails_fast(emu, reference, tmp_path):
    tries = 0
    while True:
        tries += 1
        assert tries <= 12, "every try makes progress"
        try:
            pull(tmp_path, partition=DAY, limit=25, max_requests=14)
            break
        except ConstantContactBudgetError:
            raise
        except ConstantContactError as exc:
            assert "Stopped at the request budget, max_requests=14" in str(exc)
    assert data_files(tmp_path) == reference and tries > 2
    full = json.loads(next((tmp_path / "_state/account/manifests").iterdir()).read_text())
    assert full["requests"] <= 14 < full["requests_all_tries"], "the manifest counts every try's requests"

    hopeless = tmp_path / "hopeless"
    with pytest.raises(ConstantContactError, match="max_requests=12"):  # 12 choose the campaigns; a unit needs more
        pull(hopeless, reports=["sends"], start="2022-03-07T03:00:00Z", end="2022-03-08T03:00:00Z", limit=25,
             max_requests=12)
    with pytest.raises(ConstantContactBudgetError, match="without committing a unit.*every retry would do the same"):
        pull(hopeless, reports=["sends"], start="2022-03-07T03:00:00Z", end="2022-03-08T03:00:00Z", limit=25,
             max_requests=5)


def test_checkpoint_writes_grow_linearly_with_the_units(monkeypatch, tmp_path):
    from airflow_provider_cc import units

    written = []
    real = units.write_json

    def counting(path, document):
        real(path, document)
        if "/_state/account/" in str(path) and "/manifests/" not in str(path):
            written.append(Path(path.path).stat().st_size)

    monkeypatch.setattr(units, "write_json", counting)
    emu = start_emulator(monkeypatch, DataConfig(campaigns=300, contacts=5, activities=5, days=2))
    try:
        _, manifest = pull(tmp_path, reports=["sends"], start="2024-01-01T00:00:00Z", end="2024-01-03T00:00:00Z",
                           concurrency=2)
        final = Path(manifest["checkpoint_uri"].removeprefix("file://")).stat().st_size
        assert manifest["units"]["pulled"] == 300 and len(written) > 3
        assert sum(written) <= 4 * final, "head at start and end, plus a journal holding each unit once"
        assert not (tmp_path / "_state/account/journal").exists() or not list(
            (tmp_path / "_state/account/journal").rglob("*.json")), "the journal is folded into the head"
    finally:
        emu.stop()


def test_a_stopped_try_leaves_a_journal_the_retry_resumes_from(emu, reference, tmp_path):
    window, options = None, None
    with pytest.raises(ConstantContactError, match="max_requests=40"):
        pull(tmp_path, partition=DAY, max_requests=40, limit=25)
    head = next((tmp_path / "_state/account/checkpoints").iterdir())
    doc = json.loads(head.read_text())
    # As if the try was killed after its first commits: the head from its start, the rest only in the journal.
    from airflow_provider_cc._compat import ObjectStoragePath
    from airflow_provider_cc.window import Window

    window = Window.of(doc["window"]["created_since"], doc["window"]["created_before"])
    options = doc["options"]
    root = ObjectStoragePath(f"file://{tmp_path}/")
    checkpoint = Checkpoint(window_state(root, "checkpoints", window, options), window, options)
    assert checkpoint.load() and checkpoint.done == doc["done"]
    keys = sorted(doc["done"])
    head.write_text(json.dumps({**doc, "done": {k: doc["done"][k] for k in keys[:1]}}))
    journal = tmp_path / "_state/account/journal" / head.name.removesuffix(".json")
    journal.mkdir(parents=True)
    (journal / f"{doc['generation']}.killed.000001.json").write_text(json.dumps(
        {"try": "killed", "requests": 17, "done": {k: doc["done"][k] for k in keys[1:]}}))
    again = Checkpoint(window_state(root, "checkpoints", window, options), window, options)
    assert again.load() and again.done == doc["done"] and again.requests_before == doc["requests"] + 17
    _, manifest = pull(tmp_path, partition=DAY, limit=25)
    assert data_files(tmp_path) == reference and manifest["units"]["resumed"] == len(keys)


def test_a_rerun_removes_the_files_of_partitions_that_have_no_records_any_more(emu, monkeypatch, tmp_path):
    victim = emu.campaign_ids()[4]
    drop = {"on": False}

    def mutate(path, query, status, body):
        if drop["on"] and path.endswith(f"/campaigns/{victim}/tracking/bounces"):
            return status, {**body, "results": []}
        return status, body

    proxy = start_proxy(monkeypatch, emu, mutate)
    try:
        pull(tmp_path, partition=DAY)
        before = [n for n in data_files(tmp_path) if f"bounces/campaign_id={victim}/" in n]
        assert before
        drop["on"] = True
        _, manifest = pull(tmp_path, partition=DAY)
        assert not [n for n in data_files(tmp_path) if f"bounces/campaign_id={victim}/" in n]
        assert sorted(u.removeprefix(f"file://{tmp_path}/") for u in manifest["removed"]) == before
        listed = {f["uri"] for f in json.loads(Path(manifest["manifest_uri"][7:]).read_text())["files"]}
        assert {f"file://{tmp_path}/{n}" for n in data_files(tmp_path)} == listed, "the lake holds what is listed"
    finally:
        proxy.stop()


def test_a_horizon_beyond_the_calendar_is_refused_before_any_request(emu, tmp_path):
    from airflow_provider_cc.exceptions import ConstantContactInputError

    with pytest.raises(ConstantContactInputError, match="sent_within=.*reaches before the year 1"):
        pull(tmp_path, sent_within=timedelta(days=999999))
    assert emu.requests == []

