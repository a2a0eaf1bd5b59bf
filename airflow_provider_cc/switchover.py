"""The switch from v2 to v3 without a gap: one DuckDB view per report over a root that holds both APIs' files.

The v2 daily DAG wrote ``{root}campaign/{report}/campaign_id={v2 id}/...`` up to day D; the v3 daily DAG writes
``{root}campaign/{report}/campaign_id={uuid}/campaign_activity_id={uuid}/...`` from day D; the cross-reference
operator (:mod:`airflow_provider_cc.operators.xrefs`) wrote ``{root}xrefs/campaigns.jsonl`` and
``{root}xrefs/contacts.jsonl``. Each view takes v2 rows dated before D, their ids turned into v3 ids through
those tables, and v3 rows from D on, in the columns both APIs have. The cut at D is what keeps an activity from
appearing twice, even where the two DAGs' runs overlap. docs/switch-over.md holds the same SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactInputError
from airflow_provider_cc.reports import DEFAULT_REPORTS, V2, V3, report_of
from airflow_provider_cc.schemas import duckdb_columns
from airflow_provider_cc.sinks import extension
from airflow_provider_cc.window import to_utc

if TYPE_CHECKING:
    from datetime import datetime

XREF_FOLDER = "xrefs"
CAMPAIGN_XREFS = f"{XREF_FOLDER}/campaigns.jsonl"
CONTACT_XREFS = f"{XREF_FOLDER}/contacts.jsonl"
CAMPAIGN_XREF_COLUMNS: tuple[str, ...] = ("v2_campaign_id", "campaign_id", "campaign_activity_id")
CONTACT_XREF_COLUMNS: tuple[str, ...] = ("v2_contact_id", "contact_id")
# Per report, the v3 columns beyond the common ones that v2 records hold too: {v3 column: v2 SQL expression}.
# A v2 unsubscribe's empty reason is v3's missing one.
SHARED_EXTRAS: dict[str, dict[str, str]] = {
    "clicks": {"url_id": "v2.link_id"},
    "unsubscribes": {"opt_out_reason": "NULLIF(v2.unsubscribe_reason, '')"},
    "bounces": {"bounce_code": "v2.bounce_code"},
}
# The v2 columns those expressions read.
V2_SOURCES: dict[str, tuple[str, ...]] = {"clicks": ("link_id",), "unsubscribes": ("unsubscribe_reason",),
                                          "bounces": ("bounce_code",)}
V3_COLUMNS: tuple[str, ...] = ("tracking_activity_type", "campaign_id", "campaign_activity_id", "contact_id",
                               "email_address", "created_time")
VIEW_FORMATS: tuple[str, ...] = ("jsonl", "csv")


def switch_day(day: Any) -> datetime:
    """Day D as the instant the v3 files take over: midnight UTC.

    :param day: a date, a datetime at midnight UTC, or ISO-8601 text (``2024-03-01``).
    """
    moment = to_utc(day, "day")
    if moment is None or moment != moment.replace(hour=0, minute=0, second=0, microsecond=0):
        raise ConstantContactInputError(f"day={day!r}: give the switch-over day, a date (midnight UTC)")
    return moment


def _root_text(root: Any) -> str:
    text = str(root or "").strip()
    if text.startswith("file://"):
        text = text[len("file://"):]
    if not text.endswith("/") or "'" in text or not (text.startswith("/") or "://" in text):
        raise ConstantContactInputError(
            f"root={root!r}: give the root both DAGs write under, absolute, ending in '/' (no quote in it), "
            "e.g. '/data/cc/' or 's3://bucket/cc/'")
    return text


def _reader(file_format: str, files: str, columns: dict[str, str]) -> str:
    typed = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    if file_format == "csv":
        return f"read_csv('{files}', header = true,\n        columns = {typed}"
    return f"read_json('{files}', format = 'newline_delimited',\n        columns = {typed}"


def _files(file_format: str, files: str, columns: dict[str, str], used: tuple[str, ...]) -> str:
    """A side's files; a glob that matches none yet reads as no rows of the used columns (``allow_empty`` alone
    gives a relation whose one column is ``empty``)."""
    typed = ", ".join(f"NULL::{columns[c]} AS {c}" for c in used)
    return (f"SELECT * FROM {_reader(file_format, files, columns)}, hive_partitioning = false, allow_empty = true)\n"
            f"      UNION ALL BY NAME SELECT {typed} WHERE false")


def duckdb_view(root: Any, day: Any, report: str, *, file_format: str = "jsonl",
                compression: str | None = None) -> str:
    """The SELECT of one report's view over both APIs' files (see :func:`duckdb_views`).

    :param root: the root both daily DAGs write under (``/data/cc/``, ``s3://bucket/cc/``).
    :param day: day D, the v3 DAG's first day (midnight UTC).
    :param report: a campaign report both APIs have (``sends``, ``opens``, ``clicks``, ``forwards``,
        ``unsubscribes``, ``bounces``).
    :param file_format: the DAGs' ``file_format``: ``jsonl`` or ``csv``.
    :param compression: the DAGs' ``compression``: ``None`` or ``gzip``.
    """
    base = _root_text(root)
    cut = switch_day(day)
    if file_format not in VIEW_FORMATS:
        raise ConstantContactInputError(f"file_format={file_format!r}: the views read {', '.join(VIEW_FORMATS)}")
    if report not in DEFAULT_REPORTS[V2]:
        raise ConstantContactInputError(f"report={report!r}: choose one of {', '.join(DEFAULT_REPORTS[V2])}")
    old, new = report_of(report, V2), report_of(report, V3)
    ext = extension(file_format, compression)
    folder = f"{base}campaign/{report}/campaign_id=*"
    at = f"TIMESTAMPTZ '{cut:%Y-%m-%d %H:%M:%S}+00'"
    extras = SHARED_EXTRAS.get(report, {})
    v2_extras = "".join(f", {sql} AS {name}" for name, sql in extras.items())
    v3_extras = "".join(f", {name}" for name in extras)
    campaigns = _reader("jsonl", base + CAMPAIGN_XREFS, dict.fromkeys(CAMPAIGN_XREF_COLUMNS, "VARCHAR"))
    contacts = _reader("jsonl", base + CONTACT_XREFS, dict.fromkeys(CONTACT_XREF_COLUMNS, "VARCHAR"))
    v2_used = ("campaign_id", "contact_id", "email_address", old.date_field, *V2_SOURCES.get(report, ()))
    v3_used = (*V3_COLUMNS, *extras)
    v2_files = _files(file_format, f"{folder}/*{ext}", duckdb_columns(old), v2_used)
    v3_files = _files(file_format, f"{folder}/campaign_activity_id=*/*{ext}", duckdb_columns(new), v3_used)
    return (
        f"WITH campaigns AS (SELECT * FROM {campaigns})),\n"
        f"contacts AS (SELECT * FROM {contacts})),\n"
        f"v2 AS ({v2_files}),\n"
        f"v3 AS ({v3_files})\n"
        f"SELECT '{new.activity_type}' AS tracking_activity_type, x.campaign_id, x.campaign_activity_id,\n"
        f"       k.contact_id, v2.email_address, v2.{old.date_field} AS created_time{v2_extras},\n"
        f"       'v2' AS api, v2.campaign_id AS v2_campaign_id, v2.contact_id AS v2_contact_id\n"
        f"FROM v2 LEFT JOIN campaigns x ON x.v2_campaign_id = v2.campaign_id\n"
        f"        LEFT JOIN contacts k ON k.v2_contact_id = v2.contact_id\n"
        f"WHERE v2.{old.date_field} < {at}\n"
        f"UNION ALL\n"
        f"SELECT tracking_activity_type, campaign_id, campaign_activity_id,\n"
        f"       contact_id, email_address, created_time{v3_extras},\n"
        f"       'v3' AS api, NULL AS v2_campaign_id, NULL AS v2_contact_id\n"
        f"FROM v3\n"
        f"WHERE created_time >= {at}"
    )


def duckdb_views(root: Any, day: Any, *, file_format: str = "jsonl", compression: str | None = None) -> dict[str, str]:
    """``{report: SELECT}`` of the six switch-over views, the SQL of docs/switch-over.md: create each with
    ``CREATE VIEW cc_{report} AS {select}``.

    Each view's columns: ``tracking_activity_type`` (v3's: ``em_opens``...), ``campaign_id`` and
    ``campaign_activity_id`` (v3 UUIDs; a v2 resend's activity is the v3 ``resend``), ``contact_id`` (UUID),
    ``email_address``, ``created_time`` (TIMESTAMPTZ), the report's shared columns (clicks ``url_id``,
    unsubscribes ``opt_out_reason``, bounces ``bounce_code``), ``api`` (``v2`` or ``v3``: which files the row
    came from) and, on v2 rows, ``v2_campaign_id`` and ``v2_contact_id``. A v2 id missing from the mapping
    tables leaves its v3 id NULL rather than dropping the row. Globs that match no file yet read as empty.

    :param root: the root both daily DAGs write under (``/data/cc/``, ``s3://bucket/cc/``; DuckDB reads object
        stores through its ``httpfs`` extension and credentials).
    :param day: day D, the v3 DAG's first day (midnight UTC): v2 rows before it, v3 rows from it.
    :param file_format: the DAGs' ``file_format``: ``jsonl`` or ``csv``.
    :param compression: the DAGs' ``compression``: ``None`` or ``gzip``.
    """
    return {report: duckdb_view(root, day, report, file_format=file_format, compression=compression)
            for report in DEFAULT_REPORTS[V2]}

