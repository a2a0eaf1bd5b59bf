"""The example DAGs on one real deployment: scheduler, dag-processor, triggerer and API server as processes.

First the event-driven DAG: its AssetWatcher runs on the triggerer, announces each sent campaign of the
emulator's account once, and the DAG scheduled on the asset pulls those campaigns' tracking; the triggerer is
then restarted, and the re-created trigger goes on from the watermark it stored in the asset's state store,
announcing nothing again. Then a backfill of the daily DAG's first three intervals (made through the REST API,
as the UI's Backfill button makes it), the DAG's catch-up going on after them; one interval is cleared and
rewritten, and the wait-for-send DAG waits on the triggerer until the campaign is moved to SENT through the
emulator's control endpoint; then the v3 daily and wait-for-send DAGs. Files are checked generically against
the emulator's records, whatever the DAGs' internals: every file at
``campaign/{report}/campaign_id={id}/{start}_{end}.jsonl``; the daily DAGs' dimension files
(``dimension/{api}/{name}/{start}_{end}.jsonl``) against the emulator's campaign objects.

One deployment for all (the backfill too: it had its own scheduler and API server): starting Airflow's four
processes costs about 45 CPU seconds.
"""

from __future__ import annotations

import json
import re
import time
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_cc.emulator import DataConfig
from airflow_provider_cc.emulator import Emulator as Reference
from airflow_provider_cc.emulator.data import ms_to_text
from airflow_provider_cc.reports import CAMPAIGN_REPORT_NAMES, v3_report
from airflow_provider_cc.window import format_api, record_instant, to_utc
from tests import dimension_rows, reaper
from tests.conftest import as_output
from tests.system.conftest import PATIENCE, read_jsonl, wait_for

if TYPE_CHECKING:
    from pathlib import Path

DAILY, WAIT = "constant_contact_daily", "constant_contact_wait_for_send"
ON_SEND = "constant_contact_on_send"
FIRST_LOOK = "watching the campaign sends of constant_contact_default"
V3_DAILY, V3_WAIT = "constant_contact_v3_daily", "constant_contact_v3_wait_for_send"
AIRFLOW_VERSION = tuple(int(part) for part in version("apache-airflow").split(".")[:2])
# The emulator's data (the CLI's defaults plus the sizes the deployment fixture starts it with).
DATA = DataConfig(campaigns=2, contacts=200, activities=300)
# The daily DAG's first three data intervals after its start_date (2024-01-01, daily at 03:00 UTC).
INTERVALS = [("2024-01-01T03:00:00Z", "2024-01-02T03:00:00Z"), ("2024-01-02T03:00:00Z", "2024-01-03T03:00:00Z"),
             ("2024-01-03T03:00:00Z", "2024-01-04T03:00:00Z")]
STAMP = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(?:\.(\d{3}))?Z")
LAYOUT = re.compile(r"campaign/(\w+)/campaign_id=(\d+)/(\w+(?:\.\d+)?Z)_(\w+(?:\.\d+)?Z)\.jsonl")
RUNNING = {"queued", "running", "deferred", "up_for_reschedule", "restarting"}
DONE = {"success", "failed", "upstream_failed", "skipped", "removed"}


def iso(stamp: str) -> str:
    y, mo, d, h, mi, s, ms = STAMP.fullmatch(stamp).groups()  # type: ignore[union-attr]
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}.{ms or '000'}Z"


def stamp(text: str) -> str:
    return text.replace("-", "").replace(":", "")


def data_files(output: Path) -> dict[str, bytes]:
    """Every event and dimension file of the root, by its path relative to it (the provider's ``_state/`` and
    the v3 DAG's root below it left out)."""
    return {str(p.relative_to(output)): p.read_bytes() for p in output.rglob("*.jsonl")
            if p.relative_to(output).parts[0] in ("campaign", "dimension")}


def finished(airflow: Any, dag_id: str, run_id: str, tries: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """The run's task instances once all are done (after ``tries``, when given); fails at once on a failure."""
    tis = airflow.task_instances(dag_id, run_id)
    failed = [(ti["task_id"], ti["map_index"]) for ti in tis if ti["state"] in ("failed", "upstream_failed")]
    assert not failed, f"{dag_id} {run_id}: failed {failed}\n{airflow.processes.tails()}"
    done = tis and all(ti["state"] in DONE and ti["try_number"] > (tries or {}).get(ti["task_id"], 0) for ti in tis)
    return tis if done else []


def handed_off(airflow: Any, dag_id: str, run_id: str) -> bool:
    """The sensor is deferred in the metadata DB and the scheduler has taken in the exit of the worker that
    deferred it. Only then may the trigger fire: one that fires earlier races Airflow's own bookkeeping (the
    deferring try's "success" event, processed after the resumed task was queued again, fails the task)."""
    sensor = {ti["task_id"]: ti for ti in airflow.task_instances(dag_id, run_id)}["wait_for_send"]
    assert sensor["state"] not in ("failed", "upstream_failed"), airflow.processes.tails()
    if sensor["state"] != "deferred":
        return False
    key = (f"TaskInstanceKey(dag_id='{dag_id}', task_id='wait_for_send', run_id='{run_id}', "
           f"try_number={sensor['try_number']},")
    return any("Received executor event with state success" in line and key in line
               for line in airflow.processes.log("scheduler").splitlines())


def daily_quiet(airflow: Any) -> bool:
    """No task of the daily DAG is queued or running (a run the catch-up started before the pause included)."""
    return not any(ti["state"] in RUNNING for run in airflow.runs(DAILY)
                   for ti in airflow.task_instances(DAILY, run["dag_run_id"]))


def by_interval(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["data_interval_start"][:19]: r for r in runs if r.get("data_interval_start")}


def served(emulator: Any) -> int:
    """Requests the emulator has answered (every process's)."""
    return requests.get(f"{emulator.url}/_emulator/stats", timeout=60).json()["requests"]


def announced(airflow: Any) -> list[dict[str, Any]]:
    """The payloads of the asset's events, oldest first."""
    asset = airflow.api("GET", "/assets", params={"name_pattern": "constant_contact_campaign_sent"})["assets"][0]
    events = airflow.api("GET", "/assets/events", params={"asset_id": asset["id"], "order_by": "timestamp",
                                                          "limit": 100})["asset_events"]
    return [e["extra"]["payload"] for e in events]


def each_send_runs_the_event_driven_dag_once_across_a_triggerer_restart(airflow: Any, emulator: Any,
                                                                        reference: Reference, output: Path) -> None:
    """The event-driven DAG, writing below ``output``, before any campaign changes status."""
    sent = sorted((c.run_ms, c.id) for c in reference.dataset.campaigns.values() if c.status == "SENT")
    want = [(cid, format_api(record_instant(ms_to_text(ms)))) for ms, cid in sent]
    airflow.wait_parsed([ON_SEND])

    # Paused DAGs have no watcher: unpause, and parse the file again so the scheduler registers it.
    airflow.set_paused(ON_SEND, False)
    token = airflow.api("GET", f"/dags/{ON_SEND}/details")["file_token"]
    airflow.api("PUT", f"/parseDagFile/{token}")
    wait_for("the watcher's first look", lambda: FIRST_LOOK in airflow.processes.log("triggerer"), PATIENCE,
             logs=airflow.processes.tails)

    # Both sends are announced, each once, and the runs pull every report of both campaigns, a task each. (The
    # asset events are read once the runs are done: Airflow 3.3's REST API answers 500 for an event whose run
    # has not started.)
    def all_done() -> bool:
        runs = airflow.runs(ON_SEND)
        done = [finished(airflow, ON_SEND, r["dag_run_id"]) for r in runs]
        pulls = [ti for tis in done for ti in tis if ti["task_id"] == "pull"]
        return bool(runs) and all(done) and len(pulls) == len(want)

    wait_for("the event-driven runs to pull every report of each campaign", all_done, PATIENCE,
             logs=airflow.processes.tails)
    runs = len(airflow.runs(ON_SEND))
    payloads = announced(airflow)
    assert [(p["campaign_id"], p["sent"]) for p in payloads] == want, payloads
    assert all(p["api"] == "v2" and p["name"] and p["constant_contact_conn_id"] == "constant_contact_default"
               for p in payloads)
    for cid, since in want:  # every report of the campaign, from its send on, as the emulator has it (none: no file)
        for report in CAMPAIGN_REPORT_NAMES:
            records = as_output(reference.records(cid, report, created_since=since))
            paths = list((output / f"campaign/{report}/campaign_id={cid}").glob("*.jsonl"))
            assert [read_jsonl(p) for p in paths] == ([records] if records else []), (cid, report, paths)
    assert sum(1 for p in output.glob("campaign/*/*/*.jsonl")) > len(want), "the campaigns have activity"

    # The triggerer restarts: the trigger is made again from its kwargs (sent_after=2000: both sends would be
    # announced again from those alone) and reads its watermark from the asset's state store.
    old = airflow.processes.running["triggerer"]
    reaper.stop(old)
    before = served(emulator)  # from here on every request is the new trigger's: the other DAGs are paused
    airflow.processes.start("triggerer", [*old.args[:3], "triggerer", "--skip-serve-logs"])
    wait_for("the new triggerer's first look", lambda: airflow.processes.log("triggerer").count(FIRST_LOOK) >= 2,
             PATIENCE, logs=airflow.processes.tails)
    first, again = re.findall(re.escape(FIRST_LOOK) + r".*?announcing sends after (\S+)",
                              airflow.processes.log("triggerer"))
    assert first == "2000-01-01T00:00:00.000Z" and again != first, "the restarted trigger lost its watermark"
    # Its first poll is answered; a send it found would be logged at once ("... was sent at ..."), before any
    # event. Fifteen seconds of silence after the answer, then nothing more was announced.
    wait_for("the new trigger's first poll", lambda: served(emulator) >= before + 1, PATIENCE,
             logs=airflow.processes.tails)
    deadline = time.monotonic() + 15
    while True:
        restarted = airflow.processes.log("triggerer").split(FIRST_LOOK)[2]
        assert "was sent at" not in restarted, f"a send was announced again after the restart:\n{restarted}"
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(airflow.runs(ON_SEND)) == runs, "a send was announced again after the restart"
    assert len(announced(airflow)) == len(want), announced(airflow)
    airflow.set_paused(ON_SEND, True)  # the sends the later steps make are theirs


def test_example_dags_on_a_real_scheduler(deployment):
    airflow, emulator, output, credentials = deployment
    reference = Reference(DATA)  # the same data, in this process, to compare with
    reference.server.server_close()
    airflow.create_pool("constant_contact", 1)
    airflow.set_variable("constant_contact_output_root", f"file://{output}/on_send/")
    each_send_runs_the_event_driven_dag_once_across_a_triggerer_restart(airflow, emulator, reference,
                                                                        output / "on_send")

    airflow.set_variable("constant_contact_output_root", f"file://{output}/")
    airflow.wait_parsed([DAILY, WAIT])

    # A backfill of the daily DAG's first three intervals, made through the REST API (as the UI's Backfill button
    # and `airflow backfill create` make one) while the DAG is paused, its runs all active at once. Unpaused, the
    # scheduler runs it, its tasks the oldest first, before the catch-up's (one task at a time: the deployment's
    # parallelism is 1). The DAG's catch-up from its start_date skips the backfilled intervals and creates its
    # first run after them; paused once the backfill's runs are done, whether that run's task ran or not. A paused
    # DAG's run states are updated lazily, so the checks read task states.
    backfill = airflow.api("POST", "/backfills", json={"dag_id": DAILY, "from_date": INTERVALS[0][0],
                                                       "to_date": INTERVALS[-1][0], "max_active_runs": len(INTERVALS)})
    airflow.set_paused(DAILY, False)

    def backfilled() -> bool:
        runs = by_interval(airflow.runs(DAILY))
        return all(start[:19] in runs and finished(airflow, DAILY, runs[start[:19]]["dag_run_id"])
                   for start, _ in INTERVALS) and any(r["run_type"] == "scheduled" for r in runs.values())

    wait_for("the backfill's three runs, and the catch-up's first scheduled run after them", backfilled, PATIENCE,
             logs=airflow.processes.tails)
    airflow.set_paused(DAILY, True)
    wait_for("the daily DAG to go quiet", lambda: daily_quiet(airflow), PATIENCE, logs=airflow.processes.tails)
    wait_for("the backfill to be marked complete", lambda: airflow.api("GET", f"/backfills/{backfill['id']}")[
        "completed_at"], PATIENCE, logs=airflow.processes.tails)
    runs = by_interval(airflow.runs(DAILY))
    assert {start[:19]: runs[start[:19]]["run_type"] for start, _ in INTERVALS} == {
        start[:19]: "backfill" for start, _ in INTERVALS}, runs
    scheduled = sorted(start for start, r in runs.items() if r["run_type"] == "scheduled")
    assert scheduled and min(scheduled) > INTERVALS[-1][0][:19], "the catch-up skipped the backfilled intervals"
    ran = []  # every finished run's interval: the backfill's, and the catch-up's if its task ran before the pause
    for start, run in sorted(runs.items()):
        tis = finished(airflow, DAILY, run["dag_run_id"])
        if tis or start <= INTERVALS[-1][0][:19]:
            assert [(ti["task_id"], ti["state"]) for ti in tis] == [("pull_account", "success")], (start, tis)
            ran.append((f"{start}Z", f"{run['data_interval_end'][:19]}Z"))
    runs = {start: runs[start[:19]]["dag_run_id"] for start, _ in INTERVALS}

    daily = data_files(output)
    for since, before in INTERVALS:  # nothing lost: a file for every campaign and report with records
        for cid in reference.campaign_ids("SENT"):
            for report in CAMPAIGN_REPORT_NAMES:
                if reference.records(cid, report, created_since=since, created_before=before):
                    name = f"campaign/{report}/campaign_id={cid}/{stamp(since)}_{stamp(before)}.jsonl"
                    assert name in daily, f"missing {name}; written: {sorted(daily)}"
    dimensions = dimension_rows.v2_rows(reference, reference.campaign_ids("SENT"))  # each run's, the same rows
    assert dimension_rows.written(output) == {f"dimension/v2/{name}/{stamp(since)}_{stamp(before)}.jsonl": rows
                                              for since, before in ran for name, rows in dimensions.items()}

    # Clearing the first interval's task pulls it again and rewrites the same bytes.
    first = runs[INTERVALS[0][0]]
    cleared = {n: (output / n).stat().st_ino for n in daily if f"/{stamp(INTERVALS[0][0])}_" in n}
    tries = {ti["task_id"]: ti["try_number"] for ti in airflow.task_instances(DAILY, first)}
    airflow.clear(DAILY, first, list(tries))
    airflow.set_paused(DAILY, False)
    tis = wait_for("the cleared task to run again", lambda: finished(airflow, DAILY, first, tries), PATIENCE,
                   logs=airflow.processes.tails)
    airflow.set_paused(DAILY, True)
    assert [(ti["task_id"], ti["state"]) for ti in tis] == [("pull_account", "success")], tis
    wait_for("the daily DAG to go quiet", lambda: daily_quiet(airflow), PATIENCE, logs=airflow.processes.tails)
    again = data_files(output)
    assert {n: again[n] for n in cleared} == {n: daily[n] for n in cleared}, "a cleared task rewrote other bytes"
    assert all((output / n).stat().st_ino != inode for n, inode in cleared.items()), "the files were not rewritten"

    # The wait-for-send DAG: its sensor defers to the triggerer, which checks (every second, by the cluster
    # policy) until the campaign is moved to SENT.
    scheduled = reference.campaign_ids("SCHEDULED")[0]
    airflow.set_paused(WAIT, False)
    run_id = airflow.trigger(WAIT, {"campaign_id": scheduled})

    def trigger_checked() -> bool:
        sensor = {ti["task_id"]: ti for ti in airflow.task_instances(WAIT, run_id)}["wait_for_send"]
        assert sensor["state"] not in ("failed", "upstream_failed"), airflow.processes.tails()
        return any("is SCHEDULED; next check" in p.read_text(errors="replace")
                   for p in (airflow.home / "logs" / f"dag_id={WAIT}").rglob("*trigger*"))

    wait_for("the trigger to find the campaign SCHEDULED", trigger_checked, PATIENCE, logs=airflow.processes.tails)
    wait_for("the scheduler to take in the deferring worker's exit", lambda: handed_off(airflow, WAIT, run_id),
             PATIENCE, logs=airflow.processes.tails)
    emulator.set_status(scheduled, "SENT")
    reference.set_status(scheduled, "SENT")
    tis = wait_for("the wait-for-send run to finish", lambda: finished(airflow, WAIT, run_id), PATIENCE,
                   logs=airflow.processes.tails)
    assert sorted(ti["task_id"] for ti in tis) == ["pull", "wait_for_send"]
    assert all(ti["state"] == "success" for ti in tis), [(ti["task_id"], ti["state"]) for ti in tis]
    wait_for("the wait-for-send run's state", lambda: next(
        r for r in airflow.runs(WAIT) if r["dag_run_id"] == run_id)["state"] == "success", PATIENCE)

    # Every file equals the emulator's records for its campaign, report and window; no temporary file left.
    files = data_files(output)
    assert {n.split("/")[1] for n in files if f"campaign_id={scheduled}/" in n} == set(CAMPAIGN_REPORT_NAMES)
    for name in (n for n in files if n.startswith("campaign/")):
        report, cid, since, before = LAYOUT.fullmatch(name).groups()  # type: ignore[union-attr]
        expected = as_output(reference.records(cid, report, created_since=iso(since), created_before=iso(before)))
        assert read_jsonl(output / name) == expected, name
    assert not list(output.rglob(".*.tmp")), list(output.rglob(".*.tmp"))

    # The v3 daily DAG on the same deployment: its first interval on the scheduler, its tokens in the default
    # store (an Airflow Variable, written by the task through the API server), a file per activity.
    v3_root = output / "v3"
    airflow.wait_parsed([V3_DAILY])
    airflow.set_paused(V3_DAILY, False)
    wait_for("the first v3 daily run", lambda: INTERVALS[0][0][:19] in by_interval(airflow.runs(V3_DAILY)), PATIENCE,
             logs=airflow.processes.tails)
    airflow.set_paused(V3_DAILY, True)
    v3_run = by_interval(airflow.runs(V3_DAILY))[INTERVALS[0][0][:19]]["dag_run_id"]
    tis = wait_for("the v3 daily run to finish", lambda: finished(airflow, V3_DAILY, v3_run), PATIENCE,
                   logs=airflow.processes.tails)
    assert [(ti["task_id"], ti["state"]) for ti in tis] == [("pull_account", "success")], tis
    low, high = (to_utc(t, "s") for t in INTERVALS[0])
    want = {}
    for campaign in (c for c in reference.v3.view.campaigns.values() if c.primary.status == "SENT"):
        for activity in reference.v3.view.reported(campaign):
            for report in CAMPAIGN_REPORT_NAMES:
                kept = [{**r, "campaign_id": campaign.id} for r in reference.v3_records(
                    activity.id, v3_report(report).segment) if low <= record_instant(r["created_time"]) < high]
                if kept:
                    want[f"campaign/{report}/campaign_id={campaign.id}/campaign_activity_id={activity.id}/"
                         f"{stamp(INTERVALS[0][0])}_{stamp(INTERVALS[0][1])}.jsonl"] = kept
    v3_files = {str(p.relative_to(v3_root)): read_jsonl(p) for p in v3_root.glob("campaign/**/*.jsonl")}
    assert v3_files == want and want
    dimensions = dimension_rows.v3_rows(reference, [c.id for c in reference.v3.view.campaigns.values()
                                                    if c.primary.status == "SENT"],
                                        dimension_rows.clicked_activities(want))
    assert dimension_rows.written(v3_root) == {
        f"dimension/v3/{name}/{stamp(INTERVALS[0][0])}_{stamp(INTERVALS[0][1])}.jsonl": rows
        for name, rows in dimensions.items()}
    # The v3 wait-for-send DAG: its sensor defers, the triggerer reads the v3 connection and its tokens, and
    # fires once the campaign is Done with a completed send.
    pending = next(c for c in reference.v3.view.campaigns.values() if c.primary.status == "DRAFT")  # not sent
    airflow.wait_parsed([V3_WAIT])
    airflow.set_paused(V3_WAIT, False)
    wait_run = airflow.trigger(V3_WAIT, {"campaign_id": pending.id})

    wait_for("the v3 sensor to defer, and the scheduler to take in its worker's exit",
             lambda: handed_off(airflow, V3_WAIT, wait_run), PATIENCE, logs=airflow.processes.tails)
    emulator.set_status(pending.primary.id, "SENT")
    reference.set_status(pending.primary.id, "SENT")
    tis = wait_for("the v3 wait-for-send run to finish", lambda: finished(airflow, V3_WAIT, wait_run), PATIENCE,
                   logs=airflow.processes.tails)
    assert all(ti["state"] == "success" for ti in tis), [(ti["task_id"], ti["state"]) for ti in tis]
    assert list(v3_root.glob(f"campaign/*/campaign_id={pending.id}/campaign_activity_id=*/*.jsonl"))
    v3_conn = json.loads(emulator.v3_connection)
    credentials = {**credentials, "client_secret": v3_conn["password"],
                   "refresh_token": v3_conn["extra"]["refresh_token"]}

    # No secret in any task log, nor in any Airflow process's own log.
    task_logs = [p for p in (airflow.home / "logs").rglob("*") if p.is_file()]
    assert any("pull_account" in str(p) for p in task_logs), task_logs
    for path in [*task_logs, *(airflow.home / f"{name}.log" for name in airflow.processes.running
                               if name != "emulator")]:
        text = path.read_text(errors="replace")
        assert not [name for name, secret in credentials.items() if secret in text], f"a secret in {path}"
    served = airflow.processes.log("api-server")
    assert "/execution/connections/constant_contact_default" in served, "tasks read the connection through it"
    if AIRFLOW_VERSION >= (3, 1):  # the setting that drops the scheme line ([logging] namespace_levels) is 3.1+
        assert "shall not contain '_'" not in served
