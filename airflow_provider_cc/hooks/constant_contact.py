"""The Constant Contact v2 hook: the endpoint methods, on top of the transport and the paging loop."""

from __future__ import annotations

from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from airflow_provider_cc import __version__
from airflow_provider_cc._compat import BaseHook
from airflow_provider_cc.exceptions import ConstantContactError, ConstantContactInputError
from airflow_provider_cc.get_provider_info import CONN_FIELDS, DEFAULT_CONN_ID, UI_FIELD_BEHAVIOUR
from airflow_provider_cc.hooks.base import TransportHook
from airflow_provider_cc.hooks.campaigns import canonical_id, check_campaign, check_campaign_items
from airflow_provider_cc.hooks.connection import ConnectionSettings, form_widgets, hook_settings, message_for_test
from airflow_provider_cc.hooks.paging import RecordStream
from airflow_provider_cc.hooks.summaries import (
    check_v2_by_campaign,
    check_v2_campaign_summary,
    check_v2_contact_summary,
)
from airflow_provider_cc.hooks.transport import Transport
from airflow_provider_cc.lineage import report_hook_input
from airflow_provider_cc.reports import (
    CAMPAIGN_STATUSES,
    Report,
    campaign_report,
    contact_report,
)
from airflow_provider_cc.window import Window, format_api, to_utc

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_TRACKING_LIMIT = 500
MAX_CAMPAIGN_LIMIT = 50
# Campaigns in these states have (or are getting) tracking data.
TRACKED_STATUSES = ("SENT", "RUNNING")


def numeric_id(value: Any, name: str) -> str:
    """Check that ``value`` is a numeric id (int or digit string) and return its canonical text (no white
    space, no leading zeros), the form every folder and request uses."""
    text = canonical_id(value)
    if text is None:
        raise ConstantContactInputError(f"{name}={value!r} is not a numeric id")
    return text


def check_limit(limit: Any, maximum: int) -> int:
    """Check a page size against the API's bounds."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise ConstantContactInputError(f"limit={limit!r} is outside 1-{maximum}")
    return limit


class ConstantContactHook(TransportHook, BaseHook):
    """Talks to the Constant Contact v2 API: api_key and Bearer token auth, throttling, retries, paging.

    Nothing is read or sent until the first call: the hook is safe to build at DAG-parse time.

    :param constant_contact_conn_id: the ``constant_contact`` connection to use.
    :param timeout: seconds per request; overrides the connection's ``timeout`` extra.
    :param max_retries: retries per request; overrides the connection's ``max_retries`` extra.
    :param requests_per_second: client-side ceiling; overrides the connection's extra (default 4).
    :param settings: settings already read from the connection, whose secrets the caller has masked
        (triggers fetch and mask them the async way).
    """

    conn_name_attr = "constant_contact_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "constant_contact"
    hook_name = "Constant Contact"

    def __init__(self, constant_contact_conn_id: str = default_conn_name, *, timeout: float | None = None,
                 max_retries: int | None = None, requests_per_second: float | None = None,
                 settings: ConnectionSettings | None = None) -> None:
        super().__init__()
        self.constant_contact_conn_id = constant_contact_conn_id
        self._overrides = {"timeout": timeout, "max_retries": max_retries,
                           "requests_per_second": requests_per_second}
        self._settings = settings

    # ---- connection --------------------------------------------------------------------------------
    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection's checked settings (fetched once)."""
        return hook_settings(self._settings, lambda: ConnectionSettings.from_connection(
            self.get_connection(self.constant_contact_conn_id)), self._overrides)

    @cached_property
    def transport(self) -> Transport:
        """The keep-alive transport, built on first use."""
        return Transport(self.settings, user_agent=f"airflow-provider-constant-contact/{__version__}")

    def _stream(self, path: str, params: dict[str, Any], *, label: str, window: Window | None,
                report: Report | None, check_items: Callable[[list[dict]], None] | None = None) -> RecordStream:
        url = self.transport.resolve(path, what=label)
        report_hook_input(self, url)
        return RecordStream(self.transport, url, params, label=label, window=window, report=report,
                            check_items=check_items)

    # ---- tracking ------------------------------------------------------------------------------------
    def iter_campaign_tracking(self, campaign_id: int | str, report: str, *, link_id: int | str | None = None,
                               created_since: Any = None, created_before: Any = None,
                               limit: int = MAX_TRACKING_LIMIT, on_unreadable_date: str = "fail") -> RecordStream:
        """Stream one campaign tracking report, newest first, within ``[created_since, created_before)``.

        :param campaign_id: numeric campaign id.
        :param report: ``sends``, ``opens``, ``clicks``, ``forwards``, ``unsubscribes`` or ``bounces``.
        :param link_id: with ``clicks``, only the clicks of this link (``url_uid`` of the campaign).
        :param created_since: inclusive lower bound, sent to the API.
        :param created_before: exclusive upper bound, applied to each record's own date.
        :param limit: page size, 1-500.
        :param on_unreadable_date: ``fail`` (default) or ``skip`` records whose date cannot be read.
        """
        cid = numeric_id(campaign_id, "campaign_id")
        spec = campaign_report(report)
        window = Window.of(created_since, created_before, on_unreadable_date=on_unreadable_date)
        path = f"/v2/emailmarketing/campaigns/{cid}/tracking/{spec.name}" + self._link_suffix(spec.name, link_id)
        label = f"campaign {cid} {spec.name}" + (f" link {link_id}" if link_id is not None else "")
        return self._stream(path, self._tracking_params(window, limit), label=label, window=window, report=spec)

    def iter_contact_tracking(self, contact_id: int | str, report: str = "all", *,
                              link_id: int | str | None = None, created_since: Any = None,
                              created_before: Any = None, limit: int = MAX_TRACKING_LIMIT,
                              on_unreadable_date: str = "fail") -> RecordStream:
        """Stream one contact's activity (``all`` types, or one report), newest first.

        :param contact_id: numeric contact id.
        :param report: ``all`` or one activity report name.
        :param link_id: with ``clicks``, only the clicks of this link.
        :param created_since: inclusive lower bound, sent to the API.
        :param created_before: exclusive upper bound, applied to each record's own date.
        :param limit: page size, 1-500.
        :param on_unreadable_date: ``fail`` (default) or ``skip`` records whose date cannot be read.
        """
        cid = numeric_id(contact_id, "contact_id")
        spec = contact_report(report)
        window = Window.of(created_since, created_before, on_unreadable_date=on_unreadable_date)
        suffix = "" if spec is None else f"/{spec.name}" + self._link_suffix(spec.name, link_id)
        label = f"contact {cid} {report}"
        return self._stream(f"/v2/contacts/{cid}/tracking{suffix}", self._tracking_params(window, limit),
                            label=label, window=window, report=spec)

    @staticmethod
    def _link_suffix(report: str, link_id: Any) -> str:
        if link_id is None:
            return ""
        if report != "clicks":
            raise ConstantContactInputError(f"link_id only applies to the clicks report, not {report!r}")
        return "/" + numeric_id(link_id, "link_id")

    @staticmethod
    def _tracking_params(window: Window, limit: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": check_limit(limit, MAX_TRACKING_LIMIT)}
        if window.since_param is not None:
            params["created_since"] = window.since_param
        return params

    # ---- summaries -------------------------------------------------------------------------------------
    def get_campaign_summary(self, campaign_id: int | str, *, update_summary: bool = False) -> dict[str, Any]:
        """The campaign's tracking summary counters.

        :param campaign_id: numeric campaign id.
        :param update_summary: ask for current figures instead of the last scheduled update.
        """
        cid = numeric_id(campaign_id, "campaign_id")
        params = {"updateSummary": "true"} if update_summary else None
        return self._get(f"/v2/emailmarketing/campaigns/{cid}/tracking/reports/summary", params,
                         f"campaign {cid}", check=check_v2_campaign_summary)

    def get_contact_summary(self, contact_id: int | str) -> dict[str, Any]:
        """The contact's tracking summary counters.

        :param contact_id: numeric contact id.
        """
        cid = numeric_id(contact_id, "contact_id")
        return self._get(f"/v2/contacts/{cid}/tracking/reports/summary", None, f"contact {cid}",
                         check=partial(check_v2_contact_summary, contact_id=cid))

    def get_contact_summary_by_campaign(self, contact_id: int | str) -> list[dict[str, Any]]:
        """The contact's counters per campaign (the API leaves unsubscribes out).

        :param contact_id: numeric contact id.
        """
        cid = numeric_id(contact_id, "contact_id")
        return self._get(f"/v2/contacts/{cid}/tracking/reports/summaryByCampaign", None, f"contact {cid}",
                         check=partial(check_v2_by_campaign, contact_id=cid))

    # ---- campaigns -------------------------------------------------------------------------------------
    def get_campaign(self, campaign_id: int | str, *, update_summary: bool = False) -> dict[str, Any]:
        """One campaign's full object (status, last_run_date, tracking_summary...), checked: an answer without
        a status, with a summary that is not an object or a send time that cannot be true is retried as
        malformed, then fails (:mod:`~airflow_provider_cc.hooks.campaigns`).

        :param campaign_id: numeric campaign id.
        :param update_summary: refresh ``tracking_summary``.
        """
        cid = numeric_id(campaign_id, "campaign_id")
        params = {"updateSummary": "true"} if update_summary else None
        return self._get(f"/v2/emailmarketing/campaigns/{cid}", params, f"campaign {cid}",
                         check=partial(check_campaign, campaign_id=cid))

    def iter_campaigns(self, *, status: str | None = None, modified_since: Any = None,
                       limit: int = MAX_CAMPAIGN_LIMIT) -> RecordStream:
        """Stream campaign summaries (id, name, status, modified_date), each ``id`` in its canonical text; a
        page with an item without a usable id is retried as malformed, then fails.

        :param status: ``ALL``, ``DRAFT``, ``RUNNING``, ``SENT``, ``SCHEDULED`` or ``DELETED``.
        :param modified_since: only campaigns modified on or after this time.
        :param limit: page size, 1-50.
        """
        params: dict[str, Any] = {"limit": check_limit(limit, MAX_CAMPAIGN_LIMIT)}
        if status is not None:
            if str(status).upper() not in CAMPAIGN_STATUSES:
                raise ConstantContactInputError(
                    f"unknown campaign status {status!r}; choose one of {', '.join(CAMPAIGN_STATUSES)}")
            params["status"] = str(status).upper()
        since = to_utc(modified_since, "modified_since")
        if since is not None:
            params["modified_since"] = format_api(since)
        return self._stream("/v2/emailmarketing/campaigns", params, label="campaigns", window=None, report=None,
                            check_items=check_campaign_items)

    # ---- Airflow UI ------------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """One cheap request; never raises. A failure's message names no connection id: Airflow's Test button
        tests a copy of the form under a random id."""
        try:
            self._get("/v2/emailmarketing/campaigns", {"limit": 1}, "campaign list")
        except (ConstantContactError, ValueError) as exc:  # named without Airflow's made-up id for the copy it tests
            return False, message_for_test(exc, self.constant_contact_conn_id)
        return True, "Connection to Constant Contact succeeded."

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the Airflow 2 connection form, built from the same table as Airflow 3.2+'s form
        (``get_provider_info.CONN_FIELDS``), so both list every extra."""
        return form_widgets(CONN_FIELDS)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder fields of the Airflow 2 connection form."""
        return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}
