"""History as the estimate reads it: every succeeded run of the store with its figures
(bench.experiments.read_runs_in: price card, job and start-up seconds) and the shape it ran
(model, engine, precision, output size; an imported file's from its config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from bench.estimate import MeasuredRun, PlanEstimate, estimate_plan
from bench.experiments import plan_dict, read_runs_in
from bench.formatting import as_finite
from bench.plan import Plan
from bench.pricing import PriceTable
from core.resources import cpu_cores
from store import runs as store_runs
from store.db import Database
from workers.catalog import catalog_name


def _output(run: Mapping[str, Any], plan: Mapping[str, Any]) -> tuple[int, int] | None:
    width, height = as_finite(run.get("output_width")), as_finite(run.get("output_height"))
    if width is None or height is None:
        width, height = as_finite(plan.get("output_width")), as_finite(plan.get("output_height"))
    if (width is None or height is None) and isinstance(plan.get("output"), str):
        w, _, h = plan["output"].lower().partition("x")
        width, height = as_finite(_number(w)), as_finite(_number(h))
    return (int(width), int(height)) if width and height else None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def measured_runs(db: Database) -> list[MeasuredRun]:
    """Every succeeded run with job seconds and frames, as the estimate uses it. Raises
    InputError for a malformed stored price table, StorageError."""
    runs = store_runs.list_runs(db, statuses=["succeeded"])
    if runs.empty:
        return []
    plans = {str(e): plan_dict(store_runs.get_experiment(db, str(e)))
             for e in dict.fromkeys(runs["experiment_id"])}
    out = []
    for run in read_runs_in(db, runs).to_dict("records"):
        seconds, frames = as_finite(run.get("job_seconds")), as_finite(run.get("frames_out"))
        if not seconds or not frames:
            continue
        plan = plans.get(str(run.get("experiment_id")), {})
        out.append(MeasuredRun(
            card=str(run.get("price_card") or run.get("device") or run.get("gpu")),
            model=catalog_name(run.get("model") or plan.get("model")),
            engine=str(run.get("engine") or plan.get("engine") or "") or None,
            precision=str(run["precision"]) if run.get("precision") else None,
            output=_output(run, plan), frames=int(frames), job_seconds=seconds,
            startup_seconds=as_finite(run.get("startup_seconds"))))
    return out


def estimate_in(db_path: Path, plan: Plan, prices: PriceTable) -> PlanEstimate:
    """The plan's estimate from the history in the database at `db_path` (none when there is no
    file: it is not created), a local CPU priced at this machine's cores. Raises InputError,
    StorageError."""
    history = measured_runs(Database(db_path)) if Path(db_path).is_file() else []
    return estimate_plan(plan, history, prices, cpu_cores())
