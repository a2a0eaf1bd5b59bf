"""The single-fault suite's scenarios: each does what one caller does (an operator, the sensor, the trigger, the
login command) against a small account on the emulator over real HTTP, and says what a correct run yields.

A :class:`World` is one emulator, one root and one token store: what one (endpoint, fault) pair runs against.
Runs call ``execute`` with a minimal context (the window), as a task would, each as a fresh task process would
start it (no token manager of an earlier run kept in memory).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import re
import secrets
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from unittest import mock

import requests

from airflow_provider_cc._compat import AirflowFailException, AirflowSensorTimeout
from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
from airflow_provider_cc.emulator.data import Dataset, text_to_ms
from airflow_provider_cc.emulator.v3data import V3View
from airflow_provider_cc.exceptions import ConstantContactError, ConstantContactUnavailableError
from airflow_provider_cc.reports import REPORTS, v3_report
from tests import dimension_rows
from tests.conftest import as_output

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

# A small account: three SENT campaigns a day and a half apart from Jan 1 (the third is, on v3, the second's
# resend), 30 sends each, the data ending on Jan 7.
DATA = DataConfig(campaigns=3, contacts=30, activities=30, start="2024-01-01T00:00:00Z", days=6,
                  send_interval_days=1.5)
V3 = V3Options(resend_every=3, token_calls_per_second=0, device_interval=1)
W1 = ("2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z")
W2 = ("2024-01-03T00:00:00Z", "2024-01-07T00:00:00Z")
ALL = ("2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z")
# Fast retries, small timeouts (a dripping answer outlasts them), a cap far above a page of this account. A token
# call waits longer than a page, as by default: given up after the server answered, its rotated token is lost, and
# a busy machine can delay a real answer past a page's second.
TIMEOUT = 1.0
TOKEN_TIMEOUT = 5.0
MAX_PAGE_BYTES = 1024 * 1024
EXTRAS = {"requests_per_second": 0, "backoff": 0.01, "max_retries": 3, "timeout": TIMEOUT,
          "oauth_timeout": TOKEN_TIMEOUT, "max_page_bytes": MAX_PAGE_BYTES}
# What a wait between retries lasts at most here (:func:`quicken`).
MAX_WAIT = 0.02
V2_CONN, V3_CONN = "constant_contact_default", "constant_contact_v3_default"
TOKEN_ROUTE = "POST /oauth2/default/v1/token"

# The account's ids, the same in every emulator built from DATA.
_DATASET = Dataset(DATA)
_VIEW = V3View(_DATASET, resend_every=V3.resend_every)
V2_SENT = [c.id for c in _DATASET.campaigns.values() if c.status == "SENT"]
V3_SENT = [c.id for c in _VIEW.campaigns.values() if c.status == "SENT"]
C0, C1 = V2_SENT[0], V2_SENT[1]
V3C0, V3C1 = V3_SENT[0], V3_SENT[1]  # V3C1: a primary email and a resend
V3A0 = _VIEW.campaigns[V3C0].activities[0].id  # V3C0's primary email
LINK0 = _DATASET.link_id(_DATASET.campaigns[C0], 0)
CONTACT = "3"
V3_CONTACT = _VIEW.contact_ids[3]
CONTACT_TYPES = ("em_sends", "em_opens", "em_clicks", "em_bounces", "em_optouts", "em_forwards")


def stamp(moment: str) -> str:
    return moment.replace("-", "").replace(":", "")


def file_name(window: tuple[str, str]) -> str:
    return f"{stamp(window[0])}_{stamp(window[1])}.jsonl"


def lines(records: list[dict[str, Any]]) -> bytes:
    """Records as the provider writes JSON lines: compact, one a line, as the API sent them."""
    return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records).encode()


def within(moment: str, window: tuple[str, str]) -> bool:
    return text_to_ms(window[0]) <= text_to_ms(moment) < text_to_ms(window[1])


class CLIFailed(Exception):
    """The login or refresh command ended with exit code 1 and a message (not a traceback)."""


class TriggerEnded(Exception):
    """The trigger's first event was not ``success``: its message is the error."""


class World:
    """One emulator (secrets of its own), one root, one token store, and the connections pointing at them.

    :param tmp: a directory of the test's own.
    :param monkeypatch: sets the connections' environment variables for the test.
    """

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        quicken(monkeypatch)
        self.emu = Emulator(DATA, api_key=f"key-{secrets.token_hex(12)}", token=f"tok-{secrets.token_hex(12)}",
                            v3=replace(V3, client_secret=f"sec-{secrets.token_hex(12)}")).start(poll_interval=0.005)
        self.root = tmp / "root"
        self.root.mkdir()
        self.tokens = tmp / "tokens"
        monkeypatch.setenv(f"AIRFLOW_CONN_{V2_CONN.upper()}", self.emu.connection_json(**EXTRAS))
        monkeypatch.setenv(f"AIRFLOW_CONN_{V3_CONN.upper()}",
                           self.emu.v3_connection_json(oauth_store=str(self.tokens), **EXTRAS))

    @property
    def uri(self) -> str:
        return f"file://{self.root}/"

    def secrets(self) -> set[str]:
        """Every secret of this world: the v2 key and token, the client secret (and its Basic form), every
        refresh and access token the OAuth2 server issued."""
        o = self.emu.v3.options
        found = {self.emu.api_key, self.emu.token, o.client_secret,
                 base64.b64encode(f"{o.client_id}:{o.client_secret}".encode()).decode()}
        found |= self.emu.v3.oauth.refresh_tokens() | self.emu.v3.oauth.seen_tokens
        return {s for s in found if len(s) >= 8}

    def token_state(self) -> Any:
        """The v3 connection's token state in its store (``None``: none)."""
        from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook

        return ConstantContactV3Hook(V3_CONN).tokens.store.read()

    def stop(self) -> None:
        self.emu.stop()


def quick_sleep(seconds: float) -> None:
    """A wait between retries, cut to :data:`MAX_WAIT`: a retry comes as it would, only sooner."""
    time.sleep(min(seconds, MAX_WAIT))


def quicken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits that only cost time here, cut: the token endpoint's 1 call/s pacing (each world's token URL is its own,
    and the emulator here does not limit token calls), the waits between token-call retries and after an over-qps
    answer (the connection's ``backoff`` does not apply to them), and ``fsync`` (nothing here outlives a power cut:
    what a run leaves behind is read back from the same page cache)."""
    import os

    from airflow_provider_cc.auth import tokens
    from airflow_provider_cc.hooks import transport

    monkeypatch.setattr(tokens, "TOKEN_RATE", 0)
    monkeypatch.setitem(tokens.TokenManager.__init__.__kwdefaults__, "sleep", quick_sleep)
    monkeypatch.setattr(transport, "_OVER_QPS_WAIT", MAX_WAIT / 2)
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def fresh_process() -> None:
    """Forget what a task process keeps in memory between runs, as a new task process starts without it: the
    token managers, and the secrets registered for masking (Airflow's masker and the provider's urllib3 filter,
    whose patterns would otherwise grow with every world's secrets and slow every log line)."""
    import importlib

    from airflow_provider_cc.auth import tokens
    from airflow_provider_cc.hooks.transport import _REDACTOR

    with tokens._MANAGERS_LOCK:
        tokens._MANAGERS.clear()
    with _REDACTOR._lock:
        _REDACTOR._secrets.clear()
        _REDACTOR._pattern = None
    for name in ("airflow.sdk._shared.secrets_masker.secrets_masker", "airflow._shared.secrets_masker.secrets_masker",
                 "airflow.utils.log.secrets_masker"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        masker = module._secrets_masker()
        if hasattr(masker, "reset_masker"):  # Airflow 3
            masker.reset_masker()
        else:  # Airflow 2
            masker.patterns, masker.replacer = set(), None


def context(window: tuple[str, str]) -> dict[str, Any]:
    return {"data_interval_start": window[0], "data_interval_end": window[1]}


# ---- what the emulator serves (the expectations) ------------------------------------------------------------
def walk(world: World, path: str, params: dict[str, Any], items: str) -> list[dict[str, Any]]:
    """Every item the emulator serves for a list, read directly (no fault is armed while this runs)."""
    emu, found, url = world.emu, [], world.emu.url + path
    if path.startswith("/v3/"):
        headers = {"Authorization": f"Bearer {emu.v3.oauth.issue()['access_token']}"}
    else:
        headers, params = {"Authorization": f"Bearer {emu.token}"}, {**params, "api_key": emu.api_key}
    for _ in range(100):
        body = requests.get(url, params=params, headers=headers, timeout=30).json()
        found += body[items]
        link = (body.get("meta", {}).get("pagination", {}).get("next_link") if path.startswith("/v2/")
                else body.get("_links", {}).get("next", {}).get("href"))
        if not link:
            return found
        url, params = emu.url + link, ({"api_key": emu.api_key} if path.startswith("/v2/") else {})
    raise AssertionError(f"{path}: more than 100 pages")


def v2_campaign_files(world: World, campaign: str, report: str, window: tuple[str, str],
                      link: str | None = None) -> dict[str, bytes]:
    records = world.emu.records(campaign, report, link_id=link, created_since=window[0], created_before=window[1])
    folder = f"campaign/{report}/campaign_id={campaign}" + (f"/link_id={link}" if link else "")
    return {f"{folder}/{file_name(window)}": lines(as_output(records))} if records else {}


def v3_campaign_files(world: World, campaign: str, report: str, window: tuple[str, str],
                      activity: str | None = None) -> dict[str, bytes]:
    files = {}
    view = world.emu.v3.view
    for act in view.reported(view.campaigns[campaign]):
        if activity is not None and act.id != activity:
            continue
        records = [{**r, "campaign_id": campaign} for r in world.emu.v3_records(act.id, v3_report(report).segment)
                   if within(r["created_time"], window)]
        if records:
            files[f"campaign/{report}/campaign_id={campaign}/campaign_activity_id={act.id}/{file_name(window)}"] = \
                lines(records)
    return files


def _v2_date(record: dict[str, Any]) -> str:
    return next(record[r.date_field] for r in REPORTS.values() if r.date_field in record)


# ---- scenarios ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """What one caller does, and what a correct run yields.

    :param name: the name endpoint lines refer to.
    :param api: ``v2`` or ``v3``.
    :param windows: the windows of its runs, in order (a later window shows what earlier runs left behind).
    :param compares: ``files`` (data files under the root, from the emulator's records) or ``value`` (the run's
        result, as a clean run on a fresh account gives it).
    :param timeout: what bounds one of its requests as a whole (the connection's ``timeout``); ``None``: only its
        run's own deadline does (the login command's polls are bounded by the device code's lifetime).
    """

    name: str
    api: str
    windows: tuple[tuple[str, str], ...] = (ALL,)
    compares: str = "files"
    timeout: float | None = TIMEOUT
    #: What counts as an error ending (besides the message check).
    errors: tuple[type[BaseException], ...] = (ConstantContactError,)

    def prepare(self, world: World) -> None:
        """Set the scene before the first run (files the run reads)."""

    def run(self, world: World, window: tuple[str, str]) -> Any:
        raise NotImplementedError

    def expected(self, world: World, window: tuple[str, str]) -> dict[str, bytes]:
        """The data files a correct run of ``window`` writes (``files`` scenarios)."""
        raise NotImplementedError


@dataclass(frozen=True)
class CampaignTracking(Scenario):
    campaign: str = ""
    report: str = "sends"
    link: str | None = None
    limit: int = 10
    activity: str | None = None

    def run(self, world: World, window: tuple[str, str]) -> Any:
        from airflow_provider_cc.operators.tracking import ConstantContactCampaignTrackingOperator

        return ConstantContactCampaignTrackingOperator(
            task_id="tracking", campaign_id=self.activity or self.campaign, report=self.report, link_id=self.link,
            destination=world.uri, limit=self.limit, constant_contact_conn_id=V2_CONN if self.api == "v2" else V3_CONN,
        ).execute(context(window))

    def expected(self, world: World, window: tuple[str, str]) -> dict[str, bytes]:
        if self.api == "v2":
            return v2_campaign_files(world, self.campaign, self.report, window, self.link)
        return v3_campaign_files(world, self.campaign, self.report, window, self.activity)


# On v3 clicks too: the links of an activity with clicks are read for the dimensions (v2's come from the
# campaign answers the selection reads anyway).
ACCOUNT_REPORTS = {"v2": ("sends", "opens"), "v3": ("sends", "opens", "clicks")}


@dataclass(frozen=True)
class Account(Scenario):
    """A backfill of two windows (the second a daily run with a horizon and re-checks), then as it ran; with the
    dimension files (campaigns, links; v3 campaign activities) beside the events."""

    windows: tuple[tuple[str, str], ...] = (W1, W2)

    def run(self, world: World, window: tuple[str, str]) -> Any:
        from airflow_provider_cc.operators.account import ConstantContactAccountTrackingOperator

        return ConstantContactAccountTrackingOperator(
            task_id="account", destination=world.uri, reports=list(ACCOUNT_REPORTS[self.api]), limit=10,
            concurrency=1, sent_within=timedelta(days=1), recheck_every=timedelta(days=1), dimensions=True,
            constant_contact_conn_id=V2_CONN if self.api == "v2" else V3_CONN,
        ).execute(context(window))

    def expected(self, world: World, window: tuple[str, str]) -> dict[str, bytes]:
        end, files = text_to_ms(window[1]), {}
        if self.api == "v2":
            sent = [c for c in V2_SENT if world.emu.dataset.campaigns[c].run_ms < end]
        else:
            sent = [c for c in V3_SENT if world.emu.v3.view.campaigns[c].primary.run_ms < end]
        for report in ACCOUNT_REPORTS[self.api]:
            for cid in sent:
                files |= (v2_campaign_files if self.api == "v2" else v3_campaign_files)(world, cid, report, window)
        # The dimensions of the campaigns the run looked at (those sent before the window's end); v3 links: of the
        # activities whose clicks it wrote.
        rows = (dimension_rows.v2_rows(world.emu, sent) if self.api == "v2"
                else dimension_rows.v3_rows(world.emu, sent, dimension_rows.clicked_activities(files)))
        return files | dimension_rows.files(self.api, rows, file_name(window))


@dataclass(frozen=True)
class ContactTracking(Scenario):
    report: str = "all"
    limit: int = 2

    def run(self, world: World, window: tuple[str, str]) -> Any:
        from airflow_provider_cc.operators.tracking import ConstantContactContactTrackingOperator

        return ConstantContactContactTrackingOperator(
            task_id="contact", contact_id=CONTACT if self.api == "v2" else V3_CONTACT, report=self.report,
            destination=world.uri, limit=self.limit, constant_contact_conn_id=V2_CONN if self.api == "v2" else V3_CONN,
        ).execute(context(window))

    def expected(self, world: World, window: tuple[str, str]) -> dict[str, bytes]:
        if self.api == "v2":
            path = f"/v2/contacts/{CONTACT}/tracking" + ("" if self.report == "all" else f"/{self.report}")
            records = [r for r in walk(world, path, {"created_since": window[0], "limit": 500}, "results")
                       if within(_v2_date(r), window)]
            records, contact = as_output(records), CONTACT
        else:
            path = f"/v3/reports/contact_reports/{V3_CONTACT}/activity_details"
            records = [r for r in walk(world, path, {"tracking_activities_list": ",".join(CONTACT_TYPES),
                                                     "include_campaign_activity_names": "true", "limit": 100},
                                       "tracking_activities") if within(r["created_time"], window)]
            contact = V3_CONTACT
        return {f"contact/{self.report}/contact_id={contact}/{file_name(window)}": lines(records)} if records else {}


@dataclass(frozen=True)
class Value(Scenario):
    """An operator whose result (its XCom) is the output."""

    compares: str = "value"
    make: Any = None  # (world) -> the operator

    def run(self, world: World, window: tuple[str, str]) -> Any:
        return self.make(world).execute(context(window))


def _summary(api: str) -> Any:
    from airflow_provider_cc.operators.tracking import ConstantContactCampaignSummaryOperator

    return lambda world: ConstantContactCampaignSummaryOperator(
        task_id="summary", campaign_id=C0 if api == "v2" else V3C0, constant_contact_conn_id=_conn(api))


def _contact_summary(api: str, by_campaign: bool = False) -> Any:
    from airflow_provider_cc.operators.tracking import ConstantContactContactSummaryOperator

    return lambda world: ConstantContactContactSummaryOperator(
        task_id="contact_summary", contact_id=CONTACT if api == "v2" else V3_CONTACT, by_campaign=by_campaign,
        constant_contact_conn_id=_conn(api))


def _list(api: str) -> Any:
    from airflow_provider_cc.operators.tracking import ConstantContactListCampaignsOperator

    return lambda world: ConstantContactListCampaignsOperator(task_id="list", status="SENT",
                                                              constant_contact_conn_id=_conn(api))


def _conn(api: str) -> str:
    return V2_CONN if api == "v2" else V3_CONN


@dataclass(frozen=True)
class Xrefs(Scenario):
    """The switch-over's cross-reference, over a root the v2 daily DAG filled (three campaigns' folders, the
    contacts of their files); its tables are the output."""

    compares: str = "files"

    def prepare(self, world: World) -> None:
        for number, cid in enumerate(V2_SENT):
            folder = world.root / f"campaign/sends/campaign_id={cid}"
            folder.mkdir(parents=True)
            contacts = [str(n) for n in range(1 + number, 31, 3)]
            (folder / file_name(W1)).write_bytes(lines([{"contact_id": c, "campaign_id": cid} for c in contacts]))

    def run(self, world: World, window: tuple[str, str]) -> Any:
        from airflow_provider_cc.operators.xrefs import ConstantContactCampaignXrefsOperator

        return ConstantContactCampaignXrefsOperator(task_id="xrefs", destination=world.uri,
                                                    constant_contact_conn_id=V3_CONN).execute(context(window))

    def expected(self, world: World, window: tuple[str, str]) -> dict[str, bytes]:
        view = world.emu.v3.view
        campaigns = [{"v2_campaign_id": cid, "campaign_id": view.by_v2[cid].campaign.id,
                      "campaign_activity_id": view.by_v2[cid].id} for cid in sorted(V2_SENT, key=lambda i: (len(i), i))]
        contacts = [{"v2_contact_id": str(n), "contact_id": view.contact_ids[n]} for n in range(1, 31)]
        seeded = {str(p.relative_to(world.root)): p.read_bytes() for p in world.root.glob("campaign/**/*.jsonl")}
        return {**seeded, "xrefs/campaigns.jsonl": lines(campaigns), "xrefs/contacts.jsonl": lines(contacts)}


@dataclass(frozen=True)
class Sensor(Scenario):
    compares: str = "value"
    errors: tuple[type[BaseException], ...] = (ConstantContactError, AirflowFailException, AirflowSensorTimeout,
                                               ConstantContactUnavailableError)

    def run(self, world: World, window: tuple[str, str]) -> Any:
        from airflow_provider_cc.sensors.campaign import ConstantContactCampaignSentSensor

        return ConstantContactCampaignSentSensor(
            task_id="wait", campaign_id=C0 if self.api == "v2" else V3C0, poke_interval=0.05, timeout=20,
            mode="poke", deferrable=False, constant_contact_conn_id=_conn(self.api)).execute({})


@dataclass(frozen=True)
class Trigger(Scenario):
    compares: str = "value"
    errors: tuple[type[BaseException], ...] = (TriggerEnded,)

    def run(self, world: World, window: tuple[str, str]) -> Any:
        from airflow_provider_cc.triggers.campaign import ConstantContactCampaignSentTrigger

        trigger = ConstantContactCampaignSentTrigger(C0 if self.api == "v2" else V3C0, _conn(self.api),
                                                     poll_interval=0.05, end_time=time.time() + 20)

        async def first() -> Any:
            events = trigger.run()
            try:
                return await events.__anext__()
            finally:
                await events.aclose()

        payload = asyncio.run(asyncio.wait_for(first(), 25)).payload
        if payload.get("status") != "success":
            raise TriggerEnded(f"{payload.get('status')}: {payload.get('message')}")
        return payload["campaign"]


@dataclass(frozen=True)
class Watch(Scenario):
    """One poll of the event trigger (``ConstantContactCampaignSentEventTrigger``) from before every send: each
    send of the account announced once. A fault must neither drop nor repeat one: the poll fails, or announces
    exactly what a clean one does."""

    compares: str = "value"

    def run(self, world: World, window: tuple[str, str]) -> Any:
        from airflow_provider_cc.hooks.factory import hook_for
        from airflow_provider_cc.triggers.sends import Account, Watermark, poll
        from airflow_provider_cc.window import record_instant

        account = Account(hook_for(_conn(self.api)))
        try:
            found, _ = poll(account, Watermark(record_instant("2000-01-01T00:00:00Z")))
        finally:
            account.hook.close()
        return [send.payload(account.api, _conn(self.api)) for send in found]


def _cli(argv: list[str], *, during: Any = None) -> tuple[int, str, str]:
    from airflow_provider_cc.auth import __main__ as cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), (during or contextlib.nullcontext()):
        code = cli.main(argv)
    if code != 0:
        raise CLIFailed(err.getvalue().strip() or f"exit code {code}, nothing on stderr")
    return code, out.getvalue(), err.getvalue()


@dataclass(frozen=True)
class Login(Scenario):
    """``python -m airflow_provider_cc.auth login`` (device flow), the person approving at once; the output is
    whether the stored tokens work."""

    api: str = "v3"
    compares: str = "value"
    timeout: float | None = None
    errors: tuple[type[BaseException], ...] = (CLIFailed,)

    def run(self, world: World, window: tuple[str, str]) -> Any:
        from airflow_provider_cc.auth import flows
        from airflow_provider_cc.auth.store import open_store

        emu = world.emu

        def show(text: str) -> None:
            print(text)
            code = re.search(r"code ([A-Z0-9]{4}-[A-Z0-9]{4})", text)
            if code:
                emu.v3.oauth.device_decide(code.group(1))

        flow = partial(flows.device_flow, show=show, sleep=lambda seconds: time.sleep(min(seconds, 0.01)))
        _, out, _ = _cli(["login", "--client-id", emu.v3.options.client_id, "--token-url", emu.token_url,
                          "--host", emu.url, "--token-store", str(world.tokens), "--contact-data"],
                         during=mock.patch.object(flows, "device_flow", flow))
        line = next(t for t in out.splitlines() if t.startswith("export AIRFLOW_CONN_"))
        connection = json.loads(line.split("=", 1)[1].strip("'"))
        state = open_store(str(world.tokens), connection["extra"]["oauth_chain"], emu.v3.options.client_id).read()
        return {"exit": 0, "stored": state is not None,
                "chain_intact": state is not None and emu.v3.oauth.chain_intact(state.refresh_token),
                "access_token_works": state is not None and emu.v3.oauth.check_access(state.access_token) is not None}


@dataclass(frozen=True)
class Refresh(Scenario):
    """``python -m airflow_provider_cc.auth refresh`` (the keep-alive) on the v3 connection."""

    api: str = "v3"
    compares: str = "value"
    errors: tuple[type[BaseException], ...] = (CLIFailed,)

    def run(self, world: World, window: tuple[str, str]) -> Any:
        _cli(["refresh", "--conn-id", V3_CONN])
        state = world.token_state()
        return {"exit": 0, "chain_intact": state is not None and world.emu.v3.oauth.chain_intact(state.refresh_token)}


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    CampaignTracking("tracking_v2", "v2", campaign=C0),
    CampaignTracking("link_v2", "v2", campaign=C0, report="clicks", link=LINK0, limit=1),
    CampaignTracking("tracking_v3", "v3", campaign=V3C1),
    CampaignTracking("activity_v3", "v3", windows=(W1,), campaign=V3C0, activity=V3A0),
    Account("account_v2", "v2"),
    Account("account_v3", "v3"),
    ContactTracking("contact_v2", "v2"),
    ContactTracking("contact_report_v2", "v2", report="opens", limit=1),
    ContactTracking("contact_v3", "v3"),
    Value("summary_v2", "v2", make=_summary("v2")),
    Value("summary_v3", "v3", make=_summary("v3")),
    Value("contact_summary_v2", "v2", make=_contact_summary("v2")),
    Value("by_campaign_v2", "v2", make=_contact_summary("v2", by_campaign=True)),
    Value("contact_summary_v3", "v3", make=_contact_summary("v3")),
    Value("list_v2", "v2", make=_list("v2")),
    Value("list_v3", "v3", make=_list("v3")),
    Xrefs("xrefs_v3", "v3"),
    Sensor("sensor_v2", "v2"),
    Sensor("sensor_v3", "v3"),
    Trigger("trigger_v2", "v2"),
    Trigger("trigger_v3", "v3"),
    Watch("watch_v2", "v2"),
    Watch("watch_v3", "v3"),
    Login("login"),
    Refresh("refresh"),
)}
