"""How the pages name experiments and runs in tables, pickers and captions."""

from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd


def experiment_label(row: Mapping[str, Any]) -> str:
    """'name — 2026-11-26 14:05 (6/7 succeeded)' for an experiments row."""
    created = row.get("created_at")
    when = pd.Timestamp(created).strftime("%Y-%m-%d %H:%M") if created is not None and \
        not pd.isna(created) else "?"
    return f"{row.get('name')} — {when} ({row.get('succeeded', 0)}/{row.get('runs', 0)} succeeded)"


def variant_label(row: Mapping[str, Any]) -> str:
    """'GPU · model/engine · #repeat' of a run row."""
    repeat = row.get("repeat_index")
    suffix = f" · #{int(repeat) + 1}" if repeat is not None and not pd.isna(repeat) else ""
    return (f"{row.get('gpu')} · {text_of(row.get('model')) or '?'}/"
            f"{text_of(row.get('engine')) or '?'}{suffix}")


def run_label_long(row: Mapping[str, Any]) -> str:
    """'clip · GPU · model/engine · #repeat · status' of a run row."""
    return f"{row.get('clip')} · {variant_label(row)} · {row.get('status')}"


def text_of(value: Any) -> str:
    """A cell as display text: '' for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    return str(value)
