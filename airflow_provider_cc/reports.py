"""The catalogue of v2 tracking reports: every module reads report facts from here and nowhere else.

That includes the typed output schema: each report's columns with their types, and the natural key that
identifies a record (what to deduplicate on when windows overlap or a load is repeated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactInputError

if TYPE_CHECKING:
    from collections.abc import Callable

# Who did what in which campaign: with the date (and link) these identify one activity (natural_key_of).
KEY_COLUMNS: tuple[str, ...] = ("activity_type", "campaign_id", "contact_id")
COMMON_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, "email_address")
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
    """One activity report of the v2 tracking API.

    :param name: report name used in URL paths and operator arguments (``sends``, ``opens``...).
    :param activity_type: the ``activity_type`` value of its records.
    :param date_field: the record field holding the activity time.
    :param extra_columns: fields beyond the common ones, in CSV column order.
    :param summary_key: key of this activity's counter in summary objects.
    """

    name: str
    activity_type: str
    date_field: str
    extra_columns: tuple[str, ...] = ()
    summary_key: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """Fixed CSV column order."""
        return (*COMMON_COLUMNS, self.date_field, *self.extra_columns)


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


def campaign_report(name: str) -> Report:
    """Return the campaign tracking report called ``name``, or raise a clear input error."""
    try:
        return REPORTS[name]
    except (KeyError, TypeError):
        raise ConstantContactInputError(
            f"unknown campaign tracking report {name!r}; choose one of {', '.join(CAMPAIGN_REPORT_NAMES)}"
        ) from None


def contact_report(name: str) -> Report | None:
    """Return the contact tracking report called ``name`` (``None`` for ``all``), or raise."""
    if name == ALL:
        return None
    try:
        return REPORTS[name]
    except (KeyError, TypeError):
        raise ConstantContactInputError(
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


_DATE_FIELDS: frozenset[str] = frozenset(r.date_field for r in ACTIVITY_REPORTS)


def column_of(name: str) -> Column:
    """The typed column called ``name``: activity dates are timestamps, everything else is a string."""
    if name in _DATE_FIELDS:
        activity = next(r.activity_type for r in ACTIVITY_REPORTS if r.date_field == name)
        return Column(name, TIMESTAMP, f"when the {activity} happened (UTC, milliseconds)")
    return Column(name, STRING, _DESCRIPTIONS.get(name, ""))


def schema_of(report: Report | None) -> tuple[Column, ...]:
    """The typed columns of a report, in CSV column order; ``None`` stands for the mixed ``all`` report."""
    return tuple(column_of(name) for name in columns_for(report))


def natural_key_of(report: Report | None) -> tuple[str, ...]:
    """The columns that identify one activity: type, campaign, contact and date (and link, for clicks).

    ``created_since`` is inclusive and equal timestamps recur, so overlapping windows or repeated loads can
    bring a record twice; deduplicate on these columns. For the mixed ``all`` report the key spans every
    date field and ``link_id`` (each record fills only its own type's date; treat missing values as equal).
    """
    if report is None:
        return (*KEY_COLUMNS, *(r.date_field for r in ACTIVITY_REPORTS), "link_id")
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
# The v3 tracking reports (reference §3): path segment, ``tracking_activity_type``, the v2 report each continues,
# and the record fields beyond the common ones. Typed columns, keys and schemas for v3 come with the v3 reports.
V3_COMMON_FIELDS: tuple[str, ...] = ("contact_id", "campaign_activity_id", "tracking_activity_type", "email_address",
                                     "first_name", "last_name", "created_time", "deleted_at")


@dataclass(frozen=True)
class V3Report:
    """One v3 per-activity tracking report.

    :param name: its path segment (``/reports/email_reports/{activity}/tracking/{name}``).
    :param activity_type: the ``tracking_activity_type`` of its records.
    :param v2_name: the v2 report it continues, or ``None`` (v3 only).
    :param extra_fields: record fields beyond :data:`V3_COMMON_FIELDS`.
    :param snapshot: whether it is a snapshot that changes over time (the last open per contact, the
        shrinking non-openers) rather than an append-only log.
    """

    name: str
    activity_type: str
    v2_name: str | None
    extra_fields: tuple[str, ...] = ()
    snapshot: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """Every record field, in a fixed order."""
        return (*V3_COMMON_FIELDS, *self.extra_fields)


V3_TRACKING_REPORTS: tuple[V3Report, ...] = (
    V3Report("sends", "em_sends", "sends"),
    V3Report("opens", "em_opens", "opens", ("device_type",)),
    V3Report("unique_opens", "em_opens", None, ("device_type",), snapshot=True),
    V3Report("clicks", "em_clicks", "clicks", ("device_type", "url_id", "link_url")),
    V3Report("forwards", "em_forwards", "forwards"),
    V3Report("optouts", "em_optouts", "unsubscribes", ("opt_out_reason",)),
    V3Report("bounces", "em_bounces", "bounces", ("bounce_code", "current_email_address")),
    V3Report("didnotopens", "em_didnotopens", None, snapshot=True),
)
V3_REPORTS: dict[str, V3Report] = {r.name: r for r in V3_TRACKING_REPORTS}
# Campaign states: the campaign's (title case) and its activities' (upper case) current_status, by v2 status.
V3_CAMPAIGN_STATUS: dict[str, tuple[str, str]] = {
    "SENT": ("Done", "DONE"), "RUNNING": ("Executing", "EXECUTING"), "DRAFT": ("Draft", "DRAFT"),
    "SCHEDULED": ("Scheduled", "SCHEDULED"), "DELETED": ("Removed", "REMOVED"),
}
V3_BOUNCE_CODES: tuple[str, ...] = ("B", "D", "F", "S", "V", "X", "Z")


def v3_report(name: str) -> V3Report:
    """The v3 tracking report called ``name``, or a clear input error."""
    try:
        return V3_REPORTS[name]
    except (KeyError, TypeError):
        raise ConstantContactInputError(
            f"unknown v3 tracking report {name!r}; choose one of {', '.join(V3_REPORTS)}") from None
