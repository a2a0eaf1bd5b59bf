"""``python -m airflow_provider_cc.auth login|refresh`` against the emulator's OAuth2 server: a login stores the
tokens where the connection reads them (so the broken-chain error's command repairs the connection as it is,
in every store), no secret is printed or needed on the command line, a confidential app's login works, odd
answers end in one line and exit 1, and ``refresh`` says what the token endpoint said, for connections in the
environment and in the metadata DB."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_cc.auth import flows
from airflow_provider_cc.auth.__main__ import main
from airflow_provider_cc.auth.store import FileTokenStore, RedisTokenStore, open_store, store_key
from airflow_provider_cc.exceptions import ConstantContactTokenError
from airflow_provider_cc.hooks.constant_contact_v3 import ConstantContactV3Hook
from tests import warm
from tests.auth.test_flows import announce, approve_when_shown, oauth  # noqa: F401  (the OAuth2 emulator)
from tests.conftest import FAST_RETRY, ROOT, V3_CONN_ENV
from tests.redis_server import RedisServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_cc.emulator import Emulator

CODE = re.compile(r"code ([A-F0-9]{4}-[A-F0-9]{4})")

# The commands read connections (and the Variable store) from the metadata DB: it is in place before the first
# one (copied over later, it would pull the file from under a connection this process already holds).
pytestmark = pytest.mark.usefixtures("airflow_db")


class _Screen(io.StringIO):
    """stdout that a thread may read while the command writes."""


def run_main(args: list[str], emu: Emulator | None = None) -> tuple[int, str, str]:
    """``main(args)`` in this process: its exit code, stdout and stderr. With ``emu``, the person at the
    browser approves the code the command shows."""
    out, err = _Screen(), io.StringIO()
    done = threading.Event()

    def approve() -> None:
        while not done.wait(0.05):
            found = CODE.search(out.getvalue())
            if found:
                requests.post(f"{emu.url}/_emulator/oauth/device", json={"user_code": found.group(1)}, timeout=10)
                return

    if emu is not None:
        threading.Thread(target=approve, daemon=True).start()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(args)
    finally:
        done.set()
    return rc, out.getvalue(), err.getvalue()


def printed_connection(out: str, conn_id: str) -> dict[str, Any]:
    """The connection the login printed, as the shell would set it."""
    line = next(x for x in out.splitlines() if x.startswith(f"export AIRFLOW_CONN_{conn_id.upper()}="))
    return json.loads(shlex.split(line.split("=", 1)[1])[0])


def with_secrets(conn: dict[str, Any], emu: Emulator, redis_password: str = "") -> str:
    """The printed connection with the client secret (and the Redis password) where its placeholders are, and
    fast retries."""
    conn = {**conn, "extra": {**conn["extra"], **FAST_RETRY}}
    if "password" in conn:
        assert conn["password"] == "<the client secret>"
        conn["password"] = emu.v3.options.client_secret
    if "redis_password" in conn["extra"]:
        assert conn["extra"]["redis_password"] == "<the Redis password>" and redis_password
        conn["extra"]["redis_password"] = redis_password
    return json.dumps(conn)


def login_args(emu: Emulator, conn_id: str, store: str, *more: str) -> list[str]:
    return ["login", "--conn-id", conn_id, "--client-id", emu.v3.options.client_id, "--token-url", emu.token_url,
            "--host", emu.url, "--token-store", store, *more]


def campaign(emu: Emulator) -> str:
    return next(iter(emu.v3.view.campaigns))


def pull(conn_id: str, emu: Emulator) -> dict[str, Any]:
    """One API call on connection ``conn_id`` as Airflow has it (the environment or, as a task would see it,
    the metadata DB; the SDK's hook outside a task reads no DB on Airflow 3)."""
    from airflow_provider_cc._compat import get_connection
    from airflow_provider_cc.hooks.connection_v3 import V3Settings

    settings = V3Settings.from_connection(get_connection(conn_id))
    return ConstantContactV3Hook(conn_id, settings=settings).get_campaign(campaign(emu))


def no_token_in(emu: Emulator, text: str) -> None:
    secrets = emu.v3.oauth.refresh_tokens() | emu.v3.oauth.seen_tokens | {emu.v3.options.client_secret}
    assert not [s for s in secrets if s in text]


# ---- login: a real process, the printed connection pulls ---------------------------------------------------
def test_login_command_end_to_end_then_the_connection_pulls(oauth, monkeypatch, tmp_path):  # noqa: F811
    """``python -m airflow_provider_cc.auth login``: the device flow in a real process, the tokens in the
    store, a printed connection without any token; the hook built from it pulls. No secret in the command
    line, its output or the emulator's log."""
    directory = str(tmp_path / "tokens")
    proc = warm.start_module(
        "airflow_provider_cc.auth", "login", "--client-id", oauth.v3.options.client_id, "--token-url",
        oauth.token_url, "--host", oauth.url, "--token-store", directory, "--contact-data", cwd=str(ROOT))
    assert proc.stdout is not None
    first = proc.stdout.readline()
    approve_when_shown(oauth, [first])
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    pasted = next(line for line in out.splitlines() if line.startswith("export AIRFLOW_CONN_"))
    shell = subprocess.run(["bash", "-c", pasted + f"\nprintenv {V3_CONN_ENV}"], capture_output=True, text=True,
                           timeout=30, check=True)
    connection = json.loads(shell.stdout)
    assert "refresh_token" not in connection["extra"] and "password" not in connection
    assert connection["extra"]["oauth_chain"] == "constant_contact_v3_default", "named after the connection"
    monkeypatch.setenv(V3_CONN_ENV, shell.stdout.strip())
    store = FileTokenStore(directory, store_key(connection["extra"]["oauth_chain"], oauth.v3.options.client_id))
    state = store.read()
    assert state is not None and oauth.v3.oauth.chain_intact(state.refresh_token)
    hook = ConstantContactV3Hook()
    assert hook.get_campaign(campaign(oauth))
    no_token_in(oauth, first + out + err + json.dumps(oauth.requests))
    assert hook.tokens.token_calls == 0, "the stored access token was used"


def test_a_confidential_login_works_against_the_emulator(oauth, monkeypatch, tmp_path):  # noqa: F811
    """Issue 17: ``login --confidential`` (the secret from CC_CLIENT_SECRET, sent as HTTP Basic) completes
    against the emulator, in a real process; the printed connection holds a placeholder for the secret."""
    env = {**os.environ, "CC_CLIENT_SECRET": oauth.v3.options.client_secret}
    proc = warm.start_module("airflow_provider_cc.auth", *login_args(oauth, "cc_confidential", str(tmp_path)),
                             "--confidential", cwd=str(ROOT), env=env)
    proc.stdin.close()  # nothing to read: the secret comes from CC_CLIENT_SECRET
    assert proc.stdout is not None
    first = proc.stdout.readline()
    approve_when_shown(oauth, [first], after=0.2)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    conn = printed_connection(out, "cc_confidential")
    assert conn["password"] == "<the client secret>"
    monkeypatch.setenv("AIRFLOW_CONN_CC_CONFIDENTIAL", with_secrets(conn, oauth))
    assert ConstantContactV3Hook("cc_confidential").get_campaign(campaign(oauth))
    no_token_in(oauth, first + out + err)


# ---- M1: the broken-chain error's command repairs the connection as it is, in every store ----------------------
@pytest.fixture
def db_connection(airflow_db: str) -> Iterator[Any]:
    """Puts connections in the metadata DB (as the docs say to create them); removes them afterwards."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    made: list[str] = []

    def put(conn_id: str, conn_json: str) -> None:
        conn = json.loads(conn_json)
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
            session.add(Connection(conn_id=conn_id, conn_type=conn["conn_type"], host=conn["host"],
                                   login=conn["login"], password=conn.get("password"),
                                   extra=json.dumps(conn["extra"])))
        made.append(conn_id)

    yield put
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.in_(made)).delete()


def recovery_command(error: Exception, emu: Emulator) -> list[str]:
    """The login command the broken-chain error names, as the user would run it."""
    found = re.search(r"python -m airflow_provider_cc\.auth (login[^(),]*?)(?:\s*[(,]|$|\.\s)", str(error))
    assert found, str(error)
    command = found.group(1).replace("<the app's API key>", emu.v3.options.client_id)
    return shlex.split(command)


@pytest.mark.parametrize("kind", ["directory", "redis", "redis-password", "airflow"])
def test_the_broken_chain_errors_login_repairs_the_connection_as_it_is(kind, oauth, monkeypatch, tmp_path,  # noqa: F811
                                                                       request):
    conn_id = f"cc_repair_{kind.replace('-', '_')}"
    password = ""
    if kind == "redis-password":
        server, password = request.getfixturevalue("redis_with_password")
        monkeypatch.setenv("CC_REDIS_PASSWORD", password)  # the first login's; the repair reads the connection's
    store = {"directory": lambda: str(tmp_path / "tokens"),
             "redis": lambda: request.getfixturevalue("redis_server").url,
             "redis-password": lambda: server.url,
             "airflow": lambda: (request.getfixturevalue("airflow_db"), "airflow")[1]}[kind]()
    monkeypatch.setenv("CC_CLIENT_SECRET", oauth.v3.options.client_secret)
    rc, out, err = run_main(login_args(oauth, conn_id, store, "--confidential", "--contact-data"), oauth)
    assert rc == 0, err
    created = with_secrets(printed_connection(out, conn_id), oauth, password)
    if kind == "airflow":  # a connection in the metadata DB, as the docs create it
        request.getfixturevalue("db_connection")(conn_id, created)
    else:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", created)
    assert pull(conn_id, oauth)

    oauth.v3.oauth.revoke_all()  # the chain is lost (a user revoking the app, a rotation lost in a crash)
    with pytest.raises(ConstantContactTokenError, match="chain is broken|refused") as broken:
        pull(conn_id, oauth)
    monkeypatch.delenv("CC_CLIENT_SECRET")  # the command as the error gives it, nothing else
    monkeypatch.delenv("CC_REDIS_PASSWORD", raising=False)
    rc, out, err = run_main(recovery_command(broken.value, oauth), oauth)
    assert rc == 0, err
    assert f"Connection {conn_id!r} reads them as it is: nothing to change" in out
    assert pull(conn_id, oauth), "the connection as it was works again"
    if password:
        from airflow_provider_cc.hooks.connection import with_password

        assert password not in out + err
        store = with_password(store, password)
    state = open_store(store, conn_id, oauth.v3.options.client_id).read()
    assert state is not None and "contact_data" in state.scope.split(), "the new login kept the chain's scopes"
    no_token_in(oauth, out + err)


def test_a_login_for_a_connection_that_reads_elsewhere_says_what_to_change(oauth, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("AIRFLOW_CONN_CC_ELSEWHERE", oauth.v3_connection_json(oauth_store=str(tmp_path / "old")))
    rc, out, err = run_main(login_args(oauth, "cc_elsewhere", str(tmp_path / "new")), oauth)
    assert rc == 0, err
    assert "reads its tokens elsewhere: change its oauth_store, or replace it" in out
    monkeypatch.setenv("AIRFLOW_CONN_CC_ELSEWHERE", with_secrets(printed_connection(out, "cc_elsewhere"), oauth))
    assert ConstantContactV3Hook("cc_elsewhere").get_campaign(campaign(oauth))


# ---- H5: no Redis password printed, none needed on the command line ----------------------------------------
@pytest.fixture
def redis_with_password() -> Iterator[tuple[RedisServer, str]]:
    server = RedisServer()
    password = "Redis+Pa55/" + os.urandom(4).hex()
    server.client().config_set("requirepass", password)
    try:
        yield server, password
    finally:
        server.stop()


@pytest.mark.parametrize("given", ["environment", "url"])
def test_a_redis_password_is_never_printed(given, oauth, monkeypatch, redis_with_password):  # noqa: F811
    """The password from CC_REDIS_PASSWORD (or, still accepted, inside --token-store) opens the store; the
    printed connection names the redis_password extra with a placeholder and an oauth_store without it."""
    from urllib.parse import quote

    server, password = redis_with_password
    url = server.url
    if given == "environment":
        monkeypatch.setenv("CC_REDIS_PASSWORD", password)
    else:
        url = url.replace("redis://", f"redis://:{quote(password, safe='')}@")
    rc, out, err = run_main(login_args(oauth, "cc_redis_pw", url), oauth)
    assert rc == 0, err
    assert password not in out + err and quote(password, safe="") not in out + err
    extra = printed_connection(out, "cc_redis_pw")["extra"]
    assert extra["oauth_store"] == server.url and extra["redis_password"] == "<the Redis password>"
    authenticated = server.url.replace("redis://", f"redis://:{quote(password, safe='')}@")
    state = RedisTokenStore(authenticated, store_key("cc_redis_pw", oauth.v3.options.client_id)).read()
    assert state is not None and oauth.v3.oauth.chain_intact(state.refresh_token)


def test_a_login_takes_the_redis_password_from_the_connection(redis_with_password, monkeypatch):
    """The connection's Redis store opens with its password (from its redis_password extra), also when
    --token-store names the same server without it; nothing asks for it, nothing prints it."""
    from urllib.parse import quote

    from airflow_provider_cc.auth.__main__ import connection_json, parse_args, plan_login
    from airflow_provider_cc.hooks.connection_v3 import V3Settings

    monkeypatch.delenv("CC_REDIS_PASSWORD", raising=False)
    server, password = redis_with_password
    joined = server.url.replace("redis://", f"redis://:{quote(password, safe='')}@")
    existing = V3Settings(conn_id="cc_pw", base_url="https://api.cc.email", client_id="app", token_store=joined)
    for given in ([], ["--token-store", server.url]):
        plan = plan_login(parse_args(["login", "--conn-id", "cc_pw", *given]), existing)
        assert plan.redis_password and plan.shown_store == server.url
        store = open_store(plan.store, plan.chain, plan.client_id)
        with store.lock(10):  # authenticated: AuthenticationError otherwise
            assert store.read() is None
        printed = connection_json(plan)
        assert password not in printed and quote(password, safe="") not in printed
        assert json.loads(printed)["extra"]["redis_password"] == "<the Redis password>"


def test_a_redis_password_that_is_missing_is_refused_before_the_flow(oauth, redis_with_password):  # noqa: F811
    server, _ = redis_with_password
    oauth.v3.oauth.device_lifetime = 20  # nobody approves
    rc, out, err = run_main(login_args(oauth, "cc_redis_none", server.url))
    assert rc == 1 and "token store (Redis)" in err and len(err.splitlines()) == 1, err
    assert not CODE.search(out), "nobody is asked to approve before the store answers"


# ---- M7 / L4: one line and exit 1, never a traceback; nothing raw from the server on the terminal -------------
def test_confidential_without_a_secret_or_a_terminal_is_one_line(oauth, tmp_path):  # noqa: F811
    env = {k: v for k, v in os.environ.items() if k != "CC_CLIENT_SECRET"}
    proc = warm.run_module("airflow_provider_cc.auth", *login_args(oauth, "cc_nosecret", str(tmp_path)),
                           "--confidential", new_session=True, cwd=str(ROOT), env=env, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "login failed: no client secret: set CC_CLIENT_SECRET (there is no terminal to ask on)"]
    assert not oauth.v3.oauth.token_calls, "nothing was sent"


@pytest.mark.parametrize("start", [{"interval": -1}, {"interval": "NaN"}, {"interval": "soon"},
                                   {"expires_in": "never"}, {"device_code": None}, {"verification_uri": None,
                                                                                    "verification_uri_complete": None}])
def test_an_odd_device_answer_is_one_line_and_exit_1(start, oauth, tmp_path):  # noqa: F811
    announce(oauth, **start)
    oauth.v3.oauth.device_lifetime = 20  # nobody approves
    rc, out, err = run_main(login_args(oauth, "cc_odd", str(tmp_path)))
    assert rc == 1 and len(err.splitlines()) == 1 and err.startswith("login failed: "), err
    assert "malformed answer" in err and not out.count("export ")


def test_an_unexpected_error_is_one_line_without_its_text(oauth, tmp_path, monkeypatch):  # noqa: F811
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("holds-a-secret-value")

    monkeypatch.setattr(flows, "device_flow", broken)
    rc, _, err = run_main(login_args(oauth, "cc_bug", str(tmp_path)))
    assert rc == 1 and err.splitlines() == [
        "login failed: unexpected TypeError (a defect of the provider: please report it)"]


def test_terminal_escapes_from_the_server_never_reach_the_terminal(oauth, tmp_path):  # noqa: F811
    announce(oauth, verification_uri_complete="https://x.example/\x1b]0;pwned\x07\x1b[2J")
    rc, out, err = run_main(login_args(oauth, "cc_escapes", str(tmp_path)), oauth)
    assert rc == 0, err
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", out + err), (out + err)[-500:]
    assert "\\x1b]0;pwned" in out


# ---- M2 and 15: refresh says what the token endpoint said, for env and metadata-DB connections ------------------
def refresh_process(conn_id: str, env: dict[str, str] | None = None,
                    fresh: bool = False) -> subprocess.CompletedProcess[str]:
    """The refresh command in a process of its own: forked warm (:mod:`tests.warm`), or (``fresh``) a new
    interpreter as a user starts it."""
    if fresh:
        return subprocess.run([sys.executable, "-m", "airflow_provider_cc.auth", "refresh", "--conn-id", conn_id],
                              capture_output=True, text=True, timeout=300, cwd=ROOT, env=env or os.environ.copy(),
                              stdin=subprocess.DEVNULL)
    return warm.run_module("airflow_provider_cc.auth", "refresh", "--conn-id", conn_id, timeout=300, cwd=str(ROOT),
                           env=env)


def test_refresh_command_refreshes_now(v3):
    ConstantContactV3Hook().get_campaign(campaign(v3))
    time.sleep(1.1)
    proc = refresh_process("constant_contact_v3_default")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "the token endpoint issued a new refresh token (rotating)" in proc.stdout
    assert [c[2] for c in v3.v3.oauth.token_calls if c[1] == "refresh_token"] == ["ok", "ok"]


def test_refresh_reports_a_refused_refresh_token_although_the_access_token_still_works(v3, tmp_path):
    """The store holds a refresh token the endpoint rotated away (a crash before the store write) and a valid
    access token: refresh exits 1 naming the broken chain and the login command, not 'fresh'."""
    hook = ConstantContactV3Hook()
    hook.get_campaign(campaign(v3))
    state = hook.tokens.store.read()
    assert state is not None
    time.sleep(1.1)
    lost = requests.post(v3.token_url, data={"grant_type": "refresh_token", "refresh_token": state.refresh_token},
                         auth=(v3.v3.options.client_id, v3.v3.options.client_secret), timeout=10)
    assert lost.status_code == 200
    time.sleep(1.1)
    proc = refresh_process("constant_contact_v3_default")
    assert proc.returncode == 1, proc.stdout
    line, = proc.stderr.strip().splitlines()
    assert "chain is broken" in line and "python -m airflow_provider_cc.auth login --conn-id" in line, line
    assert "invalid_grant" in [c[2] for c in v3.v3.oauth.token_calls]


def test_refresh_of_a_revoked_chain_is_one_line_and_exit_1(v3):
    ConstantContactV3Hook().get_campaign(campaign(v3))
    v3.v3.oauth.revoke_all()
    time.sleep(1.1)
    proc = refresh_process("constant_contact_v3_default")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line, = proc.stderr.strip().splitlines()
    assert line.startswith("refresh failed: ") and "python -m airflow_provider_cc.auth login" in line, line


def test_refresh_of_an_unknown_connection_is_one_line(airflow_db):
    proc = refresh_process("cc_nowhere")
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        "refresh failed: connection 'cc_nowhere': it is not defined here (an AIRFLOW_CONN_ variable, this "
        "machine's metadata DB or a secrets backend)"], proc.stderr


def test_refresh_works_for_a_connection_in_the_metadata_db(v3, db_connection, tmp_path):
    """Issue 15: on Airflow 3 the SDK outside a task reads no connection from the metadata DB; the command
    does, in a plain process as a user runs it."""
    db_connection("cc_in_db", v3.v3_connection_json(oauth_store=str(tmp_path / "tokens"), **FAST_RETRY))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    proc = refresh_process("cc_in_db", env, fresh=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Connection 'cc_in_db': the token endpoint issued" in proc.stdout
