"""The timed stages of a job and the seconds derived from them, defined once for every layer.

Job seconds: the job from fetch to the end of the upload, less the one-time model load and compile
(what a warm worker spends on it, the seconds the verdict, the fit, fps and the steady-state cost
use). Start-up: what a worker pays once before its jobs (container boot or worker process start,
model load, compile); it has seconds of its own and is added only where a view says so (the bill,
cold-run views). Measurement: work a production worker never does (fidelity scoring, encode PSNR),
timed after the job's clock stops and never in job seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Stage:
    """One timed stage of a job."""

    name: str
    """Key in JobResult.stages."""
    words: str
    """What the worker is doing in it, as a live view says ('decoding')."""
    colour: str
    """Its colour in every stage chart."""
    kind: str
    """'job' (inside job seconds), 'startup' (paid once per worker, taken out of job seconds),
    'queue' (before the job, measured by the client) or 'measurement' (after the job's clock)."""

    @property
    def column(self) -> str:
        """The runs table column that stores it."""
        return f"{self.name}_seconds"


STAGE_TABLE = (
    Stage("queue_wait", "waiting for a container", "#88CCEE", "queue"),
    Stage("fetch", "fetching the input", "#CC6677", "job"),
    Stage("model_load", "loading the model", "#DDCC77", "startup"),
    Stage("compile", "compiling the model", "#117733", "startup"),
    Stage("decode", "decoding", "#332288", "job"),
    Stage("upscale", "upscaling", "#AA4499", "job"),
    Stage("encode", "encoding", "#44AA99", "job"),
    Stage("upload", "uploading", "#999933", "job"),
    Stage("fidelity", "scoring fidelity", "#882255", "measurement"),
)
"""Every stage in pipeline order. decode/upscale/encode overlap in the fast engine, so their sum
can exceed the wall time; JobResult.stages['total'] is the worker's wall clock from the fetch to
the end of the upload."""
STAGES = tuple(s.name for s in STAGE_TABLE)
"""Stage names in pipeline order."""
STAGE_BY_NAME = {s.name: s for s in STAGE_TABLE}
"""Stage name -> Stage."""
TOTAL = "total"
"""The stages key of the job's wall clock (fetch to the end of the upload)."""
STARTUP_STAGES = tuple(s.name for s in STAGE_TABLE if s.kind == "startup")
"""Stages a worker pays once, taken out of job seconds."""


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def job_seconds(stages: Mapping[str, Any]) -> float | None:
    """Job seconds of a job's stages: its wall clock (`total`) less model load and compile; None
    when the wall clock is unknown. Never negative. Raises nothing."""
    total = _seconds(stages.get(TOTAL))
    if total is None:
        return None
    inside = sum(_seconds(stages.get(name)) or 0.0 for name in STARTUP_STAGES)
    return max(0.0, total - inside)


def startup_in_job(stages: Mapping[str, Any]) -> float:
    """Seconds of model load and compile paid inside a job (0 on a warm worker). Raises nothing."""
    return sum(_seconds(stages.get(name)) or 0.0 for name in STARTUP_STAGES)


def startup_seconds(stages: Mapping[str, Any], before_job: float) -> float:
    """Start-up a run paid: `before_job` (its worker's boot or process start up to this job, 0
    unless it was the worker's first) plus the model load and compile inside the job. Raises
    nothing."""
    return max(0.0, before_job) + startup_in_job(stages)


def fps(frames: Any, seconds: float | None) -> float | None:
    """Frames per second of job seconds; None without frames or seconds. Raises nothing."""
    n = _seconds(frames)
    if not n or seconds is None or seconds <= 0:
        return None
    return n / seconds
