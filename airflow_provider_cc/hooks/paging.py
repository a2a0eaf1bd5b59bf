"""The one paging loop: follows ``meta.pagination.next_link`` and yields records page by page."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_cc.exceptions import ConstantContactError
from airflow_provider_cc.reports import ID_FIELDS

if TYPE_CHECKING:
    from airflow_provider_cc.hooks.transport import Transport
    from airflow_provider_cc.reports import Report
    from airflow_provider_cc.window import Window

log = logging.getLogger(__name__)


def _normalise_ids(records: list[dict]) -> None:
    """Ids as strings. An endpoint sends each id with one JSON type, so a page's first record says which
    keys need converting; per record that leaves one check per such key."""
    if not records:
        return
    first = records[0]
    numeric = [key for key in ID_FIELDS if first.get(key).__class__ is int]
    for key in numeric:
        for record in records:
            value = record.get(key)
            if value.__class__ is int:
                record[key] = str(value)


def _page_parts(body: Any, what: str) -> tuple[list[dict], str | None]:
    """``(results, next_link)`` of a paged body; a bare array is a single last page."""
    if isinstance(body, list):
        return body, None
    if not isinstance(body, Mapping):
        raise ConstantContactError(f"{what}: unexpected response shape ({type(body).__name__})")
    results = body.get("results") or []
    pagination = (body.get("meta") or {}).get("pagination") or {}
    return results, pagination.get("next_link") or None


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
    """

    def __init__(self, transport: Transport, url: str, params: Mapping[str, Any], *, label: str,
                 window: Window | None = None, report: Report | None = None) -> None:
        self.label = label
        self.pages = 0
        self.fetched = 0
        self.records = 0
        self.undated = 0
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
        previous = None
        while True:
            body = transport.get_json(url, params, what=f"{self.label} (page {self.pages + 1})")
            results, next_link = _page_parts(body, self.label)
            self.pages += 1
            self.fetched += len(results)
            _normalise_ids(results)
            if window is not None:
                results, undated = window.filter(results, report)
                self.undated += undated
            self.records += len(results)
            elapsed = max(time.monotonic() - started, 1e-9)
            log.info("%s: page %d, %d records so far, %.0f records/s", self.label, self.pages,
                     self.records, self.fetched / elapsed)
            if results:
                yield results
            if not next_link:
                break
            url = transport.resolve(next_link, what=self.label)
            if url == previous:
                raise ConstantContactError(f"{self.label}: the API returned the same next_link twice; "
                                           "stopping instead of looping forever")
            previous, params = url, None
        if self.undated:
            log.warning("%s: %d records had no readable date and were left out", self.label, self.undated)
