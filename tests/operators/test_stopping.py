"""Stopping: SIGTERM (Airflow calls on_kill) stops a tracking task within a page and commits nothing; also
the operators' input checks that must fire before any request (unreadable dates, empty destinations)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pendulum
import pytest

from airflow_provider_cc._compat import AirflowTaskTerminated
from airflow_provider_cc.emulator import FaultConfig
from airflow_provider_cc.exceptions import ConstantContactDataError, ConstantContactInputError
from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator
from airflow_provider_cc.stopping import Stopper
from tests.conftest import ROOT, start_emulator

DAY1, DAY2 = pendulum.datetime(2024, 1, 1), pendulum.datetime(2024, 1, 2)
CTX = {"data_interval_start": DAY1, "data_interval_end": DAY2}


def pull(**kwargs) -> ConstantContactCampaignTrackingOperator:
    kwargs.setdefault("task_id", "pull")
    kwargs.setdefault("report", "opens")
    return ConstantContactCampaignTrackingOperator(**kwargs)


def pages(emulator, report: str = "opens") -> int:
    return sum(1 for path, _ in emulator.requests if path.endswith(f"/tracking/{report}"))


def files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def wait_for(condition, limit: float = 600.0) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def slow(monkeypatch):
    """An emulator taking 0.2 s per answer, so a one-record-per-page report takes many seconds."""
    emu = start_emulator(monkeypatch, faults=FaultConfig(latency=0.2))
    yield emu
    emu.stop()


def test_sigterm_stops_a_real_task_within_a_page_and_leaves_no_file(airflow_db, slow, tmp_path, monkeypatch):
    """A real Airflow run in its own process (dag.test, whose task runner installs Airflow's SIGTERM
    handler), signalled mid-report: it sends at most the page already in flight, and neither the file nor
    a temporary file is left."""
    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_OUTPUT_ROOT", f"file://{tmp_path}/")
    proc = subprocess.Popen([sys.executable, "-m", "tests.operators._stopping_runner", "1"], cwd=ROOT,
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: pages(slow) >= 3 or proc.poll() is not None)
        assert proc.poll() is None, "the run ended before it could be signalled"
        proc.send_signal(signal.SIGTERM)
        at_signal = pages(slow)
        output, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert pages(slow) - at_signal <= 1, f"{pages(slow) - at_signal} pages fetched after SIGTERM"
    assert "RUNNER-STATES {'pull_opens': 'failed'}" in output, output[-3000:]
    assert files(tmp_path) == []


@pytest.mark.parametrize("destination", ["root", None], ids=["file", "xcom"])
def test_on_kill_from_another_thread_stops_at_the_next_page(slow, tmp_path, destination):
    op = pull(campaign_id=slow.campaign_ids()[0], limit=1,
              destination=f"file://{tmp_path}/" if destination == "root" else None)
    wait_for_pages = threading.Thread(target=lambda: (wait_for(lambda: pages(slow) >= 2), op.on_kill()))
    wait_for_pages.start()
    with pytest.raises(AirflowTaskTerminated, match="pull: stopped .*nothing was committed"):
        op.execute(CTX)
    wait_for_pages.join()
    assert pages(slow) <= 3 and files(tmp_path) == []


def test_a_stop_before_commit_abandons_a_complete_file(emulator, tmp_path):
    """The last check: with every page read and written to the temporary file, a stop asked for just
    before the move commits nothing."""

    class StopAtTheSecondCheck(Stopper):  # 1st: before the only page; 2nd: before the commit
        calls = 0

        def check(self) -> None:
            self.calls += 1
            if self.calls == 2:
                self.stop()
            super().check()

    op = pull(campaign_id=emulator.campaign_ids()[0], destination=f"file://{tmp_path}/")
    op.__dict__["stopper"] = StopAtTheSecondCheck("pull")
    with pytest.raises(AirflowTaskTerminated):
        op.execute(CTX)
    assert pages(emulator) == 1 and op.stopper.calls == 2 and files(tmp_path) == []


def test_stopper_wrap_check_and_wait():
    stopper = Stopper("unit")
    assert list(stopper.wrap([[1], [2]])) == [[1], [2]] and not stopper.stopped
    assert stopper.wait(0.01) is False
    seen = []
    with pytest.raises(AirflowTaskTerminated, match="unit: stopped"):
        for batch in stopper.wrap([[1], [2], [3]]):
            seen.append(batch)
            stopper.stop()
    assert seen == [[1]] and stopper.wait(5) is True


# ---- checks before any request ---------------------------------------------------------------------------

PAGE_PATH = "/v2/emailmarketing/campaigns/7/tracking/sends"


def _record(date) -> dict:
    return {"activity_type": "EMAIL_SEND", "campaign_id": "7", "contact_id": "1", "email_address": "a@example.com",
            "send_date": date}


def test_unreadable_dates_fail_the_task_and_write_nothing(scripted, tmp_path):
    scripted.add(PAGE_PATH, 200, {"meta": {"pagination": {}},
                                  "results": [_record("2024-01-01T12:00:00.000Z"), _record("01/01/2024 12:00")]})
    with pytest.raises(ConstantContactDataError, match=r"1 of 2 records .*send_date .*'01/01/2024 12:00'"):
        pull(campaign_id=7, report="sends", destination=f"file://{tmp_path}/").execute(CTX)
    assert files(tmp_path) == []


def test_on_unreadable_date_skip_writes_the_readable_ones(scripted, tmp_path):
    good = [_record("2024-01-01T12:00:00.000z"), _record(1704114000000), _record("2024-01-01 14:00:00.000Z")]
    scripted.add(PAGE_PATH, 200, {"meta": {"pagination": {}}, "results": [*good, _record("soon"), _record(None)]})
    manifest = pull(campaign_id=7, report="sends", destination=f"file://{tmp_path}/",
                    on_unreadable_date="skip").execute(CTX)
    assert manifest["records"] == 3


def test_a_bad_on_unreadable_date_is_refused_before_any_request(emulator):
    with pytest.raises(ConstantContactInputError, match="on_unreadable_date='ignore'"):
        pull(campaign_id=emulator.campaign_ids()[0], on_unreadable_date="ignore").execute(CTX)
    assert emulator.requests == []


@pytest.mark.parametrize("destination", ["", "  ", "None", "output/campaigns/", "data.jsonl"])
def test_empty_none_or_relative_destinations_are_refused_before_any_request(emulator, destination):
    with pytest.raises(ConstantContactInputError, match=f"destination={destination!r} .*(s3://|file://)"):
        pull(campaign_id=emulator.campaign_ids()[0], destination=destination).execute(CTX)
    assert emulator.requests == []


def test_a_template_rendering_to_none_is_refused(emulator):
    """``{{ var.value.get('unset_root', None) }}`` renders to the text 'None', not to Python's None."""
    op = pull(campaign_id=emulator.campaign_ids()[0], destination="{{ var.value.get('unset_root', None) }}")
    rendered = op.render_template(op.destination, {"var": {"value": {"get": lambda key, default: default}}})
    assert rendered == "None"
    op.destination = rendered
    with pytest.raises(ConstantContactInputError, match="destination='None' .*leave destination=None for XCom"):
        op.execute(CTX)
    assert emulator.requests == []
