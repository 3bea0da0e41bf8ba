"""Keep CPR-like numbers out of everything the quality stage writes (results, Data Docs).

An expectation that finds a CPR number in a text column reports the offending value; that
value must not be copied into ``quality.validation_result`` or the HTML. The pattern here is
deliberately wider than the expectation's (no word boundaries): any 6+4 digit run goes.
"""

from __future__ import annotations

import math
import re
from typing import Any

CPR_LIKE = re.compile(r"\d{6}-?\d{4}")
REDACTED = "[CPR-lignende tal fjernet]"


def redact_text(text: str) -> str:
    """``text`` with every CPR-like digit run replaced by a marker."""
    return CPR_LIKE.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """A JSON-safe copy of ``value`` with CPR-like strings redacted, at any depth.

    NaN/NaT become None; dates and other objects become strings (then redacted too).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return REDACTED if CPR_LIKE.search(str(value)) else value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_text(str(k)): redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [redact(v) for v in value]
    if _is_missing(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return redact(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return redact_text(str(value))


def _is_missing(value: Any) -> bool:
    """True for pandas/numpy missing markers (NaT, NA, nan)."""
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def redact_in_place(obj: Any) -> Any:
    """Redact CPR-like strings inside GX result dicts/lists without changing their types.

    Used on GX result objects before they are stored for Data Docs: GX renders them later,
    so the structure (dict keys, value types other than strings) must stay as it is.
    """
    if isinstance(obj, dict):
        for k, v in list(obj.items()):
            obj[k] = redact_in_place(v)
        return obj
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            obj[i] = redact_in_place(v)
        return obj
    if isinstance(obj, tuple):
        return tuple(redact_in_place(v) for v in obj)
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, int) and not isinstance(obj, bool) and CPR_LIKE.search(str(obj)):
        return REDACTED
    return obj
