"""What the provider knows about an account's campaigns between runs: the send-time cache and its trust rules,
and the v3 campaign-activity cache, which never holds what no checked answer said."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from airflow_provider_cc._compat import ObjectStoragePath
from airflow_provider_cc.campaign_state import REVERIFY_AFTER, Activities, Known, SendTimes
from airflow_provider_cc.window import to_utc

NOW = datetime(2024, 3, 1, tzinfo=timezone.utc)


def test_send_times_are_remembered_and_written_only_when_new(tmp_path):
    path = ObjectStoragePath(f"file://{tmp_path}/sent.json")
    times = SendTimes(path).load()
    assert times.get("7") is None
    times.put("7", to_utc("2024-01-01T15:00:00Z", "t"))
    times.save()
    stamp = (tmp_path / "sent.json").stat().st_mtime_ns
    again = SendTimes(path).load()
    assert again.get("7") == to_utc("2024-01-01T15:00:00Z", "t")
    again.put("7", to_utc("2024-01-01T15:00:00Z", "t"))
    again.save()
    assert (tmp_path / "sent.json").stat().st_mtime_ns == stamp, "nothing new: not rewritten"


def test_send_times_saved_by_two_runs_at_once_keep_both(tmp_path):
    path = ObjectStoragePath(f"file://{tmp_path}/sent.json")
    one, two = SendTimes(path).load(), SendTimes(path).load()  # two runs of the DAG read the same cache
    one.put("7", to_utc("2024-01-01T15:00:00Z", "t"))
    two.put("8", to_utc("2024-01-08T15:00:00Z", "t"))
    one.save()
    two.save()
    merged = SendTimes(path).load()
    assert merged.get("7") == to_utc("2024-01-01T15:00:00Z", "t")
    assert merged.get("8") == to_utc("2024-01-08T15:00:00Z", "t")


def test_an_entry_decides_alone_only_while_recent_and_unchanged_in_the_list(tmp_path):
    path = ObjectStoragePath(f"file://{tmp_path}/sent.json")
    sent = to_utc("2024-01-01T15:00:00Z", "t")
    cache = SendTimes(path, now=NOW).load()
    cache.put("7", sent, "2024-01-01T15:00:01.000Z")
    cache.save()
    again = SendTimes(path, now=NOW + timedelta(days=3)).load()
    assert again.trusted("7", "2024-01-01T15:00:01.000Z") is not None and again.trusted("7") is not None
    assert again.trusted("7", "2024-02-20T00:00:00.000Z") is None, "edited or sent again: ask the campaign"
    assert SendTimes(path, now=NOW + REVERIFY_AFTER + timedelta(hours=1)).load().trusted("7") is None, "too old"


def test_it_keeps_the_first_send_and_the_last_when_a_campaign_is_sent_again(tmp_path):
    path = ObjectStoragePath(f"file://{tmp_path}/sent.json")
    first, again = to_utc("2024-01-01T15:00:00Z", "t"), to_utc("2024-02-01T15:00:00Z", "t")
    cache = SendTimes(path, now=NOW).load()
    cache.put("7", first)
    cache.put("7", again)
    cache.save()
    entry = SendTimes(path, now=NOW).load().trusted("7")
    assert entry is not None and (entry.first, entry.last) == (first, again)


def test_a_cache_of_the_first_version_is_read_but_trusted_only_once_verified(tmp_path):
    (tmp_path / "sent.json").write_text('{"sent": {"7": "2024-01-01T15:00:00.000Z"}}\n')
    cache = SendTimes(ObjectStoragePath(f"file://{tmp_path}/sent.json"), now=NOW).load()
    assert cache.get("7") == to_utc("2024-01-01T15:00:00Z", "t") and cache.trusted("7") is None


A1, A2 = "3f8e0d1a-0000-4000-8000-000000000001", "3f8e0d1a-0000-4000-8000-000000000002"


def test_the_activity_cache_never_holds_an_empty_list_nor_what_is_not_an_activity_id(tmp_path):
    """h1, m5: an entry an earlier version cached from a malformed answer (no activity, a path as an id) is
    ignored, so the campaign is asked again; no empty list is ever written."""
    sent = "2024-01-01T15:00:00.000Z"
    (tmp_path / "activities.json").write_text(json.dumps({"version": 1, "campaigns": {
        "c-empty": {"last_sent": sent, "activities": [], "first_sent": None},
        "c-path": {"last_sent": sent, "activities": [A1, "../../../x"], "first_sent": None},
        "c-good": {"last_sent": sent, "activities": [A1.upper(), A2], "first_sent": None},
        "c-twice": {"last_sent": sent, "activities": [A1, A1], "first_sent": None}}}))
    path = ObjectStoragePath(f"file://{tmp_path}/activities.json")
    cache = Activities(path).load()
    assert cache.get("c-empty", sent) is None and cache.get("c-path", sent) is None
    assert cache.get("c-good", sent) is None, "upper case: not what the provider writes"
    assert cache.get("c-twice", sent) == Known(sent, (A1,))
    cache.put("c-new", Known(sent, ()))
    cache.put("c-ok", Known(sent, (A2,)))
    cache.forget("c-twice")
    cache.save()
    saved = json.loads((tmp_path / "activities.json").read_text())["campaigns"]
    assert set(saved) == {"c-ok"}, "the empty answer is not cached, the contradicted one forgotten"
