"""The emulator's HTTP server: v2 routes (and v3's, :mod:`.v3server`) over real HTTP/1.1 keep-alive on 127.0.0.1.

Every request is matched to its route once (:mod:`.routes`); the random faults are decided as it arrives
(before any latency), the one-shot faults (:class:`~.faults.Shots`) change its answer, and the route's template
is counted in :attr:`EmulatorServer.served`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import sys
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from airflow_provider_cc.emulator.data import LINKS_PER_CAMPAIGN, Dataset, View, text_to_ms
from airflow_provider_cc.emulator.faults import DRIP_EVERY, Answer, Shots, plain
from airflow_provider_cc.emulator.oauth import DEVICE_PAGE
from airflow_provider_cc.emulator.routes import Route, Router, Shape
from airflow_provider_cc.reports import CAMPAIGN_STATUSES, REPORTS

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_cc.emulator.faults import FaultInjector, Shot
    from airflow_provider_cc.emulator.v3server import V3Api

Reply = tuple[int, Any]


def error(status: int, key: str, message: str) -> Reply:
    """A v2 error: a JSON array of ``{error_key, error_message}``."""
    return status, [{"error_key": key, "error_message": message}]


NOT_FOUND = error(404, "http.status.not_found", "The requested resource was not found.")
INVALID_TOKEN = error(401, "http.status.authentication.invalid_token", "Invalid token.")
INACTIVE_KEY = error(403, "mashery.not.authorized.inactive", "Account Inactive")
OVER_QPS = error(403, "mashery.not.authorized.over.qps",
                 "The Mashery account associated with this request is over its queries-per-second quota.")
OVER_RATE = error(403, "mashery.not.authorized.over.ratelimit",
                  "The Mashery account associated with this request is over its rate limit quota.")
SERVER_ERROR = error(500, "http.status.internal_server_error", "Internal server error.")
NOT_ACCEPTABLE = error(406, "http.status.not_acceptable", "The Accept header must be application/json.")
# What the one-shot faults of those kinds answer on v2 (the key's per-second limit and day are 403s on v2).
FAULT_ERRORS: dict[str, Reply] = {"status_404": NOT_FOUND, "status_500": SERVER_ERROR, "status_401": INVALID_TOKEN,
                                  "throttled": OVER_QPS, "quota": OVER_RATE}
# The arrival record keeps this many requests.
ARRIVALS_KEPT = 100_000
_SPACES = b" " * (64 * 1024)

_NUMBER = r"\d+"
_WORD = r"\w+"
_V2_PAGE = Shape(items="results", paging="v2")
_V2_DATES = tuple(r.date_field for r in REPORTS.values())
_V2_RECORDS = Shape(items="results", id="contact_id", enum="activity_type", dates=_V2_DATES, records=True, paging="v2")


# Query parameters that carry a credential: the request log keeps their names, never their values.
SECRET_PARAMS = frozenset({"api_key", "access_token", "refresh_token", "client_secret", "code", "code_verifier",
                           "device_code"})


def redacted(query: dict[str, str]) -> dict[str, str]:
    """``query`` as the request log keeps it: every credential replaced by ``***``."""
    return {k: ("***" if k in SECRET_PARAMS else v) for k, v in query.items()}


class BadRequest(Exception):
    """A query value the API would refuse with 400."""


def encode_token(**fields: int) -> str:
    """An opaque, URL-safe, unpadded base64 cursor, like the real API's."""
    raw = "&".join(f"{k}={v}" for k, v in fields.items())
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_token(token: str) -> dict[str, int]:
    """Inverse of :func:`encode_token`; raises BadRequest on anything else."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode()
        fields = {k: int(v) for k, v in parse_qsl(raw, strict_parsing=True)}
        if "pos" not in fields or "limit" not in fields:
            raise ValueError(raw)
        return fields
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The next parameter is invalid.") from None


def _limit(query: dict[str, str], default: int, maximum: int) -> int:
    try:
        limit = int(query.get("limit", default))
    except ValueError:
        raise BadRequest("limit must be a number.") from None
    if not 1 <= limit <= maximum:
        raise BadRequest(f"limit must be between 1 and {maximum}.")
    return limit


def _since(query: dict[str, str], name: str) -> int | None:
    if name not in query:
        return None
    try:
        return text_to_ms(query[name])
    except ValueError:
        raise BadRequest(f"{name} must be an ISO-8601 date.") from None


class EmulatorServer(ThreadingHTTPServer):
    """Holds the dataset, credentials, faults and counters the handler reads.

    :attr served: answers sent, by route template (a path no route matches: ``METHOD path (no route)``).
    :attr arrivals: ``(monotonic time, template)`` of the latest API requests, as they arrived.
    :attr shots: the one-shot faults armed on this server (both APIs).
    """

    daemon_threads = True
    allow_reuse_address = True
    _open: set[Any]  # accepted connections not yet closed (server_close ends them)
    _open_lock: threading.Lock

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Stop listening, and end every connection still open: a client's kept-alive connection must not go on
        being answered by a stopped emulator (a later one may listen on the same port, with other tokens)."""
        super().server_close()
        with self._open_lock:
            still_open = list(self._open)
            self._open.clear()
        for request in still_open:
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (on a dripping, oversized or bombed answer, or at its deadline) is what clients
        do: not printed. Anything else is, as the standard server does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], dataset: Dataset, faults: FaultInjector, api_key: str,
                 token: str, cache_pages: bool = False) -> None:
        self._open = set()
        self._open_lock = threading.Lock()
        super().__init__(address, Handler)
        # Benchmarks only: serve a repeated GET from its stored bytes, so the emulator is not the bottleneck.
        self.page_cache: dict[tuple[str, str], bytes] | None = {} if cache_pages else None
        self.dataset = dataset
        self.faults = faults
        self.api_key = api_key
        self.token = token
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.served: Counter[str] = Counter()
        self.arrivals: deque[tuple[float, str]] = deque(maxlen=ARRIVALS_KEPT)
        self.shots = Shots()
        self.log: deque[tuple[str, dict[str, str]]] = deque(maxlen=10_000)
        self.v3: V3Api | None = None  # the same account through v3 and its OAuth2 server (emulator.v3server)
        self.router = Router()
        add = self.router.add
        add("GET /v2/emailmarketing/campaigns", self.list_campaigns, api="v2",
            shape=Shape(items="results", id="id", enum="status", dates=("modified_date",), paging="v2"))
        add("GET /v2/emailmarketing/campaigns/{id}", self.get_campaign, api="v2",
            shape=Shape(id="id", enum="status", dates=("last_run_date",)), id=_NUMBER)
        add("GET /v2/emailmarketing/campaigns/{id}/tracking/reports/summary", self.campaign_summary, api="v2",
            id=_NUMBER)
        add("GET /v2/emailmarketing/campaigns/{id}/tracking/{report}", self.campaign_tracking, api="v2",
            shape=_V2_RECORDS, id=_NUMBER, report=_WORD)
        add("GET /v2/emailmarketing/campaigns/{id}/tracking/{report}/{link_id}", self.campaign_tracking, api="v2",
            shape=_V2_RECORDS, id=_NUMBER, report=_WORD, link_id=_NUMBER)
        add("GET /v2/contacts/{id}/tracking/reports/summary", self.contact_summary, api="v2",
            shape=Shape(id="contact_id"), id=_NUMBER)
        add("GET /v2/contacts/{id}/tracking/reports/summaryByCampaign", self.contact_by_campaign, api="v2",
            shape=Shape(items="", id="campaign_id"), id=_NUMBER)
        add("GET /v2/contacts/{id}/tracking", self.contact_tracking, api="v2", shape=_V2_RECORDS, id=_NUMBER)
        add("GET /v2/contacts/{id}/tracking/{report}", self.contact_tracking, api="v2", shape=_V2_RECORDS,
            id=_NUMBER, report=_WORD)
        add("GET /v2/contacts/{id}/tracking/{report}/{link_id}", self.contact_tracking, api="v2", shape=_V2_RECORDS,
            id=_NUMBER, report=_WORD, link_id=_NUMBER)

    # ---- dispatch -------------------------------------------------------------------------------------
    def route(self, method: str, path: str) -> tuple[Route, tuple[str, ...]] | None:
        """The route of a request (v2's, else v3's and the OAuth2 server's) and its placeholders' values."""
        return self.router.match(method, path) or (self.v3.router.match(method, path) if self.v3 else None)

    def routes(self) -> dict[str, Route]:
        """Every route of the emulator, by template."""
        return {**self.router.by_template, **(self.v3.router.by_template if self.v3 else {})}

    def arrived(self, template: str) -> None:
        """Record an API request as it arrives (before any latency)."""
        now = time.monotonic()
        with self.lock:
            self.served[template] += 1
            self.arrivals.append((now, template))

    def answer(self, path: str, query: dict[str, str], headers: Any, *, fault: Any = ...,
               found: tuple[Route, tuple[str, ...]] | None = None) -> Reply | None:
        """The reply to a v2 GET; ``None`` means drop the connection.

        :param fault: the random fault decided when the request arrived (default: decide now).
        :param found: the request's route, if already matched.
        """
        if fault is ...:
            fault = self.faults.decide()
        if fault == "drop":
            return None
        if query.get("api_key") != self.api_key:
            return INACTIVE_KEY
        if headers.get("Authorization") != f"Bearer {self.token}":
            return INVALID_TOKEN
        accept = headers.get("Accept", "*/*")
        if "application/json" not in accept and "*/*" not in accept:
            return NOT_ACCEPTABLE
        if fault in ("quota", "qps", "error"):
            return {"quota": OVER_RATE, "qps": OVER_QPS, "error": SERVER_ERROR}[fault]
        if self.page_cache is None:
            reply = self._route(path, query, found)
        else:
            key = (path, json.dumps(sorted((k, v) for k, v in query.items() if k != "api_key")))
            cached = self.page_cache.get(key)
            reply = (200, cached) if cached is not None else self._route(path, query, found)
            if cached is None and reply[0] == 200 and len(self.page_cache) < 5000:
                reply = (200, json.dumps(reply[1], separators=(",", ":")).encode())
                self.page_cache[key] = reply[1]
        return (reply[0], reply[1], "malformed") if fault == "malformed" else reply  # type: ignore[return-value]

    def _route(self, path: str, query: dict[str, str], found: tuple[Route, tuple[str, ...]] | None = None) -> Reply:
        found = found or self.router.match("GET", path)
        if found is None or found[0].api != "v2":
            return NOT_FOUND
        route, values = found
        try:
            return route.handler(query, *values)
        except BadRequest as exc:
            return error(400, "query.param.invalid", str(exc))

    def _page(self, path: str, query: dict[str, str], fetch: Callable[[int | None], tuple[int, Callable]],
              default_limit: int, maximum: int, keep: dict[str, int] | None = None) -> Reply:
        """One page of a list: ``fetch(since)`` returns ``(size, slice_fn)``; the cursor keeps its place (and
        ``keep``, the list's other filters)."""
        if "next" in query:
            state = decode_token(query["next"])
            limit, pos, since = state.get("limit", default_limit), state.get("pos", 0), state.get("since")
        else:
            limit, pos, since = _limit(query, default_limit, maximum), 0, _since(query, "created_since")
            since = since if since is not None else _since(query, "modified_since")
        size, take = fetch(since)
        end = min(pos + limit, size)
        results = take(pos, end)
        pagination: dict[str, str] = {}
        if end < size:
            fields = {"limit": limit, "pos": end} | ({} if since is None else {"since": since}) | (keep or {})
            pagination["next_link"] = f"{path}?next={encode_token(**fields)}"
        return 200, {"meta": {"pagination": pagination}, "results": results}

    # ---- routes ---------------------------------------------------------------------------------------
    def _campaign(self, campaign_id: str, *, allow_deleted: bool = False) -> Any:
        campaign = self.dataset.campaigns.get(campaign_id)
        if campaign is None or (campaign.status == "DELETED" and not allow_deleted):
            return None
        return campaign

    def list_campaigns(self, query: dict[str, str]) -> Reply:
        status = query.get("status", "ALL").upper()
        if "next" in query:  # the status filter holds on every page, as the real next_link keeps it
            status = CAMPAIGN_STATUSES[decode_token(query["next"]).get("status", 0) % len(CAMPAIGN_STATUSES)]
        if status not in CAMPAIGN_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(CAMPAIGN_STATUSES)}.")

        def fetch(since: int | None) -> tuple[int, Callable]:
            statuses = {c.id: self.dataset.status_of(c) for c in self.dataset.campaigns.values()}
            items = [self.dataset.campaign_summary_item(c) for c in self.dataset.campaigns.values()
                     if (statuses[c.id] == status) or (status == "ALL" and statuses[c.id] != "DELETED")]
            if since is not None:
                items = [i for i in items if text_to_ms(i["modified_date"]) >= since]
            items.sort(key=lambda i: (i["modified_date"], i["id"]), reverse=True)
            return len(items), lambda a, b: items[a:b]

        return self._page("/v2/emailmarketing/campaigns", query, fetch, 50, 50,
                          keep={"status": CAMPAIGN_STATUSES.index(status)})

    def get_campaign(self, query: dict[str, str], campaign_id: str) -> Reply:
        campaign = self._campaign(campaign_id)
        return NOT_FOUND if campaign is None else (200, self.dataset.campaign_object(campaign))

    def campaign_summary(self, query: dict[str, str], campaign_id: str) -> Reply:
        campaign = self._campaign(campaign_id)
        if campaign is None:
            return NOT_FOUND
        return 200, {**self.dataset.summary(campaign), "spam_count": 0}

    def campaign_tracking(self, query: dict[str, str], campaign_id: str, report_name: str,
                          link_id: str | None = None) -> Reply:
        campaign = self._campaign(campaign_id)
        report = REPORTS.get(report_name)
        if campaign is None or report is None or (link_id is not None and report_name != "clicks"):
            return NOT_FOUND
        link_index = None
        if link_id is not None:
            link_index = self.dataset.link_index(campaign, link_id)
            if link_index is None:
                return NOT_FOUND
        view = self.dataset.campaign_view(campaign, report, link_index)
        path = f"/v2/emailmarketing/campaigns/{campaign_id}/tracking/{report_name}"
        path += f"/{link_id}" if link_id else ""
        return self._page(path, query, lambda since: self._view_pages(view, since, False), 500, 500)

    def _view_pages(self, view: View, since: int | None, for_contact: bool) -> tuple[int, Callable]:
        head = self.dataset.head(view)  # newest records not yet happened by the dataset's clock

        def take(start: int, stop: int) -> list[dict[str, Any]]:
            return self.dataset.records(view, head + start, head + stop, for_contact=for_contact)

        served = min(self.dataset.stop_for(view, since), self.dataset.served_end(view))
        return max(0, served - head), take

    def _contact(self, contact_id: str) -> int | None:
        contact = int(contact_id)
        return contact if 1 <= contact <= self.dataset.config.contacts else None

    def contact_tracking(self, query: dict[str, str], contact_id: str, report_name: str | None = None,
                         link_id: str | None = None) -> Reply:
        contact = self._contact(contact_id)
        if contact is None or (report_name is not None and report_name not in REPORTS):
            return NOT_FOUND
        if link_id is not None and report_name != "clicks":
            return NOT_FOUND

        def fetch(since: int | None) -> tuple[int, Callable]:
            found = self.dataset.contact_activity(contact, report_name, since)
            if link_id is not None:
                found = [(ts, v, p) for ts, v, p in found
                         if self.dataset.link_id(v.campaign, (v.offset + p * v.stride) % LINKS_PER_CAMPAIGN) == link_id]
            return len(found), lambda a, b: [self.dataset.record(v, p, for_contact=True) for _, v, p in found[a:b]]

        path = f"/v2/contacts/{contact_id}/tracking" + (f"/{report_name}" if report_name else "") + (
            f"/{link_id}" if link_id else "")
        return self._page(path, query, fetch, 500, 500)

    def contact_summary(self, query: dict[str, str], contact_id: str) -> Reply:
        contact = self._contact(contact_id)
        if contact is None:
            return NOT_FOUND
        totals: Counter[str] = Counter()
        for campaign in self.dataset.campaigns.values():
            totals.update(self.dataset.contact_counts(contact, campaign))
        return 200, {**{r.summary_key: totals[r.summary_key] for r in REPORTS.values()}, "contact_id": contact_id}

    def contact_by_campaign(self, query: dict[str, str], contact_id: str) -> Reply:
        contact = self._contact(contact_id)
        if contact is None:
            return NOT_FOUND
        rows = []
        for campaign in self.dataset.campaigns.values():
            counts = self.dataset.contact_counts(contact, campaign)
            if any(counts.values()):
                rows.append({"campaign_id": campaign.id, "contact_id": contact_id, "opens": counts["opens"],
                             "clicks": counts["clicks"], "forwards": counts["forwards"],
                             "bounces": counts["bounces"]})
        return 200, rows


class Handler(BaseHTTPRequestHandler):
    """Serves one keep-alive connection."""

    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and benchmarks read stdout
        return

    def _send(self, status: int, body: Any, malformed: bool = False) -> None:
        self._deliver(plain((status, body, "malformed") if malformed else (status, body)))

    def _device_page(self, fields: list[tuple[str, str]], posted: bool) -> None:
        """The device flow's verification page (HTML for a person's browser; see emulator/oauth.py)."""
        assert self.server.v3 is not None
        status, page = self.server.v3.oauth.device_page(dict(fields), posted)
        payload = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _deliver(self, answer: Answer, shot: Shot | None = None) -> None:
        """Write an answer: at once, dripping, or after padding without a length (then close); what happened on
        the wire goes to the fault that made it."""
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        for name, value in answer.headers:
            self.send_header(name, value)
        if answer.pad:
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(len(answer.payload)))
        self.end_headers()
        started, sent, hung_up = time.monotonic(), 0, False
        try:
            left = answer.pad
            while left > 0:
                block = _SPACES[:min(left, len(_SPACES))]
                self.wfile.write(block)
                sent, left = sent + len(block), left - len(block)
            payload = answer.payload
            if answer.drip:
                done = 0
                while done < len(payload) and time.monotonic() - started < answer.drip:
                    self.wfile.write(payload[done:done + 1])
                    sent, done = sent + 1, done + 1
                    time.sleep(DRIP_EVERY)
                payload = payload[done:]
            self.wfile.write(payload)
            sent += len(payload)
        except OSError:  # the client hung up
            hung_up = True
            self.close_connection = True
        if shot is not None:
            shot.outcome = {"hung_up": hung_up, "sent": sent, "seconds": round(time.monotonic() - started, 3)}
        with self.server.lock:
            self.server.statuses[answer.status] += 1

    def _respond(self, found: tuple[Route, tuple[str, ...]] | None, path: str, pairs: list[tuple[str, str]],
                 compute: Callable[[], Any], stand_in: Callable[[], Any] | None = None,
                 alias: Callable[[Any], Any] | None = None) -> None:
        """Answer a request: the correct reply, or the one-shot fault armed for its route."""
        if found is None:
            reply = compute()
            answer, shot = (None if reply is None else plain(reply)), None
        else:
            route = found[0]
            kept = [(k, v) for k, v in pairs if k not in SECRET_PARAMS]
            target = path + (f"?{urlencode(kept)}" if kept else "")
            v3 = self.server.v3
            errors = FAULT_ERRORS if route.api == "v2" or v3 is None else v3.fault_errors[route.api]
            answer, shot = self.server.shots.answer(route, target, path, compute, errors, stand_in, alias)
        if answer is None:
            self.close_connection = True
            return
        self._deliver(answer, shot)

    def _authorize(self, pairs: list[tuple[str, str]]) -> None:
        """The browser's authorize request (auto-approved): a redirect back with the code."""
        assert self.server.v3 is not None
        status, where = self.server.v3.oauth.authorize(dict(pairs))
        if status != 302:
            self._send(status, {"error": "invalid_request", "error_description": where})
            return
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        server, v3 = self.server, self.server.v3
        if split.path == "/_emulator/stats":
            self._send(200, {"statuses": dict(server.statuses), "requests": server.faults.requests})
            return
        if v3 is not None and split.path == DEVICE_PAGE:
            self._device_page(pairs, posted=False)
            return
        if v3 is not None and split.path == "/oauth2/default/v1/authorize":
            server.log.append((split.path, redacted(dict(pairs))))
            self._authorize(pairs)
            return
        found = server.route("GET", split.path)
        on_v3 = v3 is not None and split.path.startswith(("/v3/", "/oauth2/"))
        fault = (v3.faults if v3 is not None and on_v3 else server.faults).decide()  # counted as it arrives
        server.arrived(found[0].template if found else f"GET {split.path} (no route)")
        server.log.append((split.path, redacted(dict(pairs))))
        latency = server.faults.config.latency
        if latency:
            time.sleep(latency)
        if v3 is not None and on_v3:
            def compute() -> Any:
                return v3.answer(split.path, pairs, self.headers, fault=fault, found=found)
        else:
            def compute() -> Any:
                return server.answer(split.path, dict(pairs), self.headers, fault=fault, found=found)
        self._respond(found, split.path, pairs, compute)

    def do_POST(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        server, v3 = self.server, self.server.v3
        if v3 is not None and split.path == DEVICE_PAGE and "x-www-form-urlencoded" in self.headers.get(
                "Content-Type", ""):  # the page's buttons; a program posts JSON to the same path
            self._device_page(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True), posted=True)
            return
        pairs = parse_qsl(split.query, keep_blank_values=True)
        found = server.route("POST", split.path)
        if v3 is not None and found is not None:  # the OAuth2 server's endpoints
            server.arrived(found[0].template)
            form = v3.form(pairs, raw, self.headers)
            server.log.append((split.path, redacted(form)))
            host, port = server.server_address[:2]
            base_url = f"http://{host if isinstance(host, str) else host.decode()}:{port}"
            route = found[0]
            self._respond(found, split.path, pairs, lambda: v3.post_route(route, form, self.headers, base_url),
                          stand_in=v3.stand_in(route, form), alias=v3.alias)
            return
        if v3 is not None and split.path.startswith(("/oauth2/", "/_emulator/oauth/")):
            reply, logged = v3.post(split.path, pairs, raw, self.headers, "")
            server.log.append((split.path, logged))
            self._send(*reply)
            return
        body = json.loads(raw or b"{}")
        if split.path == "/_emulator/now":  # the account's clock: {"now": ISO-8601 or null}
            moment = body.get("now")
            server.dataset.now_ms = None if moment is None else text_to_ms(str(moment))
            self._send(200, {"now": moment})
            return
        match = re.fullmatch(r"/_emulator/campaigns/(\d+)/status", split.path)
        campaign = server.dataset.campaigns.get(match.group(1)) if match else None
        if campaign is None or body.get("status") not in CAMPAIGN_STATUSES[1:]:
            self._send(*NOT_FOUND)
            return
        campaign.status = body["status"]
        self._send(200, {"id": campaign.id, "status": campaign.status})
