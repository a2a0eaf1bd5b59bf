"""Making odd values writable: lone surrogates, NaN and infinities, nested values.

The writers take a fast path per batch and come here only when it fails (or, for CSV, when a batch holds
something other than plain text), so clean data pays nothing for these rules.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

# Cells a spreadsheet would read as a formula (OWASP "CSV Injection"): prefixed with a single quote.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _line_encoder() -> Callable[[Any], str]:
    """Compact, strict JSON for one record (NaN and infinities raise ``ValueError``).

    ``JSONEncoder.encode`` builds a new C encoder on every call; building one for all records halves the
    cost per record, with identical output.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without CPython's accelerator
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False).encode
    # markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan
    encoder = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    return lambda record: "".join(encoder(record, 0))


encode_json = _line_encoder()


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (a surrogate pair becomes its character)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean(value: Any) -> Any:
    """``value`` made encodable: lone surrogates replaced, NaN and infinities as ``None``, recursively."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {clean_text(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def json_line(record: Any) -> str:
    """One record as a valid JSON line, whatever it holds."""
    return encode_json(clean(record))


def cell_text(value: Any, formula_guard: bool) -> str:
    """One CSV cell: text as is (cleaned), nested values as JSON, booleans as ``true``/``false``, missing or
    NaN as empty. With ``formula_guard``, a cell a spreadsheet would run as a formula gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json_line(value)  # starts with { or [: never a formula
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value) if math.isfinite(value) else ""
    else:
        text = clean_text(value if isinstance(value, str) else str(value))
    return "'" + text if formula_guard and text.startswith(FORMULA_TRIGGERS) else text
