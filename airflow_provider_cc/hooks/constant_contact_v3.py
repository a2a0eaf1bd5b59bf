"""The Constant Contact v3 hook: OAuth2 tokens, the v3 transport and the endpoint methods.

The methods return what the v2 hook's return: a :class:`RecordStream` of raw records (through the one paging
loop) for every paged collection, a dict for one object. v3 tracking reports take no time filter and list
the newest activity first; a stream reads until the API's last page (windows on v3 belong to the reports
built on this hook).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from airflow_provider_cc import __version__
from airflow_provider_cc._compat import BaseHook
from airflow_provider_cc.auth.tokens import TokenManager, manager_for
from airflow_provider_cc.exceptions import ConstantContactError, ConstantContactInputError
from airflow_provider_cc.get_provider_info import (
    V3_CONN_FIELDS,
    V3_CONN_TYPE,
    V3_DEFAULT_CONN_ID,
    V3_UI_FIELD_BEHAVIOUR,
)
from airflow_provider_cc.hooks.base import TransportHook
from airflow_provider_cc.hooks.campaigns import (
    UUID_PATTERN,
    check_send_history,
    check_summary_items,
    check_v3_activity,
    check_v3_campaign,
    check_v3_campaign_items,
    check_v3_links,
)
from airflow_provider_cc.hooks.connection import form_widgets, hook_settings, message_for_test
from airflow_provider_cc.hooks.connection_v3 import V3Settings
from airflow_provider_cc.hooks.constant_contact import check_limit, numeric_id
from airflow_provider_cc.hooks.paging import RecordStream, v3_page_parts
from airflow_provider_cc.hooks.summaries import ContactActivityRows, check_v3_stats
from airflow_provider_cc.hooks.transport_v3 import V3Transport
from airflow_provider_cc.hooks.xrefs import CAMPAIGN_XREF_ENDPOINT, CONTACT_XREF_ENDPOINT, XrefEndpoint, check_xrefs
from airflow_provider_cc.lineage import report_hook_input
from airflow_provider_cc.reports import V3_BOUNCE_CODES, V3_CONTACT_ACTIVITY, v3_report
from airflow_provider_cc.window import format_api, to_utc

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_cc.auth.store import TokenStore
    from airflow_provider_cc.window import Window

MAX_TRACKING_LIMIT = 500
MAX_CAMPAIGN_LIMIT = 500
MAX_SUMMARY_LIMIT = 500
MAX_CONTACT_LIMIT = 100
MAX_ACTIVITY_STATS_IDS = 10
MAX_CAMPAIGN_STATS_IDS = 150
MAX_XREF_IDS = 50
MAX_CONTACT_XREF_IDS = 500
CONTACT_ACTIVITY_TYPES = ("em_sends", "em_opens", "em_clicks", "em_bounces", "em_optouts", "em_forwards")
_COUNT_KEYS = ("unique_counts", "stats")


def uuid_id(value: Any, name: str) -> str:
    """Check that ``value`` is a v3 id (a UUID) and return it in lower case."""
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if not UUID_PATTERN.fullmatch(text):
        raise ConstantContactInputError(f"{name}={value!r:.80} is not a v3 id (a UUID such as "
                                        "'e4cf53f0-e37f-11e8-9f32-f2801f1b9fd1')")
    return text


def _ids(values: Any, name: str, maximum: int) -> list[str]:
    ids = [uuid_id(v, name) for v in ([values] if isinstance(values, str) else list(values))]
    if not 1 <= len(ids) <= maximum:
        raise ConstantContactInputError(f"{name}: give 1 to {maximum} ids, not {len(ids)}")
    return ids


def _count(value: Any) -> Any:
    """A count as an int: the summary guide shows strings ("3129") where the spec says integers."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def normalise_counts(obj: dict[str, Any]) -> dict[str, Any]:
    """Stats and summary objects as the spec types them: underscore keys (the activity-stats guide shows
    ``em_opens.all.mobile``), integer counts, ``aggregate_percents`` an object (the guide shows an array)."""
    out = dict(obj)
    for key in _COUNT_KEYS:
        if isinstance(out.get(key), dict):
            out[key] = {str(k).replace(".", "_"): _count(v) for k, v in out[key].items()}
    percents = out.get("aggregate_percents")
    if isinstance(percents, list) and len(percents) == 1 and isinstance(percents[0], dict):
        out["aggregate_percents"] = percents[0]
    return out


def _with_campaign(campaign_id: str, records: list[dict[str, Any]]) -> None:
    """Give each record of an activity's page the activity's campaign (in place)."""
    for record in records:
        record["campaign_id"] = campaign_id


def _summary_page(body: Any, label: str) -> tuple[list[dict], str | None]:
    """A bulk-summary page, its counts as integers whichever way the server typed them."""
    records, href = v3_page_parts(body, label, items="bulk_email_campaign_summaries")
    return [normalise_counts(r) for r in records], href


class ConstantContactV3Hook(TransportHook, BaseHook):
    """Talks to the Constant Contact v3 API: OAuth2 tokens that never break, throttling per application,
    retries, paging.

    Nothing is read or sent until the first call: the hook is safe to build at DAG-parse time.

    :param constant_contact_conn_id: the ``constant_contact_v3`` connection to use.
    :param timeout: seconds per request; overrides the connection's ``timeout`` extra.
    :param max_retries: retries per request; overrides the connection's ``max_retries`` extra.
    :param requests_per_second: client-side ceiling per application; overrides the connection's extra.
    :param settings: settings already read from the connection, whose secrets the caller has masked.
    :param token_store: a token store to use instead of the one the connection names (tests, tools).
    """

    conn_name_attr = "constant_contact_conn_id"
    default_conn_name = V3_DEFAULT_CONN_ID
    conn_type = V3_CONN_TYPE
    hook_name = "Constant Contact (v3, OAuth2)"
    api_version = "v3"

    def __init__(self, constant_contact_conn_id: str = default_conn_name, *, timeout: float | None = None,
                 max_retries: int | None = None, requests_per_second: float | None = None,
                 settings: V3Settings | None = None, token_store: TokenStore | None = None) -> None:
        super().__init__()
        self.constant_contact_conn_id = constant_contact_conn_id
        self._overrides = {"timeout": timeout, "max_retries": max_retries,
                           "requests_per_second": requests_per_second}
        self._settings = settings
        self._token_store = token_store

    # ---- connection --------------------------------------------------------------------------------
    @cached_property
    def settings(self) -> V3Settings:
        """The connection's checked settings (fetched once; secrets masked as they are read)."""
        return hook_settings(self._settings, lambda: V3Settings.from_connection(
            self.get_connection(self.constant_contact_conn_id)), self._overrides)

    @cached_property
    def tokens(self) -> TokenManager:
        """The connection's token manager, shared by every hook of the process on the same connection."""
        return manager_for(self.settings, self._token_store)

    @cached_property
    def transport(self) -> V3Transport:
        """The keep-alive transport, built on first use."""
        return V3Transport(self.settings, self.tokens, user_agent=f"airflow-provider-constant-contact/{__version__}")

    def _stream(self, path: str, params: dict[str, Any], *, label: str, items: str, **options: Any) -> RecordStream:
        url = self.transport.resolve(path, what=label)
        report_hook_input(self, url)
        return RecordStream(self.transport, url, params, label=label, page=partial(v3_page_parts, items=items),
                            **options)

    # ---- campaigns and activities ------------------------------------------------------------------------
    def iter_campaigns(self, *, limit: int = 50, updated_after: Any = None, updated_before: Any = None) -> RecordStream:
        """Stream every email campaign (deleted ones included, as v3 lists them), most recently updated first.

        :param limit: page size, 1-500.
        :param updated_after: only campaigns updated after this time (``after_date``).
        :param updated_before: only campaigns updated before this time (``before_date``).
        """
        params: dict[str, Any] = {"limit": check_limit(limit, MAX_CAMPAIGN_LIMIT)}
        for name, value in (("after_date", updated_after), ("before_date", updated_before)):
            moment = to_utc(value, name)
            if moment is not None:
                params[name] = format_api(moment)
        return self._stream("/v3/emails", params, label="campaigns", items="campaigns",
                            check_items=check_v3_campaign_items)

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        """One campaign with its ``campaign_activities`` (``campaign_activity_id`` and ``role``), checked and
        normalised (:func:`~airflow_provider_cc.hooks.campaigns.check_v3_campaign`): a malformed answer is
        retried, then fails with ``ConstantContactResponseError`` naming the campaign and the field.

        :param campaign_id: the campaign's UUID.
        """
        cid = uuid_id(campaign_id, "campaign_id")
        return self._get(f"/v3/emails/{cid}", None, f"campaign {cid}",
                         check=partial(check_v3_campaign, campaign_id=cid))

    def get_campaign_activity(self, campaign_activity_id: str) -> dict[str, Any]:
        """One campaign activity (status, role, subject, lists...), checked like a campaign.

        :param campaign_activity_id: the activity's UUID.
        """
        aid = uuid_id(campaign_activity_id, "campaign_activity_id")
        return self._get(f"/v3/emails/activities/{aid}", None, f"campaign activity {aid}",
                         check=partial(check_v3_activity, campaign_activity_id=aid))

    def get_send_history(self, campaign_activity_id: str, *, sent: bool = False) -> list[dict[str, Any]]:
        """When an activity was sent: its sends in order (``run_date``, ``count``, ``send_status``); empty if never.

        :param campaign_activity_id: the activity's UUID.
        :param sent: the activity is known to have been sent (a sent campaign's primary email): an answer
            without a completed send is malformed (retried, then a ``ConstantContactResponseError``).
        """
        aid = uuid_id(campaign_activity_id, "campaign_activity_id")
        return self._get(f"/v3/emails/activities/{aid}/send_history", None, f"campaign activity {aid} send history",
                         check=partial(check_send_history, sent=sent))

    def get_campaign_xrefs(self, v2_campaign_ids: Any) -> list[dict[str, Any]]:
        """v3 ids of v2 campaigns (``v2_email_campaign_id``, ``campaign_id``, ``campaign_activity_id``), 50 per
        request. Constant Contact asks that this be used sparingly (once, for a migration).

        Only the ids the API knows are returned; an id is taken as unknown only when two answers left it out
        (the ids one answer did not map are asked once more). Answers are checked (see :mod:`.xrefs`).

        :param v2_campaign_ids: v2 campaign ids (numbers or digit strings).
        """
        return self._xrefs(CAMPAIGN_XREF_ENDPOINT, v2_campaign_ids, "v2_campaign_id", MAX_XREF_IDS)

    def get_contact_xrefs(self, v2_contact_ids: Any) -> list[dict[str, Any]]:
        """v3 ids of v2 contacts (``sequence_id``: the v2 contact id, ``contact_id``: its UUID), 500 per request.
        Like the campaign cross-reference, meant for a one-off migration, and answered the same way.

        :param v2_contact_ids: v2 contact ids (numbers or digit strings).
        """
        return self._xrefs(CONTACT_XREF_ENDPOINT, v2_contact_ids, "v2_contact_id", MAX_CONTACT_XREF_IDS)

    def _xrefs(self, endpoint: XrefEndpoint, values: Any, name: str, per_call: int) -> list[dict[str, Any]]:
        """One cross-reference endpoint, ``per_call`` ids a request, every id checked before the first; the ids
        the answers did not map are asked once more before they count as unknown."""
        if isinstance(values, (str, int)):
            values = [values]
        if not isinstance(values, Iterable) or isinstance(values, (bytes, dict)):
            raise ConstantContactInputError(f"{name}s must be an id or a list of ids, not {type(values).__name__}")
        ids = list(dict.fromkeys(numeric_id(v, name) for v in values))
        mapped: dict[str, tuple[str, ...]] = {}
        for confirming in (False, True):
            left = [i for i in ids if i not in mapped]
            if confirming and left:
                self.log.info("%s: %d of %d v2 ids were not mapped by the answers; asking once more before taking "
                              "them as unknown", endpoint.path, len(left), len(ids))
            for start in range(0, len(left), per_call):
                chunk = left[start:start + per_call]
                answer = self._get(endpoint.path, {endpoint.param: ",".join(chunk)},
                                   endpoint.label(len(chunk), confirming),
                                   partial(check_xrefs, endpoint=endpoint, asked=frozenset(chunk)))
                mapped.update((v2, v3) for v2, v3 in answer.items() if v3 is not None)
        return [{endpoint.v2_field: v2, **dict(zip(endpoint.v3_fields, mapped[v2], strict=True))}
                for v2 in ids if v2 in mapped]

    # ---- tracking ------------------------------------------------------------------------------------------
    def iter_activity_tracking(self, campaign_activity_id: str, report: str, *, url_id: int | str | None = None,
                               bounce_codes: Any = None, limit: int = MAX_TRACKING_LIMIT, window: Window | None = None,
                               stop_before: datetime | None = None, campaign_id: str | None = None) -> RecordStream:
        """Stream one activity's tracking report, newest first. The API takes no time filter: without
        ``stop_before`` the stream reads every page to the last.

        :param campaign_activity_id: the ``primary_email`` or ``resend`` activity's UUID.
        :param report: ``sends``, ``opens``, ``unique_opens``, ``clicks``, ``forwards``, ``optouts``,
            ``bounces`` or ``didnotopens``.
        :param url_id: with ``clicks``, only the clicks of this link.
        :param bounce_codes: with ``bounces``, only these codes (``B D F S V X Z``).
        :param limit: page size, 1-500.
        :param window: keep only the records of this window.
        :param stop_before: end the stream after a newest-first page that closes with two records in a row older
            than this (see :mod:`.paging`).
        :param campaign_id: the activity's campaign, added to every record (the API sends only the activity).
        """
        aid = uuid_id(campaign_activity_id, "campaign_activity_id")
        spec = v3_report(report)
        params: dict[str, Any] = {"limit": check_limit(limit, MAX_TRACKING_LIMIT)}
        if url_id is not None:
            if spec.name != "clicks":
                raise ConstantContactInputError(f"url_id only applies to the clicks report, not {report!r}")
            params["url_id"] = numeric_id(url_id, "url_id")
        if bounce_codes is not None:
            if spec.name != "bounces":
                raise ConstantContactInputError(f"bounce_codes only apply to the bounces report, not {report!r}")
            codes = [bounce_codes] if isinstance(bounce_codes, str) else list(bounce_codes)
            if not codes or any(c not in V3_BOUNCE_CODES for c in codes):
                raise ConstantContactInputError(f"bounce_codes={bounce_codes!r}: use {', '.join(V3_BOUNCE_CODES)}")
            params["bounce_code"] = codes  # repeated, as the API's collectionFormat multi
        label = f"activity {aid} {spec.name}" + (f" link {url_id}" if url_id is not None else "")
        add = None if campaign_id is None else partial(_with_campaign, uuid_id(campaign_id, "campaign_id"))
        return self._stream(f"/v3/reports/email_reports/{aid}/tracking/{spec.segment}", params, label=label,
                            items="tracking_activities", window=window, report=spec, stop_before=stop_before,
                            check_items=add)

    def get_activity_links(self, campaign_activity_id: str, *, no_clicks: bool = False) -> dict[str, Any]:
        """An activity's links and their unique clicks (``link_click_counts``).

        :param campaign_activity_id: the activity's UUID.
        :param no_clicks: include links nobody clicked.
        """
        aid = uuid_id(campaign_activity_id, "campaign_activity_id")
        params = {"no_clicks": "true"} if no_clicks else None
        return self._get(f"/v3/reports/email_reports/{aid}/links", params, f"activity {aid} links",
                         check=check_v3_links)

    # ---- summaries --------------------------------------------------------------------------------------------
    def get_activity_stats(self, campaign_activity_ids: Any) -> dict[str, Any]:
        """Counters of 1-10 activities (``results`` with ``stats``, and ``errors``), keys with underscores.

        :param campaign_activity_ids: activity UUIDs.
        """
        ids = _ids(campaign_activity_ids, "campaign_activity_ids", MAX_ACTIVITY_STATS_IDS)
        body = self._get(f"/v3/reports/stats/email_campaign_activities/{','.join(ids)}", None,
                         f"activity stats ({len(ids)} activities)",
                         check=lambda b: check_v3_stats(b, "campaign_activity_id"))
        return {**body, "results": [normalise_counts(r) for r in body["results"]]}

    def get_campaign_stats(self, campaign_ids: Any) -> dict[str, Any]:
        """Counters and percents of campaigns (``results``, ``errors``); one unknown id fails them all (404).

        :param campaign_ids: campaign UUIDs (up to 150).
        """
        ids = _ids(campaign_ids, "campaign_ids", MAX_CAMPAIGN_STATS_IDS)
        body = self._get(f"/v3/reports/stats/email_campaigns/{','.join(ids)}", None,
                         f"campaign stats ({len(ids)} campaigns)",
                         check=lambda b: check_v3_stats(b, "campaign_id"))
        return {**body, "results": [normalise_counts(r) for r in body["results"]]}

    def iter_campaign_summaries(self, *, limit: int = MAX_SUMMARY_LIMIT) -> RecordStream:
        """Stream every sent campaign's summary (``last_sent_date``, ``unique_counts``), last sent first, up to
        500 a page: the cheapest way to see an account's campaigns and their activity.

        :param limit: page size, 1-500.
        """
        params = {"limit": check_limit(limit, MAX_SUMMARY_LIMIT)}
        path = "/v3/reports/summary_reports/email_campaign_summaries"
        url = self.transport.resolve(path, what="campaign summaries")
        report_hook_input(self, url)
        return RecordStream(self.transport, url, params, label="campaign summaries", page=_summary_page,
                            check_items=check_summary_items)

    # ---- contacts ------------------------------------------------------------------------------------------
    def iter_contact_activity(self, contact_id: str, *, activity_types: Any = CONTACT_ACTIVITY_TYPES,
                              include_campaign_activity_names: bool = False,
                              limit: int = MAX_CONTACT_LIMIT, window: Window | None = None,
                              stop_before: datetime | None = None) -> RecordStream:
        """Stream one contact's activity (which activities, when), newest first.

        :param contact_id: the contact's UUID.
        :param activity_types: ``em_sends``, ``em_opens``, ``em_clicks``, ``em_bounces``, ``em_optouts``,
            ``em_forwards`` (default: all six).
        :param include_campaign_activity_names: also the activities' names (costs the API more).
        :param limit: page size, 1-100.
        :param window: keep only the records of this window.
        :param stop_before: end the stream after a newest-first page that closes with two records in a row older
            than this (see :mod:`.paging`).
        """
        cid = uuid_id(contact_id, "contact_id")
        types = [activity_types] if isinstance(activity_types, str) else list(activity_types)
        if not types or any(t not in CONTACT_ACTIVITY_TYPES for t in types):
            raise ConstantContactInputError(
                f"activity_types={activity_types!r}: choose from {', '.join(CONTACT_ACTIVITY_TYPES)}")
        params = {"tracking_activities_list": ",".join(types), "limit": check_limit(limit, MAX_CONTACT_LIMIT),
                  "include_campaign_activity_names": "true" if include_campaign_activity_names else "false"}
        return self._stream(f"/v3/reports/contact_reports/{cid}/activity_details", params,
                            label=f"contact {cid} activity", items="tracking_activities", window=window,
                            report=V3_CONTACT_ACTIVITY, stop_before=stop_before)

    def iter_contact_activity_summary(self, contact_id: str, start: Any, end: Any) -> RecordStream:
        """Stream one contact's counters per campaign activity within ``[start, end]``.

        :param contact_id: the contact's UUID.
        :param start: the range's start.
        :param end: the range's end.
        """
        cid = uuid_id(contact_id, "contact_id")
        since, until = to_utc(start, "start"), to_utc(end, "end")
        if since is None or until is None or since > until:
            raise ConstantContactInputError("start and end are both needed, start not after end")
        params = {"start": format_api(since), "end": format_api(until)}
        return self._stream(f"/v3/reports/contact_reports/{cid}/activity_summary", params,
                            label=f"contact {cid} activity summary", items="campaign_activities",
                            check_items=ContactActivityRows())

    # ---- Airflow UI ------------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """One cheap request (a token, if none is cached, and one campaign); never raises. A failure's message
        names no connection id: Airflow's Test button tests a copy of the form under a random id."""
        try:
            self._get("/v3/emails", {"limit": 1}, "campaign list")
        except (ConstantContactError, ValueError) as exc:  # named without Airflow's made-up id for the copy it tests
            return False, message_for_test(exc, self.constant_contact_conn_id)
        return True, "Connection to Constant Contact (v3) succeeded."

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the Airflow 2 connection form (the table Airflow 3.2+ reads from the provider info)."""
        return form_widgets(V3_CONN_FIELDS)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder fields of the Airflow 2 connection form."""
        return {key.replace("-", "_"): value for key, value in V3_UI_FIELD_BEHAVIOUR.items()}
