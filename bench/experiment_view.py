"""Stored experiments as the plain dicts the analysis and the exports read (store rows -> dicts).

One place that knows both the store's column names and report.py's dict keys; the CLI and the
dashboard both read experiments through it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from bench.analysis import DEFAULT_TOLERANCE, Analysis
from bench.errors import InputError
from bench.report import analyse_runs, experiment_to_e6, findings_markdown
from store import runs as store_runs
from store.db import Database
from workers.job import STAGES

STAGE_COLUMNS = {stage: f"{stage}_seconds" for stage in (*STAGES, "total")}
"""Stage name -> runs column holding its seconds."""


def _clean(value: Any) -> Any:
    """NaN/NaT -> None, numpy scalars -> Python, timestamps -> ISO text."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def _json(text: Any) -> Any:
    if isinstance(text, str) and text:
        try:
            return json.loads(text)
        except ValueError:
            return None
    return text if isinstance(text, (dict, list)) else None


def run_dict(row: dict[str, Any]) -> dict[str, Any]:
    """One runs row as the run dict report.py reads (plus every stored column)."""
    run = {k: _clean(v) for k, v in row.items()}
    run["run_id"] = run.get("id")
    run["stage_total"] = run.get("total_seconds")
    run["stages"] = {stage: run.get(col) for stage, col in STAGE_COLUMNS.items()
                     if run.get(col) is not None}
    if run.get("psnr") is not None:
        run["fidelity"] = {k: run.get(k) for k in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim",
                                                   "fidelity_frames")}
    run.pop("result_json", None)
    return run


def runs_frame_to_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every row of a list_runs DataFrame as a run dict."""
    return [run_dict(row) for row in frame.to_dict("records")]


def experiment_dict(db: Database, experiment_id: str) -> dict[str, Any]:
    """A stored experiment as the dict report.py reads. Raises InputError for an unknown id."""
    row = store_runs.get_experiment(db, experiment_id)
    if row is None:
        raise InputError(f"no experiment {experiment_id!r} in {db.path}")
    data = {k: _clean(getattr(row, k)) for k in row.__dataclass_fields__}
    data["experiment_id"] = row.id
    data["plan"] = _json(row.plan_json) or {}
    data["price_table"] = _json(row.price_table_json)
    data["price_date"] = row.price_table_date
    data.pop("plan_json", None)
    data.pop("price_table_json", None)
    return data


def run_summaries(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    """The runs of an experiment as run dicts (the CLI's --json shape: gpu, clip, status, error,
    stages, cost, ...)."""
    runs = runs_frame_to_dicts(store_runs.list_runs(db, experiment_id=experiment_id))
    for run in runs:
        run["cost"] = run.get("cost_gpu")
    return runs


def analyse_experiment(db: Database, experiment_id: str, tolerance: float = DEFAULT_TOLERANCE,
                       run_ids: list[str] | None = None) -> tuple[Analysis | None, str | None]:
    """(analysis, None), or (None, why there is none yet: e.g. no run has succeeded)."""
    experiment = experiment_dict(db, experiment_id)
    frame = store_runs.list_runs(db, experiment_id=experiment_id, run_ids=run_ids)
    try:
        return analyse_runs(experiment, runs_frame_to_dicts(frame), tolerance), None
    except InputError as exc:
        return None, str(exc)


def export_experiment(db: Database, experiment_id: str, fmt: str) -> dict[str, Any] | str:
    """E6-format JSON dict ('json') or markdown findings ('md'). Raises InputError."""
    experiment = experiment_dict(db, experiment_id)
    runs = runs_frame_to_dicts(store_runs.list_runs(db, experiment_id=experiment_id))
    if fmt == "json":
        return experiment_to_e6(experiment, runs)
    if fmt == "md":
        analysis = analyse_runs(experiment, runs)
        return findings_markdown(analysis, experiment)
    raise InputError(f"unknown export format {fmt!r}; choose json or md")
