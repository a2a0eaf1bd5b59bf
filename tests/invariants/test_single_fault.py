"""The single-fault invariant suite: every fault of the catalogue against every endpoint the operators, the sensor,
the trigger and the login command call, on both APIs, through the emulator over real HTTP. The fault hits exactly
one answer, then the server is correct again; what must hold is in :mod:`tests.invariants.checker`.

Every pair is a test of its own (``<scenario>-<METHOD>_<path>-<fault>``, braces left out). Two more tests keep
the lists honest: a clean run of each scenario yields exactly what the emulator holds, and every route the code
calls in those clean runs is in the endpoint list (and every line of the list is called by its scenario).
"""

from __future__ import annotations

import pytest

from airflow_provider_cc.emulator import KINDS, DataConfig, Emulator
from tests.invariants.catalogue import ENDPOINTS, FAULTS, Endpoint, Fault
from tests.invariants.checker import check_pair, normalised
from tests.invariants.conftest import reference
from tests.invariants.scenarios import C0, SCENARIOS, V2_SENT, V3_SENT, V3C0

_EMULATOR = Emulator(DataConfig(campaigns=1))  # its route table, for which faults fit which routes
_ROUTES = _EMULATOR.routes
_EMULATOR.server.server_close()

PAIRS = [(e, f) for e in ENDPOINTS for f in FAULTS if KINDS[f.kind].fits(_ROUTES[e.route]) and f.kind not in e.without]


def pair_id(pair: tuple[Endpoint, Fault]) -> str:
    endpoint, fault = pair
    route = endpoint.route.replace(" ", "_").replace("{", "").replace("}", "")
    return f"{endpoint.scenario}-{route}-{fault.kind}"


@pytest.mark.parametrize("pair", PAIRS, ids=[pair_id(p) for p in PAIRS])
def test_one_fault_then_the_server_is_correct_again(pair, tmp_path, monkeypatch, capfd):
    endpoint, fault = pair
    scenario = SCENARIOS[endpoint.scenario]
    values = reference(scenario).values if scenario.compares == "value" else None
    from tests.invariants.scenarios import World

    world = World(tmp_path, monkeypatch)
    printed: list[str] = []

    def read_output() -> str:
        out, err = capfd.readouterr()
        printed.append(out + err)
        return "".join(printed)

    try:
        found = check_pair(world, scenario, endpoint, fault, values, read_output)
    finally:
        world.stop()
    assert not found, f"{len(found)} violations:\n" + "\n".join(found)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_clean_run_yields_what_the_emulator_holds(name):
    scenario = SCENARIOS[name]
    ref = reference(scenario)
    failed = [f"{r.label}: {type(r.error).__name__}: {r.error}" for r in ref.runs if r.error is not None or r.hung]
    assert not failed, failed
    if scenario.compares == "files":
        want = {path: data for files in ref.expected.values() for path, data in files.items()}
        assert ref.files == want
        assert all(ref.expected.values()), "every window has records to write"
        return
    value = normalised(ref.runs[-1].value)
    if name == "list_v2":
        assert value == sorted(V2_SENT)
    elif name == "list_v3":
        assert value == sorted(V3_SENT)
    elif name.startswith(("sensor", "trigger")):
        assert value["campaign_id"] == (C0 if name.endswith("v2") else V3C0)
        assert value["status"] in ("SENT", "Done") and value["last_run_date"]
    elif name in ("login", "refresh"):
        assert value.pop("exit") == 0 and all(value.values()), value
    else:
        assert value, "a clean run returns something"


def test_every_route_the_code_calls_is_in_the_endpoint_list():
    listed = {e.route for e in ENDPOINTS}
    called: dict[str, set[str]] = {}
    for name, scenario in SCENARIOS.items():
        for route in reference(scenario).served:
            called.setdefault(route, set()).add(name)
    missing = {route: sorted(names) for route, names in called.items() if route not in listed}
    assert not missing, f"routes the code calls that the endpoint list lacks (add a line each): {missing}"
    idle = [f"{e.scenario}: {e.route}" for e in ENDPOINTS if e.scenario not in called.get(e.route, set())]
    assert not idle, f"endpoint lines whose scenario never calls their route in a clean run: {idle}"


def test_the_catalogue_is_complete():
    assert {f.kind for f in FAULTS} == set(KINDS), "every emulator fault kind has a line, and no line is unknown"
    assert len({(e.route, e.scenario) for e in ENDPOINTS}) == len(ENDPOINTS), "no endpoint line twice"
    assert {e.api for e in ENDPOINTS} == {"v2", "v3"}
