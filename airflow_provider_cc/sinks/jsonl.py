"""JSON lines: one compact JSON object per record, as the API sent it (ids as strings, dates in its canonical form)."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

from airflow_provider_cc.sinks.cells import encode_json, json_line

if TYPE_CHECKING:
    from collections.abc import Iterable


def write_jsonl(stream: IO[bytes], batches: Iterable[list[dict]], columns: tuple[str, ...], **_: Any) -> int:
    """Write every batch as JSON lines; return the record count.

    A batch is encoded whole on the fast path. One holding NaN or infinities (not JSON) or a lone surrogate
    (not UTF-8) is encoded again record by record with those values made valid (``null``, U+FFFD), so every
    line is valid JSON and clean batches pay nothing for it.
    """
    count = 0
    for batch in batches:
        if not batch:
            continue
        try:
            data = ("\n".join(map(encode_json, batch)) + "\n").encode()
        except ValueError:  # NaN/Infinity, or a lone surrogate (UnicodeEncodeError is a ValueError)
            data = ("\n".join(map(json_line, batch)) + "\n").encode()
        stream.write(data)
        count += len(batch)
    return count
