"""How money, durations and repeat numbers are written everywhere (CLI tables, dashboard, exports):
one function each, so the same value reads the same on every page and in every file."""

from __future__ import annotations

import math


def format_cost(value: float | None) -> str:
    """'$0.0304', '$0.00009261' (4 significant digits below $1, no exponent), '$12.35', '$1,234';
    '—' for None/NaN."""
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "$0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 1:
        decimals = min(12, 3 - math.floor(math.log10(value)))
        text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
        return f"{sign}${text}" if float(text) else "$0"
    if value < 1000:
        return f"{sign}${value:,.2f}"
    return f"{sign}${value:,.0f}"


def format_seconds(value: float | None) -> str:
    """'185.2 s'; '—' for None/NaN."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.1f} s" if abs(value) >= 0.1 or value == 0 else f"{value:.3f} s"


def as_finite(value: object) -> float | None:
    """A finite float from a table cell or JSON value; None for None, NaN, infinities, booleans
    and anything that is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_rate(usd_per_second: float) -> str:
    """A per-second price written out in full: '$0.000164', '$0.0000131' (no exponent)."""
    return "$" + f"{usd_per_second:.10f}".rstrip("0").rstrip(".")


def format_duration(seconds: float | None) -> str:
    """A wall-clock span for progress lines: '8 s', '1:05', '1:02:03'; '—' for None/NaN and
    negative values."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def repeat_label(index: object) -> str:
    """How every reader (CLI, dashboard, exports) names a repeat: 'repeat 1' for the first
    (stored repeat_index 0); '' when the index is unknown."""
    number = as_finite(index)
    return "" if number is None else f"repeat {int(number) + 1}"
