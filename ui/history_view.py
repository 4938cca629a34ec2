"""The History page's data, pure (no st.* calls; unit-tested directly): the run filters as a
store.runs.list_runs query, the runs table, the failed runs with their reasons, and reading an
uploaded E6 results file into a new experiment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import pandas as pd

from core.errors import InputError
from core.status import FAILED_STATUSES
from store.db import Database
from ui.charts import format_cost, format_seconds
from ui.labels import text_of

HISTORY_RUN_LIMIT = 1000
"""Most runs the History page lists at once (newest first); filters reach the others."""


def date_bounds(start: dt.date | None, end: dt.date | None) -> tuple[dt.datetime | None,
                                                                     dt.datetime | None]:
    """(since, until) datetimes for list_runs from an inclusive date range (UTC days)."""
    since = dt.datetime.combine(start, dt.time()) if start else None
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time()) if end else None
    return since, until


def runs_query(gpus: Sequence[str] = (), models: Sequence[str] = (), statuses: Sequence[str] = (),
               start: dt.date | None = None, end: dt.date | None = None,
               limit: int | None = HISTORY_RUN_LIMIT) -> dict[str, Any]:
    """The keyword arguments of store.runs.list_runs for the newest `limit` runs matching every
    non-empty filter (an empty selection means all). Raises nothing."""
    since, until = date_bounds(start, end)
    return dict(gpus=list(gpus) or None, models=list(models) or None,
                statuses=list(statuses) or None, since=since, until=until, limit=limit)


def runs_display(runs: pd.DataFrame) -> pd.DataFrame:
    """The History table: one readable row per run."""
    rows = []
    for r in runs.to_dict("records"):
        seconds = r.get("billed_seconds")
        if seconds is None or pd.isna(seconds):
            seconds = r.get("total_seconds")
        created = r.get("created_at")
        rows.append({
            "Experiment": r.get("experiment_name"),
            "Created": pd.Timestamp(created).strftime("%Y-%m-%d %H:%M") if created is not None
            and not pd.isna(created) else "",
            "Clip": r.get("clip"), "GPU": r.get("gpu"),
            "Device": text_of(r.get("device_name")),
            "Model": text_of(r.get("model")), "Engine": text_of(r.get("engine")),
            "Repeat": int(r["repeat_index"]) + 1 if r.get("repeat_index") is not None else None,
            "Status": r.get("status"),
            "Time": format_seconds(None if seconds is None or pd.isna(seconds) else float(seconds)),
            "GPU cost": format_cost(None if r.get("cost_gpu") is None or pd.isna(r.get("cost_gpu"))
                                    else float(r["cost_gpu"])),
            "Run id": r.get("id"),
        })
    return pd.DataFrame(rows)


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Failed and interrupted runs with their reasons."""
    if runs.empty:
        return pd.DataFrame()
    bad = runs[runs["status"].isin(FAILED_STATUSES)]
    return pd.DataFrame([{"Experiment": r.get("experiment_name"), "Clip": r.get("clip"),
                          "GPU": r.get("gpu"), "Status": r.get("status"),
                          "Reason": text_of(r.get("error")) or "(no reason stored)",
                          "Run id": r.get("id")}
                         for r in bad.to_dict("records")])


def import_e6_upload(db: Database, data: bytes, name: str) -> str:
    """Store an uploaded E6 results file as a new experiment; return its id. The upload is judged
    by its content and size, never its name: UTF-8 JSON in the E6 shape, within bench.e6's bounds.
    Raises InputError (one line) for anything else, StorageError."""
    from bench.e6 import MAX_FILE_BYTES, parse_e6_bytes
    from bench.e6_import import import_e6

    label = " ".join(str(name).split())[:120] or "upload"
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_FILE_BYTES:
        raise InputError(f"{label} is over {MAX_FILE_BYTES // 1_000_000} MB; a results file is far smaller")
    try:
        return import_e6(db, parse_e6_bytes(bytes(data), label), label)
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith(label) else f"{label}: {message}") from None
