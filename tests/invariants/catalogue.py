"""The single-fault suite's data: the fault catalogue and the endpoint list, one line per entry.

A new fault is one line in :data:`FAULTS` (its kind must exist in the emulator,
:data:`airflow_provider_cc.emulator.faults.KINDS`); a new endpoint, or a new caller of one, is one line in
:data:`ENDPOINTS`. Every (endpoint, fault) pair whose answers have the part the fault changes is a test.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """One fault of the catalogue.

    :param kind: the emulator's fault kind.
    :param problem: a regex (case-insensitive) an error's message must match to name this problem.
    """

    kind: str
    problem: str


@dataclass(frozen=True)
class Endpoint:
    """One endpoint as one caller uses it.

    :param api: ``v2`` or ``v3`` (the OAuth2 server's endpoints count as v3).
    :param route: the emulator's route template.
    :param scenario: the scenario whose run calls it (:mod:`tests.invariants.scenarios`).
    :param names: a regex (case-insensitive) an error's message must match to name this endpoint.
    :param without: faults that cannot apply to any answer of this endpoint in its scenario, or that turn its
        answer into one a correct server gives for another account (no client can tell them apart); the comment on
        the line says why. Every other fault that fits the route must fire.
    """

    api: str
    route: str
    scenario: str
    names: str
    without: tuple[str, ...] = ()


_SHAPE = r"shape|malformed|expected|not an?\b|missing|holds no|no \w+|null|object|array|list|string|usable|answer"
FAULTS: tuple[Fault, ...] = (
    Fault("body_null", _SHAPE),
    Fault("body_list", _SHAPE),
    Fault("body_object", _SHAPE),
    Fault("body_string", _SHAPE),
    Fault("items_missing", _SHAPE),
    Fault("items_wrong_type", _SHAPE),
    Fault("item_no_id", r"\bid\b|_id|missing|without"),
    Fault("item_bad_id", r"\bid\b|_id|uuid|not a"),
    Fault("item_unknown_enum", r"role|status|type|unknown|value|enum"),
    Fault("item_enum_case", r"role|status|type|unknown|value|enum|case"),
    Fault("item_twice", r"twice|duplicate|repeated|listed|more than once"),
    Fault("record_out_of_order", r"order|older|newer|newest|date"),
    Fault("record_stale", r"order|older|newer|newest|stray|date"),
    Fault("page_repeated", r"repeat|page|order|twice|duplicate|newer"),
    Fault("next_self", r"loop|already read|next"),
    Fault("next_other_host", r"another host|other host"),
    Fault("truncated", r"json|truncated|incomplete|cut|read|malformed|holds no"),
    Fault("status_404", r"not found|404"),
    Fault("status_500", r"server error|500"),
    Fault("status_401", r"401|auth|refused|token|unauthori"),
    Fault("throttled", r"throttl|rate|429|per-second|qps|too many"),
    Fault("quota", r"quota"),
    Fault("drip", r"timeout|time|deadline|slow"),
    Fault("oversized", r"larger|size|max_page_bytes|too large|cap|bytes"),
    Fault("gzip_bomb", r"larger|size|max_page_bytes|too large|cap|bytes|decod"),
    Fault("expires_in_missing", r"expir"),
    Fault("expires_in_negative", r"expir"),
    Fault("expires_in_huge", r"expir"),
    Fault("expires_in_past", r"expir"),
)

_UUID = "[0-9a-f-]{36}"
ENDPOINTS: tuple[Endpoint, ...] = (
    # ---- v2 ----
    Endpoint("v2", "GET /v2/emailmarketing/campaigns", "account_v2", r"campaigns"),
    Endpoint("v2", "GET /v2/emailmarketing/campaigns", "list_v2", r"campaigns",
             without=("page_repeated",)),  # three SENT campaigns: one page
    Endpoint("v2", "GET /v2/emailmarketing/campaigns/{id}", "account_v2", r"campaign \d+"),
    Endpoint("v2", "GET /v2/emailmarketing/campaigns/{id}", "sensor_v2", r"campaign \d+"),
    Endpoint("v2", "GET /v2/emailmarketing/campaigns/{id}", "trigger_v2", r"campaign \d+"),
    Endpoint("v2", "GET /v2/emailmarketing/campaigns", "watch_v2", r"campaigns",
             without=("page_repeated",)),  # three SENT campaigns: one page
    Endpoint("v2", "GET /v2/emailmarketing/campaigns/{id}", "watch_v2", r"campaign \d+"),
    Endpoint("v2", "GET /v2/emailmarketing/campaigns/{id}/tracking/reports/summary", "summary_v2",
             r"campaign \d+"),
    Endpoint("v2", "GET /v2/emailmarketing/campaigns/{id}/tracking/{report}", "tracking_v2", r"campaign \d+ sends"),
    Endpoint("v2", "GET /v2/emailmarketing/campaigns/{id}/tracking/{report}", "account_v2", r"campaign \d+ \w+"),
    Endpoint("v2", "GET /v2/emailmarketing/campaigns/{id}/tracking/{report}/{link_id}", "link_v2",
             r"campaign \d+ clicks link \d+", without=("record_out_of_order",)),  # pages of one record
    Endpoint("v2", "GET /v2/contacts/{id}/tracking", "contact_v2", r"contact \d+"),
    Endpoint("v2", "GET /v2/contacts/{id}/tracking/{report}", "contact_report_v2", r"contact \d+ opens",
             without=("record_out_of_order",)),  # pages of one record
    Endpoint("v2", "GET /v2/contacts/{id}/tracking/reports/summary", "contact_summary_v2", r"contact \d+"),
    Endpoint("v2", "GET /v2/contacts/{id}/tracking/reports/summaryByCampaign", "by_campaign_v2", r"contact \d+",
             without=("body_list",)),  # [] is a correct answer (a contact without activity): nothing tells it apart
    # ---- v3 ----
    Endpoint("v3", "GET /v3/emails", "list_v3", r"campaigns", without=("page_repeated",)),  # one page
    Endpoint("v3", "GET /v3/emails", "account_v3", r"campaigns", without=("page_repeated",)),  # dimensions; one page
    Endpoint("v3", "GET /v3/emails/{id}", "tracking_v3", rf"campaign {_UUID}"),
    Endpoint("v3", "GET /v3/emails/{id}", "account_v3", rf"campaign {_UUID}"),
    Endpoint("v3", "GET /v3/emails/{id}", "sensor_v3", rf"campaign {_UUID}"),
    Endpoint("v3", "GET /v3/emails/{id}", "trigger_v3", rf"campaign {_UUID}"),
    Endpoint("v3", "GET /v3/emails/{id}", "watch_v3", rf"campaign {_UUID}"),
    Endpoint("v3", "GET /v3/emails/activities/{id}", "activity_v3", rf"activity {_UUID}|{_UUID}"),
    Endpoint("v3", "GET /v3/emails/activities/{id}", "account_v3", rf"activity {_UUID}"),  # dimensions
    Endpoint("v3", "GET /v3/emails/activities/{id}/send_history", "account_v3", r"send history",
             without=("record_out_of_order",)),  # one send per activity
    Endpoint("v3", "GET /v3/emails/activities/{id}/send_history", "sensor_v3", r"send history",
             without=("record_out_of_order",)),  # one send per activity
    Endpoint("v3", "GET /v3/emails/activities/{id}/send_history", "trigger_v3", r"send history",
             without=("record_out_of_order",)),  # one send per activity
    Endpoint("v3", "GET /v3/emails/campaign_id_xrefs", "xrefs_v3", r"campaign id cross-reference"),
    Endpoint("v3", "GET /v3/contacts/contact_id_xrefs", "xrefs_v3", r"contact id cross-reference"),
    Endpoint("v3", "GET /v3/reports/email_reports/{id}/tracking/{report}", "tracking_v3", rf"activity {_UUID} sends"),
    Endpoint("v3", "GET /v3/reports/email_reports/{id}/tracking/{report}", "account_v3", rf"activity {_UUID} \w+"),
    Endpoint("v3", "GET /v3/reports/stats/email_campaign_activities/{ids}", "account_v3", r"activity stats"),
    Endpoint("v3", "GET /v3/reports/email_reports/{id}/links", "account_v3", rf"activity {_UUID} links"),  # dimensions
    Endpoint("v3", "GET /v3/reports/stats/email_campaigns/{ids}", "summary_v3", r"campaign stats|stats"),
    Endpoint("v3", "GET /v3/reports/summary_reports/email_campaign_summaries", "account_v3", r"summar",
             without=("page_repeated",)),  # two SENT campaigns: one page
    Endpoint("v3", "GET /v3/reports/summary_reports/email_campaign_summaries", "watch_v3", r"summar",
             without=("page_repeated",)),  # two SENT campaigns: one page
    Endpoint("v3", "GET /v3/reports/contact_reports/{id}/activity_details", "contact_v3",
             rf"contact {_UUID} activity"),
    Endpoint("v3", "GET /v3/reports/contact_reports/{id}/activity_summary", "contact_summary_v3",
             rf"contact {_UUID} activity summary"),
    Endpoint("v3", "POST /oauth2/default/v1/token", "tracking_v3", r"token"),
    Endpoint("v3", "POST /oauth2/default/v1/token", "login", r"device flow|token"),
    Endpoint("v3", "POST /oauth2/default/v1/token", "refresh", r"token"),
    Endpoint("v3", "POST /oauth2/default/v1/device/authorize", "login", r"device"),
)
