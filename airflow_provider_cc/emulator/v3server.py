"""The emulator's v3 routes and OAuth2 endpoints, served by the same HTTP server as v2 (one account, two APIs).

Tracking reports list the newest activity first, take ``limit`` (plus ``url_id`` on clicks and repeated
``bounce_code`` on bounces) and ignore every other parameter, as the real API presumably does; pages link
on with ``_links.next.href`` rooted at ``/v3``. Limits are per client id: ``qps`` requests a second and a
daily quota, answered 429 with v3's bodies (``throttled``, ``quota_exceeded``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from airflow_provider_cc.emulator.data import text_to_ms
from airflow_provider_cc.emulator.faults import fake_token_answer
from airflow_provider_cc.emulator.oauth import OAuthServer, oauth_error
from airflow_provider_cc.emulator.routes import Route, Router, Shape
from airflow_provider_cc.emulator.server import BadRequest, _limit, decode_token, encode_token, redacted
from airflow_provider_cc.emulator.v3data import V3View
from airflow_provider_cc.reports import V3_BOUNCE_CODES, V3_REPORTS

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_cc.emulator.data import Dataset
    from airflow_provider_cc.emulator.faults import FaultInjector
    from airflow_provider_cc.emulator.v3data import Activity, V3Campaign

Reply = tuple[int, Any]
DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
TOKEN_PATH = "/oauth2/default/v1/token"
DEVICE_PATH = "/oauth2/default/v1/device/authorize"
_UUID = "[0-9a-f-]{36}"


def error(status: int, key: str, message: str) -> Reply:
    """Most v3 errors: an array of ``{error_key, error_message}``."""
    return status, [{"error_key": key, "error_message": message}]


UNAUTHORIZED = 401, {"error_key": "unauthorized", "error_message": "Unauthorized"}  # an object, as seen live
THROTTLED = 429, {"error_key": "throttled", "error_message": "Too Many Requests"}
QUOTA = 429, {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}
NOT_FOUND = error(404, "not_found", "The requested resource was not found.")
SERVER_ERROR = error(500, "internal_error", "There was a problem with our internal service.")
FORBIDDEN = error(403, "forbidden", "You lack the necessary scopes, you lack the necessary user privileges, or "
                                    "the application is deactivated.")
UNSUPPORTED = error(415, "unsupported_media_type", "Unsupported Media Type.")
# What the one-shot faults of those kinds answer, on the API and on the OAuth2 server.
FAULT_ERRORS: dict[str, dict[str, Reply]] = {
    "v3": {"status_404": NOT_FOUND, "status_500": SERVER_ERROR, "status_401": UNAUTHORIZED, "throttled": THROTTLED,
           "quota": QUOTA},
    "oauth": {"status_404": oauth_error(404, "not_found", "No such endpoint."),
              "status_500": oauth_error(500, "server_error", "The server had an internal error."),
              "status_401": oauth_error(401, "invalid_client", "Client authentication failed."),
              "throttled": oauth_error(429, "too_many_requests", "API call exceeded rate limit due to too many "
                                                                 "requests."),
              "quota": (429, {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"})},
}


@dataclass(frozen=True)
class V3Options:
    """How the v3 view and its OAuth2 server behave.

    :param client_id: the application's client id (API key).
    :param client_secret: its secret.
    :param mode: ``rotating`` or ``long_lived`` refresh tokens.
    :param access_token_lifetime: seconds an access token lives (short, to force refreshes mid-run).
    :param token_calls_per_second: the token endpoint's limit (Constant Contact: 1).
    :param device_interval: seconds between device-flow polls.
    :param resend_every: every n-th SENT v2 campaign is served as the previous campaign's resend (0: none).
    :param string_counts: serve bulk summaries' counts as strings and ``aggregate_percents`` as an array (the
        summary guide's variant; the spec says integers and an object).
    :param dotted_stats: serve activity-stats keys dotted (``em_opens.all.mobile``, the guide's variant).
    :param require_content_type: answer 415 to a request without ``Content-Type: application/json``.
    """

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    mode: str = "rotating"
    access_token_lifetime: float = 86_400.0
    token_calls_per_second: float = 1.0
    device_interval: float = 5.0
    resend_every: int = 3
    string_counts: bool = False
    dotted_stats: bool = False
    require_content_type: bool = False


def _dotted(stats: dict[str, Any]) -> dict[str, Any]:
    return {k.replace("_all", ".all").replace(".all_", ".all."): v for k, v in stats.items()}


class V3Api:
    """The v3 half of the emulator: routes, OAuth2, per-client limits.

    :param dataset: the account (the v2 emulator's).
    :param faults: this API's fault injector (its own request counts and dice).
    :param options: the view's and the OAuth server's knobs.
    """

    def __init__(self, dataset: Dataset, faults: FaultInjector, options: V3Options | None = None) -> None:
        self.options = options or V3Options()
        o = self.options
        self.view = V3View(dataset, resend_every=o.resend_every)
        self.oauth = OAuthServer(o.client_id, o.client_secret, mode=o.mode,
                                 access_token_lifetime=o.access_token_lifetime,
                                 token_calls_per_second=o.token_calls_per_second, device_interval=o.device_interval)
        self.faults = faults
        self.fault_errors = FAULT_ERRORS
        self.router = Router()
        add = self.router.add
        add("GET /v3/emails", self.list_campaigns, api="v3", shape=Shape(
            items="campaigns", id="campaign_id", enum="current_status", dates=("updated_at",), paging="v3"))
        add("GET /v3/emails/campaign_id_xrefs", self.xrefs, api="v3", shape=Shape(items="xrefs", id="campaign_id"))
        add("GET /v3/contacts/contact_id_xrefs", self.contact_xrefs, api="v3",
            shape=Shape(items="xrefs", id="contact_id"))
        add("GET /v3/emails/activities/{id}", self.get_activity, api="v3",
            shape=Shape(id="campaign_activity_id", enum="role"), id=_UUID)
        add("GET /v3/emails/activities/{id}/send_history", self.send_history, api="v3",
            shape=Shape(items="", id="send_id", enum="send_status", dates=("run_date",)), id=_UUID)
        add("GET /v3/emails/{id}", self.get_campaign, api="v3",
            shape=Shape(items="campaign_activities", id="campaign_activity_id", enum="role"), id=_UUID)
        add("GET /v3/reports/email_reports/{id}/tracking/{report}", self.tracking, api="v3", shape=Shape(
            items="tracking_activities", id="contact_id", enum="tracking_activity_type", dates=("created_time",),
            records=True, paging="v3"), id=_UUID, report=r"\w+")
        add("GET /v3/reports/email_reports/{id}/links", self.links, api="v3",
            shape=Shape(items="link_click_counts", id="url_id"), id=_UUID)
        add("GET /v3/reports/stats/email_campaign_activities/{ids}", self.activity_stats, api="v3",
            shape=Shape(items="results", id="campaign_activity_id"))
        add("GET /v3/reports/stats/email_campaigns/{ids}", self.campaign_stats, api="v3",
            shape=Shape(items="results", id="campaign_id"))
        add("GET /v3/reports/summary_reports/email_campaign_summaries", self.summaries, api="v3", shape=Shape(
            items="bulk_email_campaign_summaries", id="campaign_id", enum="campaign_type",
            dates=("last_sent_date",), paging="v3"))
        add("GET /v3/reports/contact_reports/{id}/activity_details", self.contact_activity, api="v3", shape=Shape(
            items="tracking_activities", id="campaign_activity_id", enum="tracking_activity_type",
            dates=("created_time",), records=True, paging="v3"), id=_UUID)
        add("GET /v3/reports/contact_reports/{id}/activity_summary", self.contact_summary, api="v3",
            shape=Shape(items="campaign_activities", id="campaign_activity_id", dates=("start_on",)), id=_UUID)
        add(f"POST {TOKEN_PATH}", self._token, api="oauth", shape=Shape(token=True), writes=True)
        add(f"POST {DEVICE_PATH}", self._device, api="oauth")  # a device code no client uses harms nothing

    # ---- dispatch -------------------------------------------------------------------------------------------
    def answer(self, path: str, pairs: list[tuple[str, str]], headers: Any, *, fault: Any = ...,
               found: tuple[Route, tuple[str, ...]] | None = None) -> Reply | None:
        """The reply to a v3 GET; ``None``: drop the connection.

        :param fault: the random fault decided when the request arrived (default: decide now).
        :param found: the request's route, if already matched.
        """
        if fault is ...:
            fault = self.faults.decide()
        if fault == "drop":
            return None
        auth = headers.get("Authorization", "")
        access = self.oauth.check_access(auth[7:]) if auth.startswith("Bearer ") else None
        if access is None:
            return UNAUTHORIZED
        if self.oauth.deactivated:
            return FORBIDDEN
        if self.options.require_content_type and "application/json" not in headers.get("Content-Type", ""):
            return UNSUPPORTED
        if fault in ("quota", "qps", "error"):
            return {"quota": QUOTA, "qps": THROTTLED, "error": SERVER_ERROR}[fault]
        scopes = access[1]
        needed = "contact_data" if path.startswith(("/v3/reports/contact_reports/", "/v3/contacts/")) \
            else "campaign_data"
        if needed not in scopes:
            return FORBIDDEN
        found = found or self.router.match("GET", path)
        if found is None or found[0].api != "v3":
            return NOT_FOUND
        route, values = found
        try:
            reply = route.handler(dict(pairs), *values, pairs=pairs)
        except BadRequest as exc:
            return error(400, "query.param.invalid", str(exc))
        return (reply[0], reply[1], "malformed") if fault == "malformed" else reply  # type: ignore[return-value]

    @staticmethod
    def form(pairs: list[tuple[str, str]], body: bytes, headers: Any) -> dict[str, str]:
        """A POST's form: the query's fields and a urlencoded body's."""
        form = dict(pairs)
        if "x-www-form-urlencoded" in headers.get("Content-Type", ""):
            form.update(dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
        return form

    def post_route(self, route: Route, form: dict[str, str], headers: Any, base_url: str) -> Reply:
        """The reply of one of the OAuth2 server's POST routes."""
        return route.handler(form, headers, base_url)

    def _token(self, form: dict[str, str], headers: Any, base_url: str) -> Reply:
        return self.oauth.token(form, _basic(headers.get("Authorization", "")))

    def _device(self, form: dict[str, str], headers: Any, base_url: str) -> Reply:
        return self.oauth.device_authorize(form, base_url, _basic(headers.get("Authorization", "")))

    @staticmethod
    def stand_in(route: Route, form: dict[str, str]) -> Callable[[], Any] | None:
        """For a request that would move a refresh-token chain (a refresh), what a fault changing its answer
        carries instead of a real one: a token answer with values no server issued. ``None`` for any other
        request (a device or code grant: its real answer is changed; losing it costs a login, not a chain)."""
        if route.shape.token and form.get("grant_type") == "refresh_token":
            return fake_token_answer
        return None

    def alias(self, answer: dict[str, Any]) -> dict[str, Any]:
        """A token answer whose access token is replaced by an opaque alias the API accepts alike (no JWT ``exp``
        to read: a fault on ``expires_in`` is then all a client knows of the expiry)."""
        token = answer.get("access_token")
        return {**answer, "access_token": self.oauth.alias(token)} if isinstance(token, str) else answer

    def post(self, path: str, pairs: list[tuple[str, str]], body: bytes, headers: Any,
             base_url: str) -> tuple[Reply, dict[str, str]]:
        """The reply to a POST (token endpoint, device authorize, controls) and its log entry."""
        form = self.form(pairs, body, headers)
        found = self.router.match("POST", path)
        if found is not None:
            return self.post_route(found[0], form, headers, base_url), redacted(form)
        try:
            control = json.loads(body or b"{}")
        except ValueError:
            control = {}
        if path == "/_emulator/oauth/device":
            done = self.oauth.device_decide(str(control.get("user_code", "")), bool(control.get("deny")))
            return ((200, {"ok": True}) if done else NOT_FOUND), {}
        if path == "/_emulator/oauth/settings":
            for name in ("access_token_lifetime", "mode", "deactivated", "token_calls_per_second",
                         "reject_access_tokens"):
                if name in control:
                    setattr(self.oauth, name, control[name])
            if control.get("revoke"):
                self.oauth.revoke_all()
            if control.get("expire_access_tokens"):
                self.oauth.expire_access_tokens()
            if control.get("age_refresh_tokens_days"):
                self.oauth.age_refresh_tokens(float(control["age_refresh_tokens_days"]))
            return (200, {"mode": self.oauth.mode, "access_token_lifetime": self.oauth.access_token_lifetime}), {}
        return oauth_error(404, "not_found", "No such endpoint."), {}

    # ---- paging -------------------------------------------------------------------------------------------
    def _page(self, path: str, query: dict[str, str], items: str, fetch: Callable[[int, int], tuple[int, list]],
              default: int, maximum: int, keep: dict[str, int] | None = None) -> Reply:
        if "next" in query:
            state = decode_token(query["next"])
            limit, pos = state["limit"], state["pos"]
        else:
            limit, pos = _limit(query, default, maximum), 0
        total, records = fetch(pos, pos + limit)
        body: dict[str, Any] = {items: records}
        if pos + limit < total:
            token = encode_token(limit=limit, pos=pos + limit, **(keep or {}))
            body["_links"] = {"next": {"href": f"{path}?next={token}"}}
        return 200, body

    def _activity(self, activity_id: str) -> Activity | None:
        activity = self.view.activities.get(activity_id)
        if activity is None or activity.campaign.status == "DELETED":
            return None
        return activity

    # ---- campaigns -------------------------------------------------------------------------------------------
    def list_campaigns(self, query: dict[str, str], *, pairs: Any) -> Reply:
        items = [self.view.campaign_item(c) for c in self.view.campaigns.values()]
        for name, keep in (("after_date", lambda t, b: t > b), ("before_date", lambda t, b: t < b)):
            if name in query:
                try:
                    bound = text_to_ms(query[name])
                except ValueError:
                    raise BadRequest(f"{name} must be an ISO-8601 date-time.") from None
                items = [i for i in items if keep(text_to_ms(i["updated_at"]), bound)]
        items.sort(key=lambda i: (i["updated_at"], i["campaign_id"]), reverse=True)
        return self._page("/v3/emails", query, "campaigns", lambda a, b: (len(items), items[a:b]), 50, 500)

    def get_campaign(self, query: dict[str, str], campaign_id: str, *, pairs: Any) -> Reply:
        campaign = self.view.campaigns.get(campaign_id)
        return NOT_FOUND if campaign is None else (200, self.view.campaign_object(campaign))

    def get_activity(self, query: dict[str, str], activity_id: str, *, pairs: Any) -> Reply:
        activity = self._activity(activity_id)
        return NOT_FOUND if activity is None else (200, self.view.activity_object(activity))

    def send_history(self, query: dict[str, str], activity_id: str, *, pairs: Any) -> Reply:
        activity = self._activity(activity_id)
        return NOT_FOUND if activity is None else (200, self.view.send_history(activity))

    def xrefs(self, query: dict[str, str], *, pairs: Any) -> Reply:
        ids = [i.strip() for i in query.get("v2_email_campaign_ids", "").split(",") if i.strip()]
        if not ids or len(ids) > 50:
            raise BadRequest("v2_email_campaign_ids takes 1 to 50 ids.")
        found = []
        for v2_id in ids:
            activity = self.view.by_v2.get(v2_id)
            if activity is not None:
                found.append({"v2_email_campaign_id": v2_id, "campaign_id": activity.campaign.id,
                              "campaign_activity_id": activity.id})
        return 200, {"xrefs": found}

    def contact_xrefs(self, query: dict[str, str], *, pairs: Any) -> Reply:
        ids = [i.strip() for i in query.get("sequence_ids", "").split(",") if i.strip()]
        if not ids or len(ids) > 500:
            raise BadRequest("sequence_ids takes 1 to 500 ids.")
        found = [{"sequence_id": i, "contact_id": self.view.contact_ids[int(i)]} for i in ids
                 if i.isdigit() and int(i) in self.view.contact_ids]
        return 200, {"xrefs": found}

    # ---- tracking -----------------------------------------------------------------------------------------
    def tracking(self, query: dict[str, str], activity_id: str, report: str, *, pairs: list[tuple[str, str]]) -> Reply:
        activity = self._activity(activity_id)
        if activity is None or report not in V3_REPORTS or activity.role == "permalink":
            return NOT_FOUND
        keep: dict[str, int] = {}
        url_id = None
        codes = None
        if "next" in query:
            state = decode_token(query["next"])
            url_id = str(state["url"]) if "url" in state else None
            if "codes" in state:
                codes = frozenset(c for k, c in enumerate(V3_BOUNCE_CODES) if state["codes"] >> k & 1)
        else:
            if report == "clicks" and query.get("url_id"):
                if not query["url_id"].isdigit():
                    raise BadRequest("url_id must be a number.")
                url_id = query["url_id"]
            if report == "bounces":
                asked = [v for k, v in pairs if k == "bounce_code"]
                if asked:
                    if any(c not in V3_BOUNCE_CODES for c in asked):
                        raise BadRequest(f"bounce_code must be one of {', '.join(V3_BOUNCE_CODES)}.")
                    codes = frozenset(asked)
        if url_id is not None:
            keep["url"] = int(url_id)
        if codes is not None:
            keep["codes"] = sum(1 << k for k, c in enumerate(V3_BOUNCE_CODES) if c in codes)
        path = f"/v3/reports/email_reports/{activity_id}/tracking/{report}"
        return self._page(path, query, "tracking_activities",
                          lambda a, b: self.view.records(activity, report, a, b, url_id=url_id, bounce_codes=codes),
                          500, 500, keep)

    def links(self, query: dict[str, str], activity_id: str, *, pairs: Any) -> Reply:
        activity = self._activity(activity_id)
        if activity is None or activity.role == "permalink":
            return NOT_FOUND
        no_clicks = query.get("no_clicks", "false").lower() == "true"
        return 200, {"campaign_activity_id": activity.id, "link_click_counts": self.view.links(activity, no_clicks)}

    # ---- summaries ---------------------------------------------------------------------------------------------
    def _refresh_time(self) -> str:
        from airflow_provider_cc.emulator.data import ms_to_text

        return ms_to_text(self.view.dataset.end_ms)

    def activity_stats(self, query: dict[str, str], ids: str, *, pairs: Any) -> Reply:
        wanted = ids.split(",")
        if not 1 <= len(wanted) <= 10 or any(not re.fullmatch(r"[0-9a-f-]{36}", i) for i in wanted):
            return error(404, "reportingsvc.not_found.invalid_path_param.campaign_activity_ids.",
                         "Invalid campaign activity ids.")
        results, errors = [], []
        for activity_id in wanted:
            activity = self._activity(activity_id)
            if activity is None or activity.role == "permalink" or not self.view.sent(activity.source):
                errors.append({"error_key": "reportingsvc.not_found.campaign_activity",
                               "error_message": f"No stats for campaign activity {activity_id}."})
                continue
            stats = self.view.activity_stats(activity)
            results.append({"campaign_id": activity.campaign.id, "campaign_activity_id": activity.id,
                            "stats": _dotted(stats) if self.options.dotted_stats else stats,
                            "last_refresh_time": self._refresh_time()})
        return 200, {"results": results, "errors": errors}

    def campaign_stats(self, query: dict[str, str], ids: str, *, pairs: Any) -> Reply:
        wanted = ids.split(",")
        campaigns = [self.view.campaigns.get(i) for i in wanted]
        if not 1 <= len(wanted) <= 150 or any(c is None for c in campaigns):
            return error(404, "reportingsvc.not_found.invalid_path_param.campaign_ids.", "Invalid campaign ids.")
        results = []
        for campaign in campaigns:
            assert campaign is not None
            stats = self.view.campaign_stats(campaign)
            sends = max(stats.get("em_sends", 0), 1)
            percents = {name: round(100.0 * stats.get(key, 0) / sends, 1) for name, key in (
                ("bounce", "em_bounces"), ("click", "em_clicks"), ("did_not_open", "em_not_opened"),
                ("open", "em_opens"), ("unsubscribe", "em_optouts"))}
            results.append({"campaign_id": campaign.id, "stats": stats, "percents": percents,
                            "last_refresh_time": self._refresh_time()})
        return 200, {"results": results, "errors": []}

    def _summary(self, campaign: V3Campaign) -> dict[str, Any]:
        stats = self.view.campaign_stats(campaign)
        counts = {"sends": stats["em_sends"], "opens": stats["em_opens"], "clicks": stats["em_clicks"],
                  "forwards": stats["em_forwards"], "optouts": stats["em_optouts"], "abuse": 0,
                  "bounces": stats["em_bounces"], "not_opened": stats["em_not_opened"]}
        _, last = self.view.times(campaign)
        if self.options.string_counts:
            counts = {k: str(v) for k, v in counts.items()}  # type: ignore[misc]
        return {"campaign_id": campaign.id, "campaign_type": "NEWSLETTER", "last_sent_date": last,
                "unique_counts": counts}

    def summaries(self, query: dict[str, str], *, pairs: Any) -> Reply:
        sent = [c for c in self.view.campaigns.values() if self.view.sent(c.primary)]
        sent.sort(key=lambda c: (self.view.times(c)[1], c.id), reverse=True)

        def fetch(a: int, b: int) -> tuple[int, list]:
            return len(sent), [self._summary(c) for c in sent[a:b]]

        status, body = self._page("/v3/reports/summary_reports/email_campaign_summaries", query,
                                  "bulk_email_campaign_summaries", fetch, 50, 500)
        records = body["bulk_email_campaign_summaries"]
        sends = max(sum(int(r["unique_counts"]["sends"]) for r in records), 1)
        percents = {name: round(100.0 * sum(int(r["unique_counts"][key]) for r in records) / sends, 1)
                    for name, key in (("click", "clicks"), ("open", "opens"), ("did_not_open", "not_opened"),
                                      ("bounce", "bounces"), ("unsubscribe", "optouts"))}
        body["aggregate_percents"] = [percents] if self.options.string_counts else percents
        return status, body

    # ---- contacts ------------------------------------------------------------------------------------------
    def contact_activity(self, query: dict[str, str], contact_id: str, *, pairs: list[tuple[str, str]]) -> Reply:
        number = self.view.contact_numbers.get(contact_id)
        if number is None:
            return NOT_FOUND
        if "next" in query:
            mask = decode_token(query["next"]).get("types", 0)
        else:
            listed = [t for t in query.get("tracking_activities_list", "").split(",") if t]
            repeated = [v for k, v in pairs if k == "tracking_activity_type"]
            if bool(listed) == bool(repeated):
                raise BadRequest("give tracking_activities_list or tracking_activity_type (one of them).")
            types = listed or repeated
            known = [r.activity_type for r in V3_REPORTS.values()]
            if any(t not in known for t in types):
                raise BadRequest("unknown tracking activity type.")
            mask = sum(1 << k for k, t in enumerate(known) if t in types)
        known = [r.activity_type for r in V3_REPORTS.values()]
        wanted = {t for k, t in enumerate(known) if mask >> k & 1}
        found = []
        for stamp, view, _p in self.view.dataset.contact_activity(number, None, None):
            activity = self.view.by_v2.get(view.campaign.id)
            spec = next(r for r in V3_REPORTS.values() if r.name == view.report.name and not r.snapshot)
            if activity is None or spec.activity_type not in wanted:
                continue
            from airflow_provider_cc.emulator.data import ms_to_text

            record = {"contact_id": contact_id, "campaign_activity_id": activity.id,
                      "created_time": ms_to_text(stamp), "tracking_activity_type": spec.activity_type}
            if query.get("include_campaign_activity_names", "true").lower() != "false":
                record["campaign_activity_name"] = f"Campaign {activity.campaign.primary.index + 1}"
            found.append(record)
        path = f"/v3/reports/contact_reports/{contact_id}/activity_details"
        return self._page(path, query, "tracking_activities", lambda a, b: (len(found), found[a:b]), 100, 100,
                          {"types": mask})

    def contact_summary(self, query: dict[str, str], contact_id: str, *, pairs: Any) -> Reply:
        number = self.view.contact_numbers.get(contact_id)
        if number is None:
            return NOT_FOUND
        try:
            start, end = text_to_ms(query["start"]), text_to_ms(query["end"])
        except (KeyError, ValueError):
            raise BadRequest("start and end (ISO-8601) are required.") from None
        from airflow_provider_cc.emulator.data import ms_to_text
        from airflow_provider_cc.reports import REPORTS

        rows: list[dict[str, Any]] = []
        for activity in self.view.activities.values():
            source = activity.source
            if source is None or not self.view.sent(source) or not start <= source.run_ms <= end:
                continue
            counts = {f"em_{key}": self.view.dataset.contact_view(source, REPORTS[v2], number).size
                      for key, v2 in (("sends", "sends"), ("opens", "opens"), ("clicks", "clicks"),
                                      ("forwards", "forwards"), ("bounces", "bounces"),
                                      ("unsubscribes", "unsubscribes"))}
            if any(counts.values()):
                rows.append({"campaign_activity_id": activity.id, "start_on": ms_to_text(source.run_ms), **counts})
        rows.sort(key=lambda r: str(r["start_on"]), reverse=True)
        return 200, {"contact_id": contact_id, "campaign_activities": rows[:200]}


def _basic(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password
