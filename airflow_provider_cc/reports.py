"""The catalogue of v2 tracking reports: every module reads report facts from here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_cc.exceptions import ConstantContactInputError

COMMON_COLUMNS: tuple[str, ...] = ("activity_type", "campaign_id", "contact_id", "email_address")
# Ids come back as JSON numbers or strings depending on endpoint and SDK era; records leave as strings.
ID_FIELDS: tuple[str, ...] = ("id", "campaign_id", "contact_id", "link_id")


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
ALL_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(c for r in ACTIVITY_REPORTS for c in (*COMMON_COLUMNS, r.date_field, *r.extra_columns))
)

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


def date_field_of(record: dict, report: Report | None) -> str:
    """The date field of ``record``: fixed per report, or per ``activity_type`` in mixed reports."""
    if report is not None:
        return report.date_field
    typed = BY_ACTIVITY_TYPE.get(record.get("activity_type", ""))
    if typed is not None:
        return typed.date_field
    return next((k for k in record if k.endswith("_date")), "")
