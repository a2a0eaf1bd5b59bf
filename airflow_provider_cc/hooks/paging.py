"""The one paging loop: follows each page's next link and yields records page by page.

A v2 page has the shape ``{"meta": {"pagination": {"next_link": ...}}, "results": [...]}``; a v3 page
``{"<items>": [...], "_links": {"next": {"href": ...}}}`` (:func:`v3_page_parts`). Anything else is retried,
then fails, and is never taken for the last page. A next link that points to a page already read, or a
chain far longer than any report, stops the stream before a record is written twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_cc.exceptions import ConstantContactDataError, ConstantContactPagingError
from airflow_provider_cc.hooks.transport import ResponseShapeError
from airflow_provider_cc.reports import ID_FIELDS
from airflow_provider_cc.window import format_api, record_instant

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_cc.hooks.transport import Transport
    from airflow_provider_cc.reports import Report
    from airflow_provider_cc.stopping import Stopper
    from airflow_provider_cc.window import Window

log = logging.getLogger(__name__)

# A key's whole daily quota: no report of one campaign or contact needs more pages in one stream.
MAX_PAGES = 10_000
# Pages without records that still point to a next page, in a row (the API's pages are full but the last).
MAX_EMPTY_PAGES = 5
# Records in a row dated before a newest-first stream's stop_before that end it: one is not enough, since a
# stray record (the API's order broken once) would end the report early; two cost an extra page only when the
# first older record is the last of its page.
STOP_AFTER_OLDER = 2
# A JSON number above this lost digits in the sender's double: as an id it would name another record.
MAX_EXACT_FLOAT = 2**53

# v3 ids: UUIDs as strings, and link ids (``url_id``) that the spec types as strings but a server may send as
# numbers; xrefs name the v2 campaign id.
V3_ID_FIELDS: tuple[str, ...] = ("campaign_id", "campaign_activity_id", "contact_id", "url_id",
                                 "v2_email_campaign_id")

_ID_OK = {str, type(None)}
_ID_INT = {int, str, type(None)}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", str: "a string", int: "a number", float: "a number", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def _id_text(value: Any, key: str, label: str) -> str:
    """An id as text. Integral numbers (``12``, ``12.0``) convert; true/false and fractions are data errors:
    they cannot be a Constant Contact id, and a silent ``"True"`` or ``"1.5"`` would corrupt joins; so are
    numbers too large for a double to hold exactly (the digits would be another id's)."""
    if value.__class__ is int:
        return str(value)
    if value.__class__ is float and value.is_integer() and abs(value) <= MAX_EXACT_FLOAT:
        return str(int(value))
    raise ConstantContactDataError(
        f"{label}: a record's {key} is {value!r:.60} ({_kind(value)}), not an id (a whole number or a string)")


def normalise_ids(records: list[Any], label: str, id_fields: tuple[str, ...] = ID_FIELDS) -> None:
    """Check that every result is an object and turn its id fields into strings, in place.

    Per page and per id field, C-level passes collect the values and their types; only a page holding a
    non-string id touches its records in Python, so string-id pages (the common case) cost microseconds.
    """
    if set(map(type, records)) - {dict}:
        raise ResponseShapeError("results holds values that are not records (JSON objects)")
    for key in id_fields:
        values = list(map(dict.get, records, repeat(key)))
        kinds = set(map(type, values))
        if kinds <= _ID_OK:
            continue
        if kinds <= _ID_INT:
            for record, value in zip(records, values, strict=True):
                if value.__class__ is int:
                    record[key] = str(value)
            continue
        for record, value in zip(records, values, strict=True):
            if value is not None and value.__class__ is not str:
                record[key] = _id_text(value, key, label)


def page_parts(body: Any, label: str) -> tuple[list[dict], str | None]:
    """``(results, next_link)`` of a v2 page, ids normalised; :class:`ResponseShapeError` if not a page."""
    if body.__class__ is not dict:
        raise ResponseShapeError(f"expected a JSON object with meta and results, got {_kind(body)}")
    results = body.get("results")
    if results.__class__ is not list:
        raise ResponseShapeError("it has no results" if "results" not in body else
                                 f"results is {_kind(results)}, not an array")
    meta = body.get("meta")
    if meta.__class__ is not dict:
        raise ResponseShapeError(f"meta is {_kind(meta)}" + ("" if "meta" in body else " (missing)"))
    pagination = meta.get("pagination")
    if pagination.__class__ is not dict:
        raise ResponseShapeError(f"meta.pagination is {_kind(pagination)}, not an object")
    link = pagination.get("next_link")
    if link is not None and link.__class__ is not str:
        raise ResponseShapeError(f"meta.pagination.next_link is {_kind(link)}, not a link")
    normalise_ids(results, label)
    return results, link or None


def v3_page_parts(body: Any, label: str, *, items: str) -> tuple[list[dict], str | None]:
    """``(records, next href)`` of a v3 page whose records are under ``items``; extra top-level keys are
    tolerated (a tracking page may also name its activity), a missing or null ``_links``/``next``/``href``
    ends the stream; :class:`ResponseShapeError` if not a page."""
    if body.__class__ is not dict:
        raise ResponseShapeError(f"expected a JSON object with {items}, got {_kind(body)}")
    results = body.get(items)
    if results.__class__ is not list:
        raise ResponseShapeError(f"it has no {items}" if items not in body else
                                 f"{items} is {_kind(results)}, not an array")
    links = body.get("_links")
    href = None
    if links is not None:
        if links.__class__ is not dict:
            raise ResponseShapeError(f"_links is {_kind(links)}, not an object")
        following = links.get("next")
        if following is not None:
            if following.__class__ is not dict:
                raise ResponseShapeError(f"_links.next is {_kind(following)}, not an object")
            href = following.get("href")
            if href is not None and href.__class__ is not str:
                raise ResponseShapeError(f"_links.next.href is {_kind(href)}, not a link")
    normalise_ids(results, label, V3_ID_FIELDS)
    return results, href or None


PageParts = Callable[..., "tuple[list[dict], str | None]"]  # (body, label=...) -> (records, next link)


def _checked_page(parts: Callable[[Any], tuple[list[dict], str | None]], check_items: Callable[[list[dict]], None],
                  body: Any) -> tuple[list[dict], str | None]:
    results, link = parts(body)
    check_items(results)
    return results, link


def _link_key(url: str, params: Mapping[str, Any] | None) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What identifies a page request: its path and query (api_key aside), order- and encoding-free."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, str(v)) for k, v in (params or {}).items()]
    return parts.path.rstrip("/"), tuple(sorted(pair for pair in query if pair[0] != "api_key"))


class RecordStream(Iterator[dict]):
    """The records of a paged report, fetched lazily one page at a time; never the whole report.

    Iterate it for records, or call :meth:`batches` for the per-page lists (what writers use). After
    iteration, ``pages``, ``fetched`` (records the API sent) and ``records`` (records kept) are final.

    :param transport: the hook's transport.
    :param url: absolute URL of the first page.
    :param params: query parameters of the first page only; later pages send just the ``next`` token.
    :param label: safe description for logs and errors, e.g. ``campaign 1100 sends``.
    :param window: keep only records in this window (``None``: keep all).
    :param report: the report, for its date field (``None``: per record type).
    :param max_pages: fail past this many pages (a loop the link check cannot see).
    :param page: splits a decoded page into ``(records, next link)`` (default: the v2 shape).
    :param stop_before: for an API without a server-side time filter that lists the newest activity first
        (v3): the stream ends after a page that lists its records newest first and closes with two records in
        a row dated before this instant (the pair may straddle two pages), so one stray old record never ends
        it; a record listed after an older one is counted in ``out_of_order`` (and logged).
    :param check_items: checks (and may normalise, in place) each page's records; a ``ResponseShapeError``
        from it retries the page like any malformed answer.

    Set ``stopper`` (a :class:`~airflow_provider_cc.stopping.Stopper`) before iterating to have it checked
    before every page request, so a task told to stop sends no further request.
    """

    def __init__(self, transport: Transport, url: str, params: Mapping[str, Any], *, label: str,
                 window: Window | None = None, report: Report | None = None, max_pages: int = MAX_PAGES,
                 page: PageParts = page_parts, check_items: Callable[[list[dict]], None] | None = None,
                 stop_before: datetime | None = None) -> None:
        self.label = label
        self.url = url  # the report's resource, without query (what lineage names); the api_key is never in it
        self.pages = 0
        self.fetched = 0
        self.records = 0
        self.undated = 0
        self.max_pages = max_pages
        self.stopper: Stopper | None = None
        self._page = page
        self._check_items = check_items
        self.stop_before = stop_before
        self.out_of_order = 0  # records listed after an older record (with stop_before): the order broken
        self.later = 0  # records read dated at or after the window's end (a pull then would not have seen them)
        self._batches = self._run(transport, url, dict(params), window, report)
        self._current: Iterator[dict] = iter(())

    def __next__(self) -> dict:
        while True:
            try:
                return next(self._current)
            except StopIteration:
                self._current = iter(next(self._batches))

    def batches(self) -> Iterator[list[dict]]:
        """Non-empty lists of kept records, one per page."""
        return self._batches

    def _run(self, transport: Transport, url: str, params: dict[str, Any] | None,
             window: Window | None, report: Report | None) -> Iterator[list[dict]]:
        started = time.monotonic()
        check = partial(self._page, label=self.label)
        if self._check_items is not None:
            check = partial(_checked_page, check, self._check_items)
        seen = {_link_key(url, params)}
        empty = 0
        order = _Order()  # where the newest-first order stands (with stop_before)
        while True:
            if self.stopper is not None:
                self.stopper.check()
            if self.pages >= self.max_pages:
                raise ConstantContactPagingError(
                    f"{self.label}: the API still returned a next_link after {self.pages:,} pages, more than any "
                    "report holds; stopping instead of paging forever")
            results, next_link = transport.get_json(url, params, what=f"{self.label} (page {self.pages + 1})",
                                                    check=check)
            self.pages += 1
            self.fetched += len(results)
            empty = 0 if results else empty + 1
            ends = False
            if self.stop_before is not None and report is not None:
                ends = self._ends(results, report.date_field, order)
            if window is not None:
                results, undated, later = window.sort_out(results, report)
                self.undated += undated
                self.later += later
            self.records += len(results)
            elapsed = max(time.monotonic() - started, 1e-9)
            log.debug("%s: page %d, %d records so far, %.0f records/s", self.label, self.pages,
                     self.records, self.fetched / elapsed)
            if results:
                yield results
            if not next_link or ends:
                break
            url = transport.resolve(next_link, what=self.label)
            key = _link_key(url, None)
            if key in seen:
                raise ConstantContactPagingError(
                    f"{self.label}: the API's next_link after page {self.pages} points back to a page already "
                    "read (a pagination loop); stopping so that no record is read twice")
            if empty >= MAX_EMPTY_PAGES:
                raise ConstantContactPagingError(
                    f"{self.label}: {empty} pages in a row without records still pointed to a next page; "
                    "stopping instead of paging forever")
            seen.add(key)
            params = None
        if self.undated:
            log.warning("%s: %d records had no readable date and were left out", self.label, self.undated)
        if self.out_of_order:
            log.warning("%s: %d records were listed after an older record: the API did not list this report newest "
                        "first throughout. Each record read was kept or left out by its own date, and the report "
                        "was read on until a page in order closed with two records older than %s; a record of the "
                        "window listed beyond that page would be missed (a look-back margin reads further)",
                        self.label, self.out_of_order, format_api(self.stop_before) if self.stop_before else "-")

    def _ends(self, results: list[dict], field: str, order: _Order) -> bool:
        """Whether the stream ends after this page: the page is in newest-first order (its first record not
        newer than the last one read before it) and the records read end with two in a row dated before
        ``stop_before``. A record listed after an older one is counted in ``out_of_order``, and the first page
        holding one is logged. Undated records take no part."""
        assert self.stop_before is not None
        stop, last, older, breaks = self.stop_before, order.last, order.older, 0
        for when in map(record_instant, map(dict.get, results, repeat(field))):
            if when is None:
                continue
            if last is not None and when > last:
                breaks += 1
            last = when
            older = older + 1 if when < stop else 0
        order.last, order.older = last, older
        if breaks:
            if not self.out_of_order:
                log.warning("%s: page %d lists %d records after an older record (not newest first): reading on, "
                            "each record placed in the window by its own date", self.label, self.pages, breaks)
            self.out_of_order += breaks
        return not breaks and older >= STOP_AFTER_OLDER


@dataclass
class _Order:
    """Where a newest-first stream stands: the date of the last dated record read, and how many records in a
    row, up to it, are dated before the stream's ``stop_before``."""

    last: datetime | None = None
    older: int = 0
