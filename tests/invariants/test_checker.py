"""The invariant checker can fail: fed a wrong file, a missing file, a bare Python error, a message naming
nothing, a leaked secret, a marker kept in state, a run that never ends or a dripping answer read to its end, it
says so; fed a correct run, it says nothing."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from airflow_provider_cc.emulator.faults import BOMB_BYTES
from airflow_provider_cc.exceptions import ConstantContactServerError
from tests.invariants.catalogue import Endpoint, Fault
from tests.invariants.checker import (
    Expected,
    Run,
    _wire,
    check_markers,
    check_pair,
    check_run,
    check_secrets,
    decoded_bytes,
    run_bounded,
)
from tests.invariants.scenarios import ALL, C0, SCENARIOS, W1, CampaignTracking, World

TRACKING = SCENARIOS["tracking_v2"]
ENDPOINT = Endpoint("v2", "GET /v2/emailmarketing/campaigns/{id}/tracking/{report}", "tracking_v2",
                    r"campaign \d+ sends")
FAULT = Fault("status_500", r"server error|500")


@pytest.fixture
def world(tmp_path, monkeypatch):
    found = World(tmp_path, monkeypatch)
    yield found
    found.stop()


def expected(world: World) -> Expected:
    return Expected(files={ALL: TRACKING.expected(world, ALL)})


def test_a_correct_run_passes(world):
    run = run_bounded(lambda: TRACKING.run(world, ALL), "clean", ALL)
    assert check_run(run, TRACKING, expected(world), world.root, None, None) == []


def test_a_file_one_byte_off_fails(world):
    run = run_bounded(lambda: TRACKING.run(world, ALL), "clean", ALL)
    path = next(p for p in world.root.rglob("*.jsonl") if "_state" not in p.parts)
    path.write_bytes(path.read_bytes().replace(b"EMAIL_SEND", b"EMAIL_SENT", 1))
    found = check_run(run, TRACKING, expected(world), world.root, None, None)
    assert len(found) == 1 and found[0].startswith("files:") and "EMAIL_SENT" in found[0]


def test_a_success_without_its_files_and_a_stray_file_fail(world):
    (world.root / "campaign").mkdir()
    (world.root / "campaign" / "stray.jsonl").write_bytes(b"{}\n")
    found = check_run(Run("clean", ALL, value={}), TRACKING, expected(world), world.root, None, None)
    assert [f.split(":")[0] for f in found] == ["files", "files"]
    assert "should not exist" in found[0] and "without writing 1 of its 1 files" in found[1]


def test_a_bare_python_error_and_a_message_naming_nothing_fail(world):
    bare = Run("faulty", ALL, error=KeyError("results"))
    assert check_run(bare, TRACKING, expected(world), world.root, ENDPOINT, FAULT)[0].startswith("error type:")
    vague = Run("faulty", ALL, error=ConstantContactServerError("something went wrong"))
    found = check_run(vague, TRACKING, expected(world), world.root, ENDPOINT, FAULT)
    assert [f.split(" the ")[0] for f in found] == ["message:", "message:"]
    named = Run("faulty", ALL, error=ConstantContactServerError(f"campaign {C0} sends (page 1): server error (500)"))
    assert check_run(named, TRACKING, expected(world), world.root, ENDPOINT, FAULT) == []
    assert check_run(named, TRACKING, expected(world), world.root, None, None)[0].startswith("rerun:")


def test_a_leaked_secret_fails_wherever_it_is(world):
    texts = {"a log line": f"retrying with api_key={world.emu.api_key}", "the result": "{}"}
    (world.root / "_state").mkdir()
    (world.root / "_state" / "x.json").write_text(world.emu.v3.options.client_secret)
    found = check_secrets(world, texts, [world.root])
    assert found == sorted(["secret: the api_key appears in a log line",
                            f"secret: the client secret appears in file {world.root}/_state/x.json"])


def test_a_faulty_answers_marker_kept_in_state_fails(world):
    (world.root / "_state").mkdir()
    (world.root / "_state" / "activities.json").write_text('{"c": ["fault-bad-id"]}')
    assert check_markers([world.root]) == [
        f"state: {world.root}/_state/activities.json holds 'fault-bad-id', which only the faulty answer said"]


def test_a_run_past_its_deadline_fails(world):
    run = run_bounded(lambda: time.sleep(2), "faulty", ALL, deadline=0.2)
    assert run.hung
    assert check_run(run, TRACKING, expected(world), world.root, ENDPOINT, FAULT)[0].startswith("deadline:")


def test_decoded_bytes_counts_what_requests_decodes(world):
    with decoded_bytes(True) as decoded:
        requests.get(f"{world.emu.url}/v2/emailmarketing/campaigns", params={"api_key": world.emu.api_key},
                     headers={"Authorization": f"Bearer {world.emu.token}"}, timeout=10).json()
    assert decoded == [0], "an answer that is not compressed decodes nothing"
    world.emu.arm("GET /v2/emailmarketing/campaigns", "gzip_bomb")
    with decoded_bytes(True) as decoded:
        requests.get(f"{world.emu.url}/v2/emailmarketing/campaigns", params={"api_key": world.emu.api_key},
                     headers={"Authorization": f"Bearer {world.emu.token}"}, timeout=10).json()
    assert decoded[0] > BOMB_BYTES, "requests decoded the whole bomb, and it was counted"
    assert _wire("gzip_bomb", {}, decoded[0])


def test_answers_read_to_their_end_fail():
    assert _wire("drip", {"hung_up": False, "seconds": 4.0}, 0)[0].startswith("wire:")
    assert _wire("oversized", {"hung_up": False}, 0)[0].startswith("wire:")
    assert _wire("gzip_bomb", {}, 64 * 1024 * 1024)[0].startswith("wire:")
    assert _wire("drip", {"hung_up": True}, 0) == _wire("gzip_bomb", {}, 1024) == []


@dataclass(frozen=True)
class Careless(CampaignTracking):
    """The tracking operator, then a careless step that logs the api_key and appends a record."""

    def run(self, world: World, window: tuple[str, str]) -> Any:
        result = super().run(world, window)
        logging.getLogger("airflow_provider_cc.careless").debug("key %s", world.emu.api_key)
        path = next(p for p in world.root.rglob("*.jsonl") if "_state" not in p.parts)
        path.write_bytes(path.read_bytes() + b'{"extra":1}\n')
        return result


def test_a_whole_pair_catches_a_careless_run(world, capfd):
    careless = Careless("careless", "v2", campaign=C0)
    found = check_pair(world, careless, ENDPOINT, FAULT, None, lambda: "".join(capfd.readouterr()))
    kinds = {f.split(":")[0] for f in found}
    assert kinds == {"files", "secret"}, found
    assert any("api_key appears in a log line" in f for f in found)


def test_a_deferral_is_an_ending_only_for_a_spent_quota(world):
    from airflow_provider_cc._compat import TaskDeferred
    from airflow_provider_cc.triggers.campaign import ConstantContactCampaignSentTrigger

    deferred = Run("faulty", ALL, error=TaskDeferred(trigger=ConstantContactCampaignSentTrigger(C0),
                                                     method_name="execute_complete"))
    quota = Fault("quota", r"quota")
    assert check_run(deferred, TRACKING, expected(world), world.root, ENDPOINT, quota) == []
    assert check_run(deferred, TRACKING, expected(world), world.root, ENDPOINT, FAULT)[0].startswith("error type:")


def test_the_account_runs_dimension_files_are_checked_like_its_events(world):
    account = SCENARIOS["account_v2"]
    want = Expected(files={w: account.expected(world, w) for w in account.windows})
    assert [p.split("/")[2] for p in want.files[W1] if p.startswith("dimension/")] == ["campaigns", "links"]
    run = run_bounded(lambda: account.run(world, W1), "clean", W1)
    assert check_run(run, account, want, world.root, None, None) == []
    (path,) = (world.root / "dimension" / "v2" / "campaigns").iterdir()
    path.write_bytes(path.read_bytes().replace(b'"name":"', b'"name":"fault-', 1))
    found = check_run(run, account, want, world.root, None, None)
    assert len(found) == 1 and "dimension/v2/campaigns/" in found[0] and "fault-" in found[0], found
    path.unlink()
    found = check_run(run, account, want, world.root, None, None)
    assert len(found) == 1 and "without writing 1 of its" in found[0] and "dimension/v2/campaigns/" in found[0], found
