"""The one-off cross-reference for the switch from v2 to v3: v2 campaign and contact ids to v3 ids, as two tables
under the root the daily DAGs write under (read by the switch-over views, :mod:`airflow_provider_cc.switchover`)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.account.arguments import as_list
from airflow_provider_cc.destinations import as_path, check_writable, is_root, plain_uri
from airflow_provider_cc.exceptions import ConstantContactError, ConstantContactInputError
from airflow_provider_cc.get_provider_info import V3_CONN_TYPE, V3_DEFAULT_CONN_ID
from airflow_provider_cc.hooks.campaigns import UUID_PATTERN
from airflow_provider_cc.hooks.constant_contact import numeric_id
from airflow_provider_cc.hooks.constant_contact_v3 import MAX_CONTACT_XREF_IDS, MAX_XREF_IDS, ConstantContactV3Hook
from airflow_provider_cc.operators.tracking import _ConstantContactOperator
from airflow_provider_cc.reports import DEFAULT_REPORTS, V2
from airflow_provider_cc.sinks import write_records
from airflow_provider_cc.switchover import CAMPAIGN_XREF_COLUMNS, CAMPAIGN_XREFS, CONTACT_XREF_COLUMNS, CONTACT_XREFS

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_provider_cc._compat import Context, ObjectStoragePath

log = logging.getLogger(__name__)
_V2_FOLDER = re.compile(r"campaign_id=(\d+)")
_V2_FILE_ENDINGS = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet")
MAX_LISTED = 100


def _by_number(ids: Iterable[str]) -> list[str]:
    return sorted(set(ids), key=lambda i: (len(i), i))


class ConstantContactCampaignXrefsOperator(_ConstantContactOperator):
    """Map v2 ids to v3 ids once, for the switch-over: ``{root}xrefs/campaigns.jsonl`` (one row per v2 campaign:
    ``v2_campaign_id``, ``campaign_id``, ``campaign_activity_id``; a v2 resend maps to its v3 ``resend``
    activity) and ``{root}xrefs/contacts.jsonl`` (one row per v2 contact: ``v2_contact_id``, ``contact_id``).
    An id the API does not know (two answers left it unmapped) gets a row with empty v3 ids, so that it is not
    asked again.

    **What it costs in requests**: ⌈v2 campaigns / 50⌉ (``/emails/campaign_id_xrefs``, which Constant Contact
    asks be used sparingly) + ⌈v2 contacts / 500⌉ (``/contacts/contact_id_xrefs``), counting only ids not in
    the tables yet: a second run asks nothing for ids already mapped. An id an answer does not map is asked
    once more (⌈such ids / 50⌉ or ⌈/ 500⌉ requests) before its row records it as unknown: one answer that
    leaves ids out is not believed. The count is logged before the first request.

    Every answer is checked: a body of the wrong shape, an id that was not asked, a v3 id that is not a UUID,
    or one v2 id listed twice with different v3 ids is retried as a malformed answer, then fails the task with
    a ``ConstantContactResponseError`` naming the endpoint and the field; nothing of such an answer is
    written, so the next run asks again.

    Without ``v2_campaign_ids`` it also reads the v2 files under the root once (their folders name the
    campaigns, their ``contact_id`` column the contacts).

    :param destination: the root both daily DAGs write under, ending in ``/`` (templated).
    :param v2_campaign_ids: v2 campaign ids to map (templated); default: every v2 campaign folder under the
        root (``{root}campaign/{report}/campaign_id={digits}/``), the campaigns the v2 files hold.
    :param contacts: also map the ``contact_id`` values of the v2 files under the root (default: yes; the
        views need them, v2 contact ids being numbers and v3's UUIDs).
    :param storage_conn_id: Airflow connection for the object store.
    :param constant_contact_conn_id: the ``constant_contact_v3`` connection.
    """

    template_fields: Sequence[str] = ("destination", "v2_campaign_ids", "storage_conn_id", "constant_contact_conn_id")
    ui_color = "#1856ed"

    def __init__(self, *, destination: Any, v2_campaign_ids: Any = None, contacts: bool = True,
                 storage_conn_id: str | None = None, constant_contact_conn_id: str = V3_DEFAULT_CONN_ID,
                 **kwargs: Any) -> None:
        super().__init__(constant_contact_conn_id=constant_contact_conn_id, **kwargs)
        self.destination = destination
        self.v2_campaign_ids = v2_campaign_ids
        self.contacts = contacts
        self.storage_conn_id = storage_conn_id

    # ---- input, checked before any request ----------------------------------------------------------------
    def _root(self) -> ObjectStoragePath:
        if not is_root(self.destination):
            raise ConstantContactInputError(
                f"destination={self.destination!r} must be the root the daily DAGs write under, ending in '/'")
        return as_path(self.destination, self.storage_conn_id)

    def _given_ids(self) -> list[str] | None:
        if self.v2_campaign_ids is None:
            return None
        ids = [numeric_id(v, "v2_campaign_ids") for v in as_list(self.v2_campaign_ids, "v2_campaign_ids")]
        if not ids:
            raise ConstantContactInputError("v2_campaign_ids is empty; leave it out to map every v2 campaign "
                                            "folder under the root")
        return _by_number(ids)

    def _v3_hook(self) -> ConstantContactV3Hook:
        hook = self.hook
        if not isinstance(hook, ConstantContactV3Hook):
            raise ConstantContactInputError(
                f"connection {self.constant_contact_conn_id!r} is a v2 connection; the cross-reference is a v3 "
                f"endpoint: give a {V3_CONN_TYPE!r} connection")
        return hook

    # ---- the v2 files ------------------------------------------------------------------------------------
    def _v2_folders(self, root: ObjectStoragePath) -> dict[str, list[str]]:
        """``{v2 campaign id: its folders}`` under the root (v3 folders are UUIDs and left out)."""
        base = root.path.rstrip("/")
        found: dict[str, list[str]] = {}
        for report in DEFAULT_REPORTS[V2]:
            for folder in root.fs.glob(f"{base}/campaign/{report}/campaign_id=*"):
                match = _V2_FOLDER.fullmatch(str(folder).rstrip("/").rpartition("/")[2])
                if match and root.fs.isdir(folder):
                    found.setdefault(numeric_id(match.group(1), "campaign folder"), []).append(str(folder))
        return found

    def _contact_ids(self, root: ObjectStoragePath, folders: Iterable[str]) -> set[str]:
        """Every ``contact_id`` of the v2 files in ``folders``."""
        ids: set[str] = set()
        for folder in folders:
            for path in sorted(root.fs.glob(f"{folder.rstrip('/')}/*")):
                name = str(path).rpartition("/")[2]
                if name.startswith(".") or not name.endswith(_V2_FILE_ENDINGS):
                    continue  # a hidden file is an unfinished write
                with root.fs.open(path, "rb") as raw:
                    data = raw.read()
                try:
                    values = _column(name, data, "contact_id")
                except (ValueError, KeyError, TypeError, AttributeError, OSError, EOFError):
                    raise ConstantContactInputError(
                        f"{path} cannot be read as a v2 file (its contact_id column); fix or move it (nothing was "
                        "requested)") from None
                ids.update(numeric_id(v, f"contact_id in {path}") for v in values if v not in (None, ""))
        return ids

    # ---- the tables -----------------------------------------------------------------------------------------
    def _table(self, path: ObjectStoragePath, columns: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """The rows of a table an earlier run wrote, by v2 id (its first column); the others, v3 ids, are UUIDs or
        empty. Anything else is refused before any request: a row the views would join on wrongly."""
        if not path.fs.exists(path.path):
            return {}
        key = columns[0]
        with path.fs.open(path.path, "rb") as raw:
            data = raw.read()
        rows: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(data.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                v2_id = numeric_id(row[key], key)
                if v2_id in rows or any(row.get(c) is not None and not UUID_PATTERN.fullmatch(row[c])
                                        for c in columns[1:]):
                    raise ValueError
            except (ValueError, KeyError, TypeError, AttributeError):
                raise ConstantContactInputError(
                    f"{plain_uri(path)} line {number} is not a mapping row ({key} once per table, then v3 ids in "
                    "lower case or null); fix or delete the file (nothing was requested)") from None
            rows[v2_id] = row
        return rows

    @staticmethod
    def _write(path: ObjectStoragePath, rows: dict[str, dict[str, Any]], columns: tuple[str, ...]) -> None:
        ordered = [{c: rows[i].get(c) for c in columns} for i in _by_number(rows)]
        write_records([ordered], path, file_format="jsonl", columns=columns)

    # ---- run -----------------------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        """Map the ids not mapped yet and write both tables; return what was mapped and asked.

        :param context: the task's context (unused).
        """
        root = self._root()
        given = self._given_ids()
        hook = self._v3_hook()
        campaigns_path, contacts_path = root / CAMPAIGN_XREFS, root / CONTACT_XREFS
        check_writable(campaigns_path)
        campaigns = self._table(campaigns_path, CAMPAIGN_XREF_COLUMNS)
        contacts = self._table(contacts_path, CONTACT_XREF_COLUMNS) if self.contacts else {}
        folders = self._v2_folders(root) if given is None or self.contacts else {}
        wanted = given if given is not None else _by_number(folders)
        if not wanted:
            raise ConstantContactInputError(
                f"no v2 campaign folder (campaign/<report>/campaign_id=<digits>/) under {plain_uri(root)}; give "
                "v2_campaign_ids, or run this after the v2 daily DAG's last run (nothing was requested)")
        wanted_contacts = _by_number(self._contact_ids(root, (f for i in wanted for f in folders.get(i, ())))
                                     ) if self.contacts else []
        new = [i for i in wanted if i not in campaigns]
        new_contacts = [i for i in wanted_contacts if i not in contacts]
        cost = math.ceil(len(new) / MAX_XREF_IDS) + math.ceil(len(new_contacts) / MAX_CONTACT_XREF_IDS)
        log.info("Cross-reference: %d v2 campaigns (%d mapped before) and %d v2 contacts (%d mapped before); "
                 "%d requests (%d campaigns a request, %d contacts a request; ids an answer does not map are asked "
                 "once more)", len(wanted), len(wanted) - len(new),
                 len(wanted_contacts), len(wanted_contacts) - len(new_contacts), cost, MAX_XREF_IDS,
                 MAX_CONTACT_XREF_IDS)
        sent_before = hook.transport.requests_sent if new or new_contacts else 0
        if new:
            found = {x["v2_email_campaign_id"]: x for x in hook.get_campaign_xrefs(new)}
            for v2_id in new:
                x = found.get(v2_id, {})
                campaigns[v2_id] = {"v2_campaign_id": v2_id, "campaign_id": x.get("campaign_id"),
                                    "campaign_activity_id": x.get("campaign_activity_id")}
            self._write(campaigns_path, campaigns, CAMPAIGN_XREF_COLUMNS)  # kept even if the contacts fail next
        if new_contacts:
            found = {x["sequence_id"]: x for x in hook.get_contact_xrefs(new_contacts)}
            for v2_id in new_contacts:
                contacts[v2_id] = {"v2_contact_id": v2_id, "contact_id": found.get(v2_id, {}).get("contact_id")}
        if new_contacts or (self.contacts and not contacts_path.fs.exists(contacts_path.path)):
            self._write(contacts_path, contacts, CONTACT_XREF_COLUMNS)
        requests = hook.transport.requests_sent - sent_before if new or new_contacts else 0
        unmapped = [i for i in wanted if not campaigns[i].get("campaign_activity_id")]
        unknown_contacts = [i for i in wanted_contacts if not contacts[i].get("contact_id")]
        if unmapped or unknown_contacts:
            log.warning("The v3 API knows %d of these v2 campaigns (%s) and %d of these v2 contacts not: their "
                        "rows keep empty v3 ids, and the views NULL ones; delete a row to ask for it again",
                        len(unmapped), ", ".join(unmapped[:10]), len(unknown_contacts))
        return {"campaigns": len(wanted), "contacts": len(wanted_contacts), "asked_campaigns": len(new),
                "asked_contacts": len(new_contacts), "requests": requests, "unmapped_campaigns": unmapped[:MAX_LISTED],
                "unmapped_contacts": len(unknown_contacts), "campaigns_uri": plain_uri(campaigns_path),
                "contacts_uri": plain_uri(contacts_path) if self.contacts else None}


def _column(name: str, data: bytes, column: str) -> list[Any]:
    """The values of one column of a v2 file's bytes (JSON lines, CSV, gzip of either, or Parquet)."""
    if name.endswith(".gz"):
        data = gzip.decompress(data)
        name = name[:-3]
    if name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ConstantContactError(f"{name} is Parquet: reading it needs pyarrow") from None
        return pq.read_table(io.BytesIO(data), columns=[column]).column(column).to_pylist()
    text = data.decode("utf-8")
    if name.endswith(".csv"):
        return [row.get(column) for row in csv.DictReader(io.StringIO(text))]
    return [json.loads(line).get(column) for line in text.splitlines() if line.strip()]
