"""A faithful local emulator of the Constant Contact v2 tracking API, for tests, demos and benchmarks.

Example::

    with Emulator(DataConfig(campaigns=2, activities=1000)) as emu:
        os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = emu.connection_json()
        ...
"""

from __future__ import annotations

import json
import threading
from typing import Any

from airflow_provider_cc.emulator.data import DataConfig, Dataset, text_to_ms
from airflow_provider_cc.emulator.faults import FaultConfig, FaultInjector
from airflow_provider_cc.emulator.server import EmulatorServer
from airflow_provider_cc.reports import REPORTS

DEFAULT_API_KEY = "emulator-api-key"
DEFAULT_TOKEN = "emulator-access-token"

__all__ = ["DataConfig", "Emulator", "FaultConfig"]


class Emulator:
    """Runs the emulator in a background thread; use it as a context manager.

    :param data: the synthetic account's size and seed.
    :param faults: fault injection (none by default).
    :param host: address to bind; keep it on loopback.
    :param port: port to bind; 0 picks a free one.
    :param api_key: the api_key the emulator accepts.
    :param token: the access token the emulator accepts.
    :param cache_pages: serve repeated requests from stored bytes (benchmarks; ignores status changes).
    """

    def __init__(self, data: DataConfig | None = None, faults: FaultConfig | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, api_key: str = DEFAULT_API_KEY,
                 token: str = DEFAULT_TOKEN, cache_pages: bool = False) -> None:
        self.dataset = Dataset(data or DataConfig())
        self.api_key = api_key
        self.token = token
        self.server = EmulatorServer((host, port), self.dataset, FaultInjector(faults or FaultConfig()),
                                     api_key, token, cache_pages)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self.server.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    def start(self) -> Emulator:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="cc-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- control --------------------------------------------------------------------------------------
    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault settings (the dice restart from the new seed)."""
        self.server.faults = FaultInjector(faults)

    def set_status(self, campaign_id: str, status: str) -> None:
        """Move a campaign to another status, e.g. SCHEDULED to SENT."""
        self.dataset.campaigns[str(campaign_id)].status = status

    @property
    def statuses(self) -> dict[int, int]:
        """Responses sent, by HTTP status."""
        return dict(self.server.statuses)

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """The last 10,000 requests: path and query, credentials (the api_key) shown as ``***``."""
        return list(self.server.log)

    def connection(self, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (as a dict) pointing at this emulator."""
        return {"conn_type": "constant_contact", "host": self.url, "password": self.token,
                "extra": {"api_key": self.api_key, **extra}}

    def connection_json(self, **extra: Any) -> str:
        """:meth:`connection` as JSON, for ``AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT``."""
        return json.dumps(self.connection(**extra))

    # ---- expected data ------------------------------------------------------------------------------------
    def campaign_ids(self, status: str = "SENT") -> list[str]:
        """Ids of the campaigns in ``status``."""
        return [c.id for c in self.dataset.campaigns.values() if c.status == status]

    def records(self, campaign_id: str, report: str, *, link_id: str | None = None,
                created_since: str | None = None, created_before: str | None = None) -> list[dict[str, Any]]:
        """The records the emulator holds for a campaign report and window, newest first, as served."""
        campaign = self.dataset.campaigns[str(campaign_id)]
        spec = REPORTS[report]
        link_index = None if link_id is None else self.dataset.link_index(campaign, str(link_id))
        view = self.dataset.campaign_view(campaign, spec, link_index)
        since = None if created_since is None else text_to_ms(created_since)
        before = None if created_before is None else text_to_ms(created_before)
        rows = self.dataset.records(view, 0, self.dataset.stop_for(view, since))
        return [r for r in rows if before is None or text_to_ms(r[spec.date_field]) < before]
