"""The catalogue of tracking reports, of both API versions: every module reads report facts from here.

One :class:`Report` row per (API version, report): v2's six (``sends`` ... ``bounces``) and v3's eight (the
same six, where ``unsubscribes`` is v3's ``optouts``, plus ``unique_opens`` and ``didnotopens``). A report
keeps its name across versions where the meaning is the same, so a DAG's ``report="opens"`` works on both.

That includes the typed output schema: each report's columns with their types, and the natural key that
identifies a record (what to deduplicate on when windows overlap or a load is repeated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

V2, V3 = "v2", "v3"
API_VERSIONS: tuple[str, ...] = (V2, V3)

# Who did what in which campaign: with the date (and link) these identify one activity (natural_key_of).
KEY_COLUMNS: tuple[str, ...] = ("activity_type", "campaign_id", "contact_id")
COMMON_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, "email_address")
# v3 (reference §3.2): every record names its campaign activity; the provider adds the activity's campaign.
V3_KEY_COLUMNS: tuple[str, ...] = ("tracking_activity_type", "campaign_activity_id", "contact_id")
V3_COMMON_COLUMNS: tuple[str, ...] = ("tracking_activity_type", "campaign_id", "campaign_activity_id", "contact_id",
                                      "email_address", "first_name", "last_name", "created_time", "deleted_at")
# Ids come back as JSON numbers or strings depending on endpoint and SDK era; records leave as strings.
ID_FIELDS: tuple[str, ...] = ("id", "campaign_id", "contact_id", "link_id")

# Column types of the typed schema.
STRING, TIMESTAMP, INTEGER = "string", "timestamp", "integer"


@dataclass(frozen=True)
class ColumnType:
    """How the files, and the engines reading them, hold one column type: the one table of type mappings.

    :param json_type: the JSON type of a value in a JSON line (JSON Schema ``type``).
    :param json_format: its JSON Schema ``format``, if any.
    :param duckdb: the DuckDB SQL type, for ``read_json(..., columns=...)`` and ``read_csv``.
    :param arrow: the Parquet column's pyarrow type, given the ``pyarrow`` module (imported only when used).
    """

    json_type: str
    json_format: str | None
    duckdb: str
    arrow: Callable[[Any], Any]


COLUMN_TYPES: dict[str, ColumnType] = {
    STRING: ColumnType("string", None, "VARCHAR", lambda pa: pa.string()),
    TIMESTAMP: ColumnType("string", "date-time", "TIMESTAMPTZ", lambda pa: pa.timestamp("ms", tz="UTC")),
    INTEGER: ColumnType("integer", None, "BIGINT", lambda pa: pa.int64()),
}


@dataclass(frozen=True)
class Column:
    """One column of a report's typed schema.

    :param name: the record field, CSV header and Parquet column name.
    :param type: ``string``; ``timestamp`` (an instant in UTC with millisecond precision; JSON lines and CSV
        carry the API's ISO-8601 text, e.g. ``2012-12-06T13:06:14.762Z``); ``integer`` (none so far).
    :param description: what the column holds.
    """

    name: str
    type: str = STRING
    description: str = ""

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.name!r}: type {self.type!r} is not one of {', '.join(COLUMN_TYPES)}")

    @property
    def kind(self) -> ColumnType:
        """How files and engines hold this column (:data:`COLUMN_TYPES`)."""
        return COLUMN_TYPES[self.type]


@dataclass(frozen=True)
class Report:
    """One activity report of one API version.

    :param name: report name in operator arguments (``sends``, ``opens``...), the same across versions where
        the meaning is.
    :param activity_type: the ``activity_type`` (v2) or ``tracking_activity_type`` (v3) value of its records.
    :param date_field: the record field holding the activity time.
    :param extra_columns: fields beyond the common ones, in CSV column order.
    :param summary_key: key of this activity's counter in summary objects (v2 ``tracking_summary``, v3 bulk
        summaries' ``unique_counts``).
    :param api: ``v2`` or ``v3``.
    :param path: the report's URL segment, when it differs from ``name`` (v3 ``optouts``).
    :param snapshot: the report is a state that changes over time (v3's last open per contact, the shrinking
        non-openers), pulled whole and written as one file per run, never cut into windows.
    :param fields: every column, for a report whose records have none of the common ones (v3 contact activity).
    """

    name: str
    activity_type: str
    date_field: str
    extra_columns: tuple[str, ...] = ()
    summary_key: str = ""
    api: str = V2
    path: str = ""
    snapshot: bool = False
    fields: tuple[str, ...] = ()

    @property
    def segment(self) -> str:
        """The report's URL segment."""
        return self.path or self.name

    @property
    def type_field(self) -> str:
        """The record field holding :attr:`activity_type`."""
        return "activity_type" if self.api == V2 else "tracking_activity_type"

    @property
    def columns(self) -> tuple[str, ...]:
        """Fixed CSV column order."""
        if self.fields:
            return self.fields
        if self.api == V2:
            return (*COMMON_COLUMNS, self.date_field, *self.extra_columns)
        return (*V3_COMMON_COLUMNS, *self.extra_columns)

    @property
    def api_fields(self) -> tuple[str, ...]:
        """The fields the API sends (the columns, but for the ``campaign_id`` the provider adds on v3)."""
        return self.columns if self.api == V2 else tuple(c for c in self.columns if c != "campaign_id")


SENDS = Report("sends", "EMAIL_SEND", "send_date", summary_key="sends")
OPENS = Report("opens", "EMAIL_OPEN", "open_date", summary_key="opens")
CLICKS = Report("clicks", "EMAIL_CLICK", "click_date", ("link_id", "link_uri"), summary_key="clicks")
FORWARDS = Report("forwards", "EMAIL_FORWARD", "forward_date", summary_key="forwards")
UNSUBSCRIBES = Report(
    "unsubscribes",
    "EMAIL_UNSUBSCRIBE",
    "unsubscribe_date",
    ("unsubscribe_source", "unsubscribe_reason"),
    summary_key="unsubscribes",
)
BOUNCES = Report(
    "bounces",
    "EMAIL_BOUNCE",
    "bounce_date",
    ("bounce_code", "bounce_description", "bounce_message"),
    summary_key="bounces",
)

ACTIVITY_REPORTS: tuple[Report, ...] = (SENDS, OPENS, CLICKS, FORWARDS, UNSUBSCRIBES, BOUNCES)
REPORTS: dict[str, Report] = {r.name: r for r in ACTIVITY_REPORTS}
BY_ACTIVITY_TYPE: dict[str, Report] = {r.activity_type: r for r in ACTIVITY_REPORTS}

# Contact tracking also has "all": mixed activity types, newest first.
ALL = "all"
ALL_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(c for r in ACTIVITY_REPORTS for c in r.columns))

CAMPAIGN_REPORT_NAMES: tuple[str, ...] = tuple(REPORTS)
CONTACT_REPORT_NAMES: tuple[str, ...] = (ALL, *REPORTS)

CAMPAIGN_STATUSES: tuple[str, ...] = ("ALL", "DRAFT", "RUNNING", "SENT", "SCHEDULED", "DELETED")


def _input_error(message: str) -> Exception:
    """The provider's input error, imported when raised: the catalogue imports no Airflow (the emulator reads it,
    and a new emulator process then starts in a second, not the 6-8 CPU-seconds Airflow's import costs)."""
    from airflow_provider_cc.exceptions import ConstantContactInputError

    return ConstantContactInputError(message)


def campaign_report(name: str) -> Report:
    """Return the campaign tracking report called ``name``, or raise a clear input error."""
    try:
        return REPORTS[name]
    except (KeyError, TypeError):
        raise _input_error(
            f"unknown campaign tracking report {name!r}; choose one of {', '.join(CAMPAIGN_REPORT_NAMES)}"
        ) from None


def contact_report(name: str) -> Report | None:
    """Return the contact tracking report called ``name`` (``None`` for ``all``), or raise."""
    if name == ALL:
        return None
    try:
        return REPORTS[name]
    except (KeyError, TypeError):
        raise _input_error(
            f"unknown contact tracking report {name!r}; choose one of {', '.join(CONTACT_REPORT_NAMES)}"
        ) from None


def columns_for(report: Report | None) -> tuple[str, ...]:
    """CSV columns of a report; ``None`` stands for the mixed ``all`` report."""
    return ALL_COLUMNS if report is None else report.columns


# What each column holds. Ids (numeric sequence ids) and codes are strings: ids arrive as JSON numbers or
# strings and leave as strings, codes are enumerations the API may extend.
_DESCRIPTIONS: dict[str, str] = {
    "activity_type": "EMAIL_SEND, EMAIL_OPEN, EMAIL_CLICK, EMAIL_FORWARD, EMAIL_UNSUBSCRIBE or EMAIL_BOUNCE",
    "campaign_id": "the email campaign's id (digits, as a string)",
    "contact_id": "the contact's id (digits, as a string)",
    "email_address": "the contact's email address",
    "link_id": "the clicked link's id (the campaign's click_through_details[].url_uid), as a string",
    "link_uri": "the clicked link's URL (contact tracking; campaign tracking may omit it)",
    "unsubscribe_source": "ACTION_BY_CUSTOMER, ACTION_BY_OWNER or ACTION_BY_CONTACT",
    "unsubscribe_reason": "free text given by the contact, often empty",
    "bounce_code": "B, S, D, F, V, Z or X (non-existent, suspended, undeliverable, full, vacation, blocked, other)",
    "bounce_description": "the bounce code in words",
    "bounce_message": "the receiving server's message, often empty",
}


_V3_DESCRIPTIONS: dict[str, str] = {
    "tracking_activity_type": "em_sends, em_opens, em_clicks, em_forwards, em_optouts, em_bounces or em_didnotopens",
    "campaign_id": "the email campaign's id (a UUID), added by the provider from the activity's campaign",
    "campaign_activity_id": "the campaign activity's id (a UUID): its primary_email or resend",
    "contact_id": "the contact's id (a UUID)",
    "email_address": "the contact's email address",
    "first_name": "the contact's first name, if known",
    "last_name": "the contact's last name, if known",
    "created_time": "when the activity happened (UTC, milliseconds); for didnotopens, the send",
    "deleted_at": "the date the contact was deleted (YYYY-MM-DD), if it was",
    "device_type": "computer, mobile, tablet, other or none",
    "url_id": "the clicked link's id, as a string",
    "link_url": "the clicked link's URL",
    "opt_out_reason": "the reason the contact gave, if any",
    "bounce_code": "B, D, F, S, V, X or Z (non-existent, undeliverable, full, suspended, vacation, other, blocked)",
    "current_email_address": "the contact's address now, if it changed after the bounce",
    "campaign_activity_name": "the campaign activity's name",
}

_DATE_FIELDS: frozenset[str] = frozenset(r.date_field for r in ACTIVITY_REPORTS)


def column_of(name: str, api: str = V2) -> Column:
    """The typed column called ``name``: activity dates are timestamps, everything else is a string.

    :param name: the column.
    :param api: the API version whose records hold it.
    """
    if api == V3:
        return Column(name, TIMESTAMP if name == "created_time" else STRING, _V3_DESCRIPTIONS.get(name, ""))
    if name in _DATE_FIELDS:
        activity = next(r.activity_type for r in ACTIVITY_REPORTS if r.date_field == name)
        return Column(name, TIMESTAMP, f"when the {activity} happened (UTC, milliseconds)")
    return Column(name, STRING, _DESCRIPTIONS.get(name, ""))


def schema_of(report: Report | None) -> tuple[Column, ...]:
    """The typed columns of a report, in CSV column order; ``None`` stands for the mixed ``all`` report."""
    return tuple(column_of(name, V2 if report is None else report.api) for name in columns_for(report))


def natural_key_of(report: Report | None) -> tuple[str, ...]:
    """The columns that identify one activity: type, campaign, contact and date (and link, for clicks).

    ``created_since`` is inclusive and equal timestamps recur, so overlapping windows or repeated loads can
    bring a record twice; deduplicate on these columns. For the mixed ``all`` report the key spans every
    date field and ``link_id`` (each record fills only its own type's date; treat missing values as equal).
    On v3: activity, contact and ``created_time`` (and ``url_id``); a snapshot's key is its activity and contact.
    """
    if report is None:
        return (*KEY_COLUMNS, *(r.date_field for r in ACTIVITY_REPORTS), "link_id")
    if report.api == V3:  # a snapshot holds one record per contact and activity
        url = ("url_id",) if "url_id" in report.columns else ()
        return V3_KEY_COLUMNS if report.snapshot else (*V3_KEY_COLUMNS, "created_time", *url)
    link = ("link_id",) if "link_id" in report.columns else ()
    return (*KEY_COLUMNS, report.date_field, *link)


def date_field_of(record: dict, report: Report | None) -> str:
    """The date field of ``record``: fixed per report, or per ``activity_type`` in mixed reports."""
    if report is not None:
        return report.date_field
    typed = BY_ACTIVITY_TYPE.get(record.get("activity_type", ""))
    if typed is not None:
        return typed.date_field
    return next((k for k in record if k.endswith("_date")), "")


# ---- v3 ---------------------------------------------------------------------------------------------------
V3_ACTIVITY_REPORTS: tuple[Report, ...] = (
    Report("sends", "em_sends", "created_time", summary_key="sends", api=V3),
    Report("opens", "em_opens", "created_time", ("device_type",), summary_key="opens", api=V3),
    Report("unique_opens", "em_opens", "created_time", ("device_type",), summary_key="opens", api=V3, snapshot=True),
    Report("clicks", "em_clicks", "created_time", ("device_type", "url_id", "link_url"), summary_key="clicks", api=V3),
    Report("forwards", "em_forwards", "created_time", summary_key="forwards", api=V3),
    Report("unsubscribes", "em_optouts", "created_time", ("opt_out_reason",), summary_key="optouts", api=V3,
           path="optouts"),
    Report("bounces", "em_bounces", "created_time", ("bounce_code", "current_email_address"), summary_key="bounces",
           api=V3),
    Report("didnotopens", "em_didnotopens", "created_time", summary_key="not_opened", api=V3, snapshot=True),
)
# One contact's activity (``/contact_reports/{id}/activity_details``): which activities, when, no addresses.
V3_CONTACT_ACTIVITY = Report("activity", "", "created_time", api=V3, fields=(
    "tracking_activity_type", "contact_id", "campaign_activity_id", "created_time", "campaign_activity_name"))
# By URL segment: what the v3 API (and the emulator) call each report.
V3_REPORTS: dict[str, Report] = {r.segment: r for r in V3_ACTIVITY_REPORTS}
CATALOGUE: dict[str, dict[str, Report]] = {V2: REPORTS, V3: {r.name: r for r in V3_ACTIVITY_REPORTS}}
# The campaign reports each version pulls by default: every report that is a log of events (not a snapshot).
DEFAULT_REPORTS: dict[str, tuple[str, ...]] = {
    api: tuple(name for name, r in rows.items() if not r.snapshot) for api, rows in CATALOGUE.items()}


def report_of(name: str, api: str = V2) -> Report:
    """The campaign report called ``name`` on API version ``api``; a clear input error for a name that does not
    exist there (saying so when the other version has it).

    :param name: report name (on v3 the URL segment ``optouts`` is accepted for ``unsubscribes``).
    :param api: ``v2`` or ``v3``.
    """
    rows = CATALOGUE[api]
    found = rows.get(name) if isinstance(name, str) else None
    if found is None and api == V3 and isinstance(name, str):
        found = V3_REPORTS.get(name)
    if found is not None:
        return found
    other = V3 if api == V2 else V2
    where = f" ({name!r} exists on the {other} API only)" if isinstance(name, str) and name in CATALOGUE[other] else ""
    raise _input_error(
        f"unknown campaign tracking report {name!r}{' on the v3 API' if api == V3 else ''}{where}; choose one of "
        f"{', '.join(rows)}") from None


V3_CAMPAIGN_STATUS: dict[str, tuple[str, str]] = {
    "SENT": ("Done", "DONE"), "RUNNING": ("Executing", "EXECUTING"), "DRAFT": ("Draft", "DRAFT"),
    "SCHEDULED": ("Scheduled", "SCHEDULED"), "DELETED": ("Removed", "REMOVED"),
}
V3_BOUNCE_CODES: tuple[str, ...] = ("B", "D", "F", "S", "V", "X", "Z")


def v3_report(name: str) -> Report:
    """The v3 tracking report called ``name`` (its catalogue name or URL segment), or a clear input error."""
    return report_of(name, V3)
