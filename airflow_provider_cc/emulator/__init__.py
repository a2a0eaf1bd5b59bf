"""A faithful local emulator of the Constant Contact API, v2 and v3 (with its OAuth2 server), serving one
synthetic account through both, for tests, demos and benchmarks.

Example::

    with Emulator(DataConfig(campaigns=2, activities=1000)) as emu:
        os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_DEFAULT"] = emu.connection_json()
        os.environ["AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT"] = emu.v3_connection_json()
        ...
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.emulator.data import DataConfig, Dataset, text_to_ms
from airflow_provider_cc.emulator.faults import KINDS, FaultConfig, FaultInjector, Shot
from airflow_provider_cc.emulator.server import EmulatorServer
from airflow_provider_cc.emulator.v3server import TOKEN_PATH, V3Api, V3Options
from airflow_provider_cc.reports import REPORTS

if TYPE_CHECKING:
    from airflow_provider_cc.emulator.routes import Route

DEFAULT_API_KEY = "emulator-api-key"
DEFAULT_TOKEN = "emulator-access-token"

__all__ = ["KINDS", "DataConfig", "Emulator", "FaultConfig", "Shot", "V3Options"]


class Emulator:
    """Runs the emulator in a background thread; use it as a context manager.

    :param data: the synthetic account's size and seed.
    :param faults: fault injection (none by default).
    :param host: address to bind; keep it on loopback.
    :param port: port to bind; 0 picks a free one.
    :param api_key: the api_key the emulator accepts.
    :param token: the access token the emulator accepts.
    :param cache_pages: serve repeated requests from stored bytes (benchmarks; ignores status changes).
    :param v3: the v3 view's and OAuth2 server's options (v3 is always served, beside v2).
    """

    def __init__(self, data: DataConfig | None = None, faults: FaultConfig | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, api_key: str = DEFAULT_API_KEY,
                 token: str = DEFAULT_TOKEN, cache_pages: bool = False, v3: V3Options | None = None) -> None:
        self.dataset = Dataset(data or DataConfig())
        self.api_key = api_key
        self.token = token
        self.server = EmulatorServer((host, port), self.dataset, FaultInjector(faults or FaultConfig()),
                                     api_key, token, cache_pages)
        self.v3 = self.server.v3 = V3Api(self.dataset, FaultInjector(faults or FaultConfig()), v3)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self.server.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    def start(self, poll_interval: float = 0.05) -> Emulator:
        """Serve in a daemon thread.

        :param poll_interval: how often the serving loop looks for :meth:`stop` (what a stop waits at most).
        """
        self._thread = threading.Thread(target=self.server.serve_forever, args=(poll_interval,), name="cc-emulator",
                                        daemon=True)
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
        """Replace the fault settings of both APIs (the dice restart from the new seed)."""
        self.server.faults = FaultInjector(faults)
        self.v3.faults = FaultInjector(faults)

    def arm(self, route: str, kind: str, nth: int = 1) -> Shot:
        """Arm a one-shot fault: ``kind`` (one of :data:`~airflow_provider_cc.emulator.faults.KINDS`) hits the
        ``nth`` answer of ``route`` (a template, e.g. ``GET /v3/emails/{id}``) that it applies to; every other
        answer stays correct. The :class:`~airflow_provider_cc.emulator.faults.Shot` returned says, once it fired,
        which request it hit and what happened on the wire."""
        found = self.server.routes().get(route)
        if found is None:
            raise ValueError(f"no route {route!r}; the emulator serves: {', '.join(self.server.routes())}")
        return self.server.shots.arm(found, kind, nth)

    def disarm(self) -> None:
        """Disarm every one-shot fault that has not fired yet."""
        self.server.shots.clear()

    def fits(self, route: str, kind: str) -> bool:
        """Whether fault ``kind`` can apply to ``route``'s answers at all (by what they hold)."""
        return KINDS[kind].fits(self.server.routes()[route])

    @property
    def routes(self) -> dict[str, Route]:
        """Every route the emulator serves, by template (with the shape of its answers)."""
        return self.server.routes()

    @property
    def served(self) -> Counter[str]:
        """Requests received, by route template (a path no route matches: ``METHOD path (no route)``)."""
        with self.server.lock:
            return Counter(self.server.served)

    def clear_served(self) -> None:
        """Forget the served counts and the arrivals."""
        with self.server.lock:
            self.server.served.clear()
            self.server.arrivals.clear()

    @property
    def arrivals(self) -> list[tuple[float, str]]:
        """``(time.monotonic(), template)`` of the latest API requests, when each arrived (before any latency)."""
        with self.server.lock:
            return list(self.server.arrivals)

    def set_now(self, moment: str | None) -> None:
        """Set the account's clock (ISO-8601; ``None``: the end of the data): what has happened by then is served
        (see :class:`~airflow_provider_cc.emulator.data.Dataset`)."""
        self.dataset.now_ms = None if moment is None else text_to_ms(moment)

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
        head = self.dataset.head(view)
        rows = self.dataset.records(view, head, max(head, self.dataset.stop_for(view, since)))
        return [r for r in rows if before is None or text_to_ms(r[spec.date_field]) < before]

    # ---- v3 -------------------------------------------------------------------------------------------------
    @property
    def token_url(self) -> str:
        """The OAuth2 server's token endpoint."""
        return self.url + TOKEN_PATH

    def v3_connection(self, *, refresh_token: str | None = None, scope: str | None = None,
                      **extra: Any) -> dict[str, Any]:
        """A ``constant_contact_v3`` connection (as a dict) with a new refresh-token chain of its own (or the
        one given), pointing at this emulator's API and OAuth2 server."""
        if refresh_token is None:
            issued = self.v3.oauth.issue(*(() if scope is None else (scope,)))
            refresh_token = issued["refresh_token"]
        o = self.v3.options
        return {"conn_type": "constant_contact_v3", "host": self.url, "login": o.client_id,
                "password": o.client_secret,
                "extra": {"refresh_token": refresh_token, "oauth_url": self.token_url, **extra}}

    def v3_connection_json(self, **extra: Any) -> str:
        """:meth:`v3_connection` as JSON, for ``AIRFLOW_CONN_CONSTANT_CONTACT_V3_DEFAULT``."""
        return json.dumps(self.v3_connection(**extra))

    def v3_activity_ids(self, role: str = "primary_email", status: str = "SENT") -> list[str]:
        """Ids of the v3 activities with ``role`` whose v2 campaign is in ``status``."""
        return [a.id for a in self.v3.view.activities.values()
                if a.role == role and (a.source or a.campaign.primary).status == status]

    def v3_records(self, activity_id: str, report: str) -> list[dict[str, Any]]:
        """Every record of an activity's v3 report, newest first, as served."""
        return self.v3.view.all_records(self.v3.view.activities[activity_id], report)
