"""The account operator when the application's daily quota is spent (another DAG on the same app spent it):
in a real run of the v3 history DAG (``dag.test`` runs the deferral's trigger in-process, on Airflow 3 and 2)
the task defers until the quota resets, holding no worker slot, then goes on from its checkpoint and writes the
bytes of an uninterrupted run; the waits are bounded; ``wait_for_quota_reset=False`` fails at once; the default reset is
the next 00:00 UTC. The emulator's daily quota stands for the app's, and the reset instant is moved to a
moment from now (``quota_reset`` patched), at which the test lifts the emulator's quota."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pendulum
import pytest

from airflow_provider_cc._compat import TaskDeferred
from airflow_provider_cc.emulator import DataConfig, FaultConfig, V3Options
from airflow_provider_cc.exceptions import (
    ConstantContactInputError,
    ConstantContactQuotaSpentError,
)
from airflow_provider_cc.operators import account as account_module
from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator
from airflow_provider_cc.triggers.quota import ConstantContactQuotaResetTrigger
from tests.conftest import FAST_RETRY, start_emulator, start_v3

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_provider_cc.emulator import Emulator

# The v3 history DAG's arguments (daily partitions on its anchor), for four weekly campaigns.
SINCE, BEFORE = "2022-02-07T03:00:00Z", "2022-03-07T03:00:00Z"
WINDOW = {"data_interval_start": SINCE, "data_interval_end": BEFORE}
KWARGS: dict[str, Any] = {"created_since": SINCE, "created_before": BEFORE, "partition": timedelta(days=1),
                          "partition_anchor": "2024-01-01T03:00:00Z"}
WAIT = 2.0  # seconds from the quota error to the moved reset


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Emulator]:
    """A small v3 account behind the account operator's usual connection id."""
    emu = start_v3(monkeypatch, str(tmp_path / "tokens"), DataConfig.realistic(weeks=4, activities=60),
                   options=V3Options(resend_every=3))
    monkeypatch.setenv("AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT", emu.v3_connection_json(
        **{**FAST_RETRY, "oauth_store": str(tmp_path / "tokens")}))
    yield emu
    emu.stop()


class Reset:
    """Stands in for ``quota_reset``: the reset is ``WAIT`` seconds after the call, and at that moment the
    emulator's quota is lifted (unless ``lift`` is False). Counts the waits."""

    def __init__(self, emu: Emulator, lift: bool = True) -> None:
        self.emu, self.lift = emu, lift
        self.calls: list[datetime] = []
        self.timers: list[threading.Timer] = []

    def __call__(self, now: datetime | None = None) -> datetime:
        moment = datetime.now(timezone.utc) + timedelta(seconds=WAIT)
        self.calls.append(moment)
        if self.lift:
            timer = threading.Timer(WAIT, self.emu.set_faults, [FaultConfig()])
            timer.daemon = True
            timer.start()
            self.timers.append(timer)
        return moment

    def cancel(self) -> None:
        for timer in self.timers:
            timer.cancel()


@pytest.fixture
def reset(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reset]:
    moved = Reset(emu)
    monkeypatch.setattr(account_module, "quota_reset", moved)
    yield moved
    moved.cancel()


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.glob("campaign/**/*.*")}


def manifest(root: Path) -> dict[str, Any]:
    found = list(root.glob("_state/**/manifests/*.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def clean_run(emu: Emulator, root: Path) -> tuple[dict[str, bytes], int]:
    """The files and request count of an uninterrupted run."""
    ConstantContactAccountTrackingOperator(task_id="clean", destination=f"file://{root}/", **KWARGS).execute(WINDOW)
    return files(root), manifest(root)["requests"]


def run_history(monkeypatch: pytest.MonkeyPatch, root: Path, day: int, **changes: Any) -> dict[str, str]:
    """Run the v3 history DAG over the window into ``root`` (``changes``: the task's attributes changed); its
    task states. ``day``: a logical date of its own for Airflow 2."""
    from airflow_provider_cc._compat import AIRFLOW_V_3
    from tests.conftest import dag_test, load_dags

    monkeypatch.setenv("AIRFLOW_VAR_CONSTANT_CONTACT_V3_OUTPUT_ROOT", f"file://{root}/")
    dag = load_dags()[0]["constant_contact_v3_history"]
    task = dag.get_task("load_history")
    for name, value in changes.items():
        setattr(task, name, value)
    run = dag_test(dag, None if AIRFLOW_V_3 else pendulum.datetime(2024, 2, day, tz="UTC"),
                   run_conf={"start": SINCE, "end": BEFORE, "max_requests": 8000})
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_a_spent_quota_defers_until_the_reset_and_the_run_goes_on_from_its_checkpoint(airflow_db, emu, reset,
                                                                                       monkeypatch, tmp_path):
    want, requests = clean_run(emu, tmp_path / "clean")
    assert want and requests > 10
    emu.set_faults(FaultConfig(daily_quota=requests // 2))  # another DAG left half a run's requests for today
    assert run_history(monkeypatch, tmp_path / "lake", 1) == {"load_history": "success"}
    assert len(reset.calls) == 1, "one wait: the task resumed only once the quota had reset"
    assert files(tmp_path / "lake") == want, "the bytes of an uninterrupted run"
    done = manifest(tmp_path / "lake")
    assert done["units"]["resumed"] > 0, "the units committed before the wait were not fetched again"
    assert done["requests"] < requests, "the go after the wait sent less than a whole run"


def test_the_waits_are_bounded(airflow_db, emu, monkeypatch, tmp_path):
    moved = Reset(emu, lift=False)  # the quota never comes back
    monkeypatch.setattr(account_module, "quota_reset", moved)
    emu.set_faults(FaultConfig(daily_quota=8))
    assert run_history(monkeypatch, tmp_path / "lake", 2, max_quota_waits=2) == {"load_history": "failed"}
    assert len(moved.calls) == 2, "two waits, then the quota error fails the task"


def test_the_task_defers_to_the_next_midnight_utc_and_says_so(emu, tmp_path, caplog, capsys):
    emu.set_faults(FaultConfig(daily_quota=3))
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", **KWARGS)
    before = datetime.now(timezone.utc)
    with caplog.at_level("WARNING"), pytest.raises(TaskDeferred) as info:
        op.execute(WINDOW)
    trigger = info.value.trigger
    assert isinstance(trigger, ConstantContactQuotaResetTrigger) and trigger.waits == 1
    midnight = (before + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert trigger.moment in (midnight, midnight + timedelta(days=1)), "the next 00:00 UTC"
    assert info.value.method_name == "execute_after_quota_reset"
    text = caplog.text + "".join(capsys.readouterr())  # Airflow 3 logs operators through structlog
    assert f"Instead of failing, the task waits for its reset at {trigger.moment:%Y-%m-%d} 00:00 UTC" in text
    assert "holding no worker slot" in text and "quota_exceeded" in text
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_cc.triggers.quota.ConstantContactQuotaResetTrigger" and kwargs["waits"] == 1


def test_the_v2_daily_quota_is_waited_for_too(monkeypatch, tmp_path, caplog, capsys):
    emu = start_emulator(monkeypatch, DataConfig(campaigns=2, activities=150), FaultConfig(daily_quota=3))
    try:
        with caplog.at_level("WARNING"), pytest.raises(TaskDeferred) as info:
            ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/").execute(
                {"data_interval_start": "2024-01-01T00:00:00Z", "data_interval_end": "2024-01-08T00:00:00Z"})
        assert isinstance(info.value.trigger, ConstantContactQuotaResetTrigger)
        text = caplog.text + "".join(capsys.readouterr())
        assert "over.ratelimit" in text and "the task waits for its reset" in text
    finally:
        emu.stop()


def test_without_waiting_a_spent_quota_fails_at_once(emu, reset, tmp_path):
    emu.set_faults(FaultConfig(daily_quota=3))
    with pytest.raises(ConstantContactQuotaSpentError, match="resets at 00:00 UTC"):
        ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/",
                                               wait_for_quota_reset=False, **KWARGS).execute(WINDOW)
    assert reset.calls == []


def test_a_resumed_task_whose_event_does_not_say_how_often_it_waited_does_not_wait_again(emu, reset, tmp_path):
    emu.set_faults(FaultConfig(daily_quota=3))
    with pytest.raises(ConstantContactQuotaSpentError):
        ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", **KWARGS
                                               ).execute_after_quota_reset(WINDOW, event="2024-01-01T00:00:00Z")
    assert reset.calls == []


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"wait_for_quota_reset": "yes"}, "wait_for_quota_reset='yes' must be True or False"),
    ({"max_quota_waits": 0}, "max_quota_waits=0 must be a whole number from 1 to 30"),
    ({"max_quota_waits": True}, "max_quota_waits=True"),
])
def test_bad_quota_options_are_refused_before_any_request(emu, tmp_path, kwargs, words):
    seen = len(emu.requests)
    with pytest.raises(ConstantContactInputError, match=words):
        ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/", **kwargs
                                               ).execute(WINDOW)
    assert emu.requests[seen:] == []


def test_after_a_wait_the_try_goes_on_with_its_own_units_even_with_resume_false(emu, reset, tmp_path):
    want, requests = clean_run(emu, tmp_path / "clean")
    emu.set_faults(FaultConfig(daily_quota=requests // 2))
    op = ConstantContactAccountTrackingOperator(task_id="a", destination=f"file://{tmp_path}/lake/", resume=False,
                                                **KWARGS)
    with pytest.raises(TaskDeferred) as info:
        op.execute(WINDOW)
    emu.set_faults(FaultConfig())
    trigger = info.value.trigger
    done = op.execute_after_quota_reset(WINDOW, event={"reset": trigger.moment.isoformat(), "waits": trigger.waits})
    assert done["units"]["resumed"] > 0 and done["requests"] < requests, "the go after the wait sent less than a run"
    assert files(tmp_path / "lake") == want
