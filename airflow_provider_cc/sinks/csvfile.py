"""CSV: a header with the report's fixed columns, then one row per record; safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
from itertools import chain, repeat
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_cc.sinks.cells import FORMULA_TRIGGERS, cell_text

if TYPE_CHECKING:
    from collections.abc import Iterable

# Where a cell of the csv module's output may start with a formula trigger: at a line start or after a
# comma, optionally inside quotes. It may also match inside a quoted cell: then the batch merely takes the
# exact (slow) path.
_MAYBE_FORMULA = re.compile('(?:^|,)"?[' + "".join(map(re.escape, FORMULA_TRIGGERS)) + "]", re.MULTILINE)
# Values the csv module writes exactly as cell_text does (None as empty, int as digits).
_PLAIN_TYPES = frozenset({str, int, type(None)})
# The csv module quotes a cell holding a character of the line terminator ("\n" here) but not a carriage
# return, which readers take as a line break: cells with one take the exact path, which quotes them.
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _plain(batch: list[dict], columns: tuple[str, ...]) -> bool:
    """Whether every cell of ``columns`` holds text, a whole number or nothing (what the fast path writes).

    Only those cells count: a nested value or NaN in a field left out of the file keeps the fast path. All
    values are checked first, in one pass in C; only when that finds another type are the cells checked.
    """
    if set(map(type, chain.from_iterable(map(dict.values, batch)))) <= _PLAIN_TYPES:
        return True
    return set().union(*(map(type, map(dict.get, batch, repeat(column))) for column in columns)) <= _PLAIN_TYPES


def _quoted(cell: str) -> str:
    """A cell as RFC 4180 writes it: in double quotes (inner ones doubled) when it holds , " CR or LF."""
    return '"' + cell.replace('"', '""') + '"' if _NEEDS_QUOTES.search(cell) else cell


def write_csv(stream: IO[bytes], batches: Iterable[list[dict]], columns: tuple[str, ...], *,
              csv_formula_guard: bool = True, **_: Any) -> int:
    """Write a header and every batch as CSV rows (UTF-8, ``\\n``); return the record count.

    Fields outside ``columns`` are left out, missing ones are empty. Each batch is written on a fast path
    when it holds only text and whole numbers, no carriage return and no cell that starts like a formula;
    otherwise every cell goes through :func:`~airflow_provider_cc.sinks.cells.cell_text` (nested values as
    JSON, NaN as empty, lone surrogates replaced, formulas neutralised with a leading ``'`` unless
    ``csv_formula_guard`` is off) and is quoted as RFC 4180 says.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    stream.write(buffer.getvalue().encode())

    def rows(batch: list[dict]) -> Iterable[Iterable[Any]]:
        return (map(record.get, columns) for record in batch)

    count = 0
    for batch in batches:
        if not batch:
            continue
        buffer.seek(0)
        buffer.truncate()
        text = None
        if _plain(batch, columns):
            writer.writerows(rows(batch))
            text = buffer.getvalue()
            if "\r" in text or (csv_formula_guard and _MAYBE_FORMULA.search(text)):
                text = None
        try:
            data = text.encode() if text is not None else None
        except UnicodeEncodeError:  # a lone surrogate
            data = None
        if data is None:
            data = "".join(",".join([_quoted(cell_text(v, csv_formula_guard)) for v in row]) + "\n"
                           for row in rows(batch)).encode()
        stream.write(data)
        count += len(batch)
    return count
