"""The emulator's one-shot faults and its records: a fault armed for a route hits exactly the n-th answer of that
route it applies to, then the server is correct again; a fault on a route that writes (the token endpoint) never
moves a chain; what happened on the wire is told; the served routes are counted by template; the random rate
limit counts requests as they arrive."""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from types import SimpleNamespace

import pytest
import requests

from airflow_provider_cc.emulator import KINDS, DataConfig, Emulator, FaultConfig, V3Options
from airflow_provider_cc.emulator import server as server_module
from airflow_provider_cc.emulator.faults import BAD_ID, BOMB_BYTES, OTHER_HOST, STALE_DATE, UNKNOWN_ENUM
from airflow_provider_cc.emulator.server import decode_token

TRACKING = "GET /v2/emailmarketing/campaigns/{id}/tracking/{report}"
TOKEN = "POST /oauth2/default/v1/token"


@pytest.fixture
def emu():
    with Emulator(DataConfig(campaigns=2, contacts=20, activities=30),
                  v3=V3Options(token_calls_per_second=0)) as e:
        yield e


def v2(emu: Emulator, path: str, **params):
    return requests.get(emu.url + path, params={"api_key": emu.api_key, **params},
                        headers={"Authorization": f"Bearer {emu.token}"}, timeout=10)


def sends(emu: Emulator, **params):
    return v2(emu, f"/v2/emailmarketing/campaigns/{emu.campaign_ids()[0]}/tracking/sends", limit=5, **params)


def refresh(emu: Emulator, refresh_token: str):
    return requests.post(emu.token_url, timeout=10, data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                          "client_id": emu.v3.options.client_id})


def test_a_fault_hits_exactly_the_nth_answer_of_its_route_then_the_server_is_correct_again(emu):
    correct = sends(emu).json()
    shot = emu.arm(TRACKING, "status_500", nth=2)
    v2(emu, "/v2/emailmarketing/campaigns")  # another route: not counted
    assert sends(emu).json() == correct and not shot.fired
    faulty = sends(emu)
    assert faulty.status_code == 500 and shot.fired
    assert shot.target == f"/v2/emailmarketing/campaigns/{emu.campaign_ids()[0]}/tracking/sends?limit=5"
    assert "api_key" not in shot.target
    assert [sends(emu).json() for _ in range(3)] == [correct] * 3


def test_a_fault_waits_for_an_answer_it_applies_to(emu):
    shot = emu.arm(TRACKING, "page_repeated")
    first = sends(emu).json()
    assert not shot.fired, "page 1 has no page before it"
    second = v2(emu, first["meta"]["pagination"]["next_link"]).json()
    assert shot.fired and second["results"] == first["results"], "page 1's records again"
    token = second["meta"]["pagination"]["next_link"].rpartition("next=")[2]
    assert decode_token(token)["pos"] == 10, "with page 2's own next link"


@pytest.mark.parametrize(("kind", "check"), [
    ("item_no_id", lambda r: "contact_id" not in r[0]),
    ("item_bad_id", lambda r: r[0]["contact_id"] == BAD_ID),
    ("item_unknown_enum", lambda r: r[0]["activity_type"] == UNKNOWN_ENUM),
    ("item_enum_case", lambda r: r[0]["activity_type"] == "email_send"),
    ("item_twice", lambda r: r[0] == r[1]),
    ("record_stale", lambda r: r[0]["send_date"] == STALE_DATE),
    ("record_out_of_order", lambda r: r[0]["send_date"] < r[1]["send_date"]),
])
def test_item_faults_change_the_first_item_of_the_list(emu, kind, check):
    emu.arm(TRACKING, kind)
    assert check(sends(emu).json()["results"])


def test_list_and_link_faults(emu):
    emu.arm(TRACKING, "items_missing")
    assert "results" not in sends(emu).json()
    emu.arm(TRACKING, "items_wrong_type")
    assert isinstance(sends(emu).json()["results"], dict)
    emu.arm(TRACKING, "next_self")
    assert sends(emu).json()["meta"]["pagination"]["next_link"].endswith("/tracking/sends?limit=5")
    emu.arm(TRACKING, "next_other_host")
    assert sends(emu).json()["meta"]["pagination"]["next_link"].startswith(OTHER_HOST + "/v2/")
    for kind, body in (("body_null", None), ("body_list", []), ("body_object", {})):
        emu.arm(TRACKING, kind)
        assert sends(emu).json() == body
    emu.arm(TRACKING, "truncated")
    with pytest.raises(ValueError):
        sends(emu).json()


def test_error_faults_speak_each_apis_dialect(emu):
    emu.arm(TRACKING, "throttled")
    assert sends(emu).json()[0]["error_key"] == "mashery.not.authorized.over.qps"
    emu.arm(TRACKING, "quota")
    assert sends(emu).json()[0]["error_key"] == "mashery.not.authorized.over.ratelimit"
    campaign = next(iter(emu.v3.view.campaigns))
    emu.arm("GET /v3/emails/{id}", "quota")
    token = emu.v3.oauth.issue()["access_token"]
    answer = requests.get(f"{emu.url}/v3/emails/{campaign}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 429 and answer.json()["error_key"] == "quota_exceeded"


def test_arming_refuses_what_cannot_apply(emu):
    with pytest.raises(ValueError, match="no route"):
        emu.arm("GET /v2/nowhere", "status_500")
    with pytest.raises(ValueError, match="unknown fault kind"):
        emu.arm(TRACKING, "gremlins")
    with pytest.raises(ValueError, match="cannot apply"):
        emu.arm("GET /v2/emailmarketing/campaigns/{id}/tracking/reports/summary", "item_twice")
    assert emu.fits(TRACKING, "next_self") and not emu.fits(TOKEN, "next_self")
    assert all(emu.fits(TOKEN, k) for k in KINDS if k.startswith("expires_in_"))


def test_served_routes_are_counted_by_template(emu):
    sends(emu)
    v2(emu, f"/v2/emailmarketing/campaigns/{emu.campaign_ids()[1]}/tracking/opens")
    v2(emu, "/v2/nowhere")
    assert emu.served == {TRACKING: 2, "GET /v2/nowhere (no route)": 1}
    assert [template for _, template in emu.arrivals] == [TRACKING, TRACKING, "GET /v2/nowhere (no route)"]


@pytest.mark.parametrize("kind", ["status_500", "status_401", "throttled", "body_null", "body_string", "truncated",
                                  "drip", "oversized", "gzip_bomb"])
def test_a_fault_on_the_token_endpoint_never_moves_the_chain(emu, kind):
    chain = emu.v3.oauth.issue()["refresh_token"]
    shot = emu.arm(TOKEN, kind)
    with contextlib.suppress(requests.RequestException):
        refresh(emu, chain).close()
    assert shot.fired and emu.v3.oauth.chain_intact(chain), "the faulty answer issued nothing"
    assert refresh(emu, chain).json()["refresh_token"] != chain, "the next refresh rotates as usual"


@pytest.mark.parametrize(("kind", "expires_in"), [("expires_in_negative", -3600), ("expires_in_huge", 10**12)])
def test_an_odd_expires_in_comes_with_an_opaque_access_token_that_works(emu, kind, expires_in):
    emu.arm(TOKEN, kind)
    answer = refresh(emu, emu.v3.oauth.issue()["refresh_token"]).json()
    assert answer["expires_in"] == expires_in and answer["access_token"].count(".") == 0, "no JWT exp to read"
    campaign = next(iter(emu.v3.view.campaigns))
    assert requests.get(f"{emu.url}/v3/emails/{campaign}", timeout=10,
                        headers={"Authorization": f"Bearer {answer['access_token']}"}).status_code == 200
    emu.arm(TOKEN, "expires_in_missing")
    assert "expires_in" not in refresh(emu, answer["refresh_token"]).json()


def test_a_dripping_answer_tells_whether_the_client_hung_up(emu):
    shot = emu.arm(TRACKING, "drip")
    with socket_reading(emu) as sock:
        sock.recv(200)  # the headers and a byte or two, then the client gives up
    deadline = time.monotonic() + 10
    while not shot.outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shot.outcome["hung_up"] and shot.outcome["seconds"] < 4


def test_an_oversized_answer_tells_whether_the_client_read_it_all(emu):
    shot = emu.arm(TRACKING, "oversized")
    with requests.get(f"{emu.url}/v2/emailmarketing/campaigns/{emu.campaign_ids()[0]}/tracking/sends", stream=True,
                      params={"api_key": emu.api_key}, headers={"Authorization": f"Bearer {emu.token}"},
                      timeout=10) as answer:
        assert "Content-Length" not in answer.headers
        answer.raw.read(1024 * 1024)
    deadline = time.monotonic() + 10
    while not shot.outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shot.outcome["hung_up"] and shot.outcome["sent"] < 16 * 1024 * 1024


def test_a_gzip_bomb_is_small_on_the_wire_and_the_answer_once_decoded(emu):
    correct = sends(emu).content
    emu.arm(TRACKING, "gzip_bomb")
    with requests.get(f"{emu.url}/v2/emailmarketing/campaigns/{emu.campaign_ids()[0]}/tracking/sends", stream=True,
                      params={"api_key": emu.api_key, "limit": 5}, headers={"Authorization": f"Bearer {emu.token}"},
                      timeout=10) as answer:
        raw = answer.raw.read(decode_content=False)
    assert answer.headers["Content-Encoding"] == "gzip" and len(raw) < BOMB_BYTES // 500
    decoded = zlib.decompress(raw, 47)
    assert len(decoded) == BOMB_BYTES + len(correct) and decoded.strip() == correct


class socket_reading:
    """A raw GET of the sends report whose reader decides when to hang up."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def __enter__(self):
        import socket

        host, port = self.emu.server.server_address[:2]
        self.sock = socket.create_connection((host, port), timeout=10)
        path = f"/v2/emailmarketing/campaigns/{self.emu.campaign_ids()[0]}/tracking/sends?api_key={self.emu.api_key}"
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.emu.token}\r\n\r\n".encode())
        return self.sock

    def __exit__(self, *exc):
        self.sock.close()


def test_the_rate_limit_counts_requests_as_they_arrive(monkeypatch):
    """Two requests in a row, one a second allowed: the first to arrive is answered, the second refused, whatever
    the server's latency before each answer (here the first's is the longer: counted after it, the second would
    pass and the first be refused)."""
    waits = iter([1.0, 0.1])
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            chosen = next(waits, seconds)
        time.sleep(chosen)

    monkeypatch.setattr(server_module, "time", SimpleNamespace(sleep=sleep, monotonic=time.monotonic))
    with Emulator(DataConfig(campaigns=1, activities=10), FaultConfig(qps=1, latency=0.5)) as emu:
        statuses: dict[str, int] = {}

        def ask(name: str) -> None:
            statuses[name] = sends(emu).status_code

        first = threading.Thread(target=ask, args=("first",))
        first.start()
        deadline = time.monotonic() + 10
        while not emu.arrivals and time.monotonic() < deadline:  # the first has arrived, and waits its latency
            time.sleep(0.01)
        ask("second")
        first.join(10)
    assert statuses == {"first": 200, "second": 403}, "counted as they arrived, not once their latency passed"


def test_a_fault_changing_a_device_grants_answer_works_on_the_real_answer(emu):
    """Losing a device grant's answer costs a login, not a chain: the poll goes through and its real answer is
    changed (here dripped), while the device authorization's real answer is changed alike."""
    client_id = emu.v3.options.client_id
    emu.arm("POST /oauth2/default/v1/device/authorize", "truncated")
    with pytest.raises(ValueError):
        requests.post(f"{emu.url}/oauth2/default/v1/device/authorize", data={"client_id": client_id},
                      timeout=10).json()
    start = requests.post(f"{emu.url}/oauth2/default/v1/device/authorize", data={"client_id": client_id,
                                                                                 "scope": "offline_access"},
                          timeout=10).json()
    assert emu.v3.oauth.device_decide(start["user_code"])
    shot = emu.arm(TOKEN, "drip")
    answer = requests.post(emu.token_url, timeout=10, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": start["device_code"],
        "client_id": client_id}).json()
    assert shot.fired and emu.v3.oauth.chain_intact(answer["refresh_token"]), "the real tokens, slowly"
