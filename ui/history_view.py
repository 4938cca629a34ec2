"""The History page's data, pure (no st.* calls; unit-tested directly): the run filters as a
store.runs.list_runs query, the experiments and runs tables (key columns first, each row linked to
its experiment's comparison or the run's detail page), the failed runs with their reasons, and
reading an uploaded E6 results file into a new experiment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import pandas as pd

from bench.experiments import run_titles
from bench.formatting import as_finite, format_cost, repeat_label
from core.errors import InputError
from core.status import ACTIVE_STATUSES, FAILED_STATUSES
from store.db import Database
from ui.labels import COMPARE_PATH, DETAIL_PATH, page_url, text_of, when

RUN_LINK = "Run"
"""Column of the runs tables linking to the run's detail page (shows the short run id)."""
EXPERIMENT_LINK = "Compare"
"""Column of the experiments table linking to its comparison."""
JOB_TIME = "Job time"
"""The History column of a run's job seconds (bench.figures)."""
RUN_KEY_COLUMNS = (RUN_LINK, "Clip", "Candidate", "Status", JOB_TIME, "GPU cost")
"""The runs table's key columns: first, so a narrow screen shows them without scrolling."""
EXPERIMENT_KEY_COLUMNS = ("Experiment", "Ran at", "Runs", "Succeeded", "Failed")
"""The experiments table's key columns."""

HISTORY_RUN_LIMIT = 1000
"""Most runs the History page lists at once (newest first); filters reach the others."""


def parse_date(text: str | None) -> dt.date | None:
    """An ISO date from the URL ('2026-12-04'), None when absent or not a date. Raises nothing."""
    try:
        return dt.date.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


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


def experiments_display(experiments: pd.DataFrame) -> pd.DataFrame:
    """The experiments table, newest first: name, when it ran (an import: when its file says),
    run counts, a link to its comparison, then what is active, origin, backend, model, preset."""
    return pd.DataFrame([{
        "Experiment": r.get("name"), "Ran at": when(r.get("created_at")),
        "Runs": int(r.get("runs", 0)), "Succeeded": int(r.get("succeeded", 0)),
        "Failed": sum(int(r.get(s, 0)) for s in FAILED_STATUSES),
        "Active": sum(int(r.get(s, 0)) for s in ACTIVE_STATUSES),
        EXPERIMENT_LINK: page_url(COMPARE_PATH, experiment=str(r.get("id"))),
        "Origin": r.get("origin"), "Backend": text_of(r.get("backend")),
        "Model": text_of(r.get("model")), "Preset": text_of(r.get("preset")),
        "Notes": text_of(r.get("notes")), "Tags": ", ".join(_tags(r)),
    } for r in experiments.to_dict("records")],
        columns=[*EXPERIMENT_KEY_COLUMNS, EXPERIMENT_LINK, "Active", "Tags", "Notes", "Origin",
                 "Backend", "Model", "Preset"])


def _tags(row: dict) -> list[str]:
    tags = row.get("tags")
    return [str(t) for t in tags] if tags is not None and not isinstance(tags, float) else []


def search_experiments(experiments: pd.DataFrame, text: str) -> pd.DataFrame:
    """The experiments whose name, notes or tags hold every word of text (case-insensitive);
    all of them for empty text."""
    words = str(text or "").lower().split()
    if not words or experiments.empty:
        return experiments
    haystacks = [" ".join([text_of(r.get("name")), text_of(r.get("notes")), *_tags(r)]).lower()
                 for r in experiments.to_dict("records")]
    keep = [all(w in hay for w in words) for hay in haystacks]
    return experiments[keep]


def runs_display(runs: pd.DataFrame) -> pd.DataFrame:
    """The History table of runs as bench.experiments.read_runs gives them: one readable row per
    run, key columns first (a link to the run's detail page, clip, candidate, status, job
    seconds, cost), then repeat, device, model, engine, experiment and when it ran."""
    rows = []
    for r in runs.to_dict("records"):
        rows.append({
            RUN_LINK: page_url(DETAIL_PATH, run=str(r.get("id"))),
            "Clip": r.get("clip"), "Candidate": r.get("candidate"),
            "Status": r.get("status"),
            JOB_TIME: as_finite(r.get("job_seconds")),
            "GPU cost": format_cost(as_finite(r.get("cost"))),
            "Repeat": repeat_label(r.get("repeat_index")),
            "Device": text_of(r.get("device_name")),
            "Model": text_of(r.get("model")), "Engine": text_of(r.get("engine")),
            "Experiment": r.get("experiment_name"), "Ran at": when(r.get("created_at")),
        })
    return pd.DataFrame(rows, columns=[*RUN_KEY_COLUMNS, "Repeat", "Device", "Model", "Engine",
                                       "Experiment", "Ran at"])


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Failed and interrupted runs with their reasons, each linked to its detail page."""
    if runs.empty:
        return pd.DataFrame()
    bad = runs[runs["status"].isin(FAILED_STATUSES)]
    titles = run_titles(bad)
    return pd.DataFrame([{RUN_LINK: page_url(DETAIL_PATH, run=str(r.get("id"))),
                          "Run name": titles.get(str(r.get("id")), ""), "Status": r.get("status"),
                          "Reason": text_of(r.get("error")) or "(no reason stored)",
                          "Experiment": r.get("experiment_name")}
                         for r in bad.to_dict("records")])


def run_id_of_link(link: str) -> str:
    """The run id a RUN_LINK cell points at."""
    return link.rsplit("run=", 1)[-1]


LINK_ID_PATTERN = r"[?&](?:run|experiment)=(\w{8})"
"""What a link column shows of its URL: the short id (bench.experiments.short_id)."""


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
