"""An E6-format results file becomes a stored experiment: the mapping from the file's results to
finished run rows (the store itself knows nothing of E6)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

from bench.e6 import E6File, measurements_from_e6, rate_for
from bench.pricing import run_cost
from core.stages import fps as stage_fps
from core.status import SUCCEEDED
from store.db import Database
from store.runs import ExperimentRecord, RunSpec, insert_finished_experiment


def _config_text(config: dict, key: str) -> str | None:
    value = config.get(key)
    return str(value) if isinstance(value, (str, int, float)) else None


def ran_at(e6: E6File) -> dt.datetime | None:
    """When the file says its experiment ran (its ISO timestamp, as UTC), None when it does not
    say or cannot be read. Raises nothing."""
    try:
        moment = dt.datetime.fromisoformat(e6.timestamp.strip())
    except (ValueError, AttributeError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def experiment_record_of(e6: E6File, source_name: str) -> ExperimentRecord:
    """The experiment row of an imported file (origin 'import')."""
    config = e6.config or {}
    return ExperimentRecord(
        name=f"import of {source_name}",
        preset=_config_text(config, "preset"),
        source=_config_text(config, "source") or _config_text(config, "video") or _config_text(config, "input"),
        plan_json=config,
        model=_config_text(config, "model"),
        engine=_config_text(config, "engine"),
        backend=_config_text(config, "backend"),
        price_table_date=e6.timestamp[:10] or None,
        price_table_json=dict(e6.pricing),
        notes=f"imported from {source_name}; experiment timestamp {e6.timestamp or 'unknown'}",
        origin="import",
    )


def import_e6(db: Database, e6: E6File, source_name: str) -> str:
    """Store an E6-format results file as a new experiment (origin 'import') with one finished
    run per result, in one transaction; return the experiment id. The experiment and its runs are
    dated by the file's timestamp (when it ran; the import time when the file has none). Each run
    keeps the result's status and error; its job (and total and billed) seconds are its elapsed
    time, its fps frames / elapsed (core.stages.fps), and cost_gpu is elapsed x the GPU's rate (the file's pricing, else the catalog's; a failed run of an
    unknown GPU has None). A cold start is recorded only when the file marks one: otherwise it is
    unknown (None), never 'warm'. Raises InputError (nothing stored) when a succeeded result's GPU
    has no price in the file or the catalog, as `verdict` does; StorageError."""
    measurements_from_e6(e6)  # every succeeded GPU is priced, or the whole file is refused
    specs: list[RunSpec] = []
    outcomes: list[dict[str, Any]] = []
    for r in e6.results:
        rate = rate_for(e6, r.gpu)
        elapsed = r.elapsed
        done = r.frames if r.status == SUCCEEDED else None
        specs.append(RunSpec(clip=r.clip, gpu=r.gpu, frames_expected=r.frames or None,
                             price_gpu=r.gpu, repeat_index=r.repeat))
        outcomes.append({
            "status": r.status, "error": r.error, "cold": True if r.cold else None,
            "frames_in": done, "frames_out": done, "frames_done": done,
            "total_seconds": elapsed, "job_seconds": elapsed, "billed_seconds": elapsed,
            "fps": stage_fps(done, elapsed),
            "cost_gpu": run_cost(elapsed, rate) if elapsed is not None and rate is not None else None,
            "result_json": json.dumps(asdict(r)),
        })
    return insert_finished_experiment(db, experiment_record_of(e6, source_name), specs, outcomes,
                                      created_at=ran_at(e6))
