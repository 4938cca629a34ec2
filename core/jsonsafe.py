"""Values made safe for JSON, in one place: JSON cannot carry NaN or infinities, and values read
from DuckDB or pandas arrive as numpy scalars, timestamps and NaT."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any


def json_safe(value: Any) -> Any:
    """value as plain JSON-ready Python, recursively: non-finite floats, NaN and NaT -> None,
    numpy scalars -> Python numbers, dates and times -> ISO text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if type(value).__name__ == "NaTType":  # pandas' missing time (an instance of datetime)
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return json_safe(value.item())
    return value
