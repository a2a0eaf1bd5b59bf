"""The v3 view serves the v2 emulator's account: the same activity, v3's shapes, v2's answers unchanged."""

from __future__ import annotations

import hashlib
import json

import requests

from airflow_provider_cc.emulator import DataConfig, Emulator, V3Options
from airflow_provider_cc.reports import REPORTS, V3_REPORTS


def _v2_body(emu: Emulator, path: str, **params: str) -> bytes:
    return requests.get(emu.url + path, params={"api_key": emu.api_key, **params}, timeout=10,
                        headers={"Authorization": f"Bearer {emu.token}", "Accept": "application/json"}).content


def test_v3_records_are_the_v2_records_of_the_same_account():
    with Emulator(DataConfig.realistic(weeks=6, activities=60), v3=V3Options(resend_every=3)) as emu:
        view = emu.v3.view
        for v2_id, activity in view.by_v2.items():
            campaign = emu.dataset.campaigns[v2_id]
            for report in V3_REPORTS.values():
                if report.snapshot:
                    continue
                v2 = emu.records(v2_id, report.name) if campaign.status == "SENT" else []
                v3 = view.all_records(activity, report.segment)
                date = REPORTS[report.name].date_field
                assert [(r["email_address"], r[date]) for r in v2] == [
                    (r["email_address"], r["created_time"]) for r in v3], (v2_id, report.name)
        assert sum(1 for a in view.activities.values() if a.role == "resend") == 2, "weeks 3 and 6 are resends"


def test_v2_answers_are_byte_for_byte_what_they_were():
    """Digests of v2 answers recorded before v3 existed (seed 1): serving v3 beside them changes none."""
    with Emulator(DataConfig(campaigns=2, contacts=40, activities=30)) as emu:
        cid = next(iter(emu.dataset.campaigns))
        bodies = [_v2_body(emu, f"/v2/emailmarketing/campaigns/{cid}/tracking/{r}", limit="7")
                  for r in ("sends", "opens", "clicks", "bounces", "unsubscribes")]
        bodies.append(_v2_body(emu, "/v2/emailmarketing/campaigns", status="ALL"))
        bodies.append(_v2_body(emu, f"/v2/emailmarketing/campaigns/{cid}"))
    digest = hashlib.sha256(b"".join(bodies)).hexdigest()
    assert digest == V2_DIGEST, digest


# Recorded with the code of main before v3 (commit 4df4762), the same request for request.
V2_DIGEST = "74131239115b36ac1d9cdff6bebd4ec55d2f048ba9e59f34e3b3c6512333e9a3"


def test_ids_are_stable_uuids_and_the_log_holds_no_token():
    config = DataConfig(campaigns=3, contacts=20, activities=10)
    with Emulator(config) as one, Emulator(config) as two:
        assert list(one.v3.view.activities) == list(two.v3.view.activities), "derived from the seed and v2 ids"
        token = one.v3.oauth.issue()["access_token"]
        requests.get(f"{one.url}/v3/emails", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        requests.post(one.token_url, data={"grant_type": "refresh_token", "refresh_token": "secret-rt-123",
                                           "client_id": one.v3.options.client_id}, timeout=10)
        logged = json.dumps(one.requests)
        assert token not in logged and "secret-rt-123" not in logged
