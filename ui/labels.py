"""How the pages name experiments and runs in tables, pickers, captions and links (pure: no st.*
calls). A run is named the one way bench.experiments.run_titles names it in the CLI and its log
('cpu · fast · 0.3s · repeat 1'); repeats are 'repeat N' from 1 everywhere (bench.formatting)."""

from __future__ import annotations

import math
from typing import Any, Mapping
from urllib.parse import urlencode

import pandas as pd

from bench.experiments import short_id
from bench.formatting import repeat_label

RUN_PATH = "run"
"""URL path of the Run page (dashboard.py)."""
COMPARE_PATH = "compare"
"""URL path of the Compare page."""
HISTORY_PATH = "history"
"""URL path of the History page."""
DETAIL_PATH = "run-detail"
"""URL path of the run detail page (?run=ID)."""


def page_url(path: str, **params: str) -> str:
    """A link to a dashboard page relative to the app's root ('compare?experiment=ID'), for
    markdown links and link columns; it survives a reload and can be shared."""
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{path}?{query}" if query else path


def when(value: Any) -> str:
    """'2026-11-26 14:05' for a stored UTC time; '?' when unknown."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "?"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def experiment_label(row: Mapping[str, Any]) -> str:
    """'name — 2026-11-26 14:05 (6/7 succeeded)' for an experiments row."""
    return (f"{row.get('name')} — {when(row.get('created_at'))} "
            f"({row.get('succeeded', 0)}/{row.get('runs', 0)} succeeded)")


def variant_label(row: Mapping[str, Any]) -> str:
    """'GPU · model/engine · repeat N' of a run row."""
    return " · ".join(p for p in (
        str(row.get("gpu")), f"{text_of(row.get('model')) or '?'}/{text_of(row.get('engine')) or '?'}",
        repeat_label(row.get("repeat_index"))) if p)


def run_label_long(row: Mapping[str, Any]) -> str:
    """A run told apart from every other one in a picker: 'clip · GPU · model/engine · repeat N ·
    status — experiment (2026-11-26 14:05) [1a2b3c4d]'."""
    experiment = text_of(row.get("experiment_name"))
    return (f"{row.get('clip')} · {variant_label(row)} · {row.get('status')}"
            + (f" — {experiment} ({when(row.get('created_at'))})" if experiment else "")
            + f" [{short_id(row.get('id'))}]")


def text_of(value: Any) -> str:
    """A cell as display text: '' for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    return str(value)
