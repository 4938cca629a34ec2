"""The bill of an experiment as the provider computes it, beside what a long-running service would
pay for the same work, and a monthly projection that models container reuse.

Modal bills a container from its boot to its shutdown: the boot before @modal.enter, the model
load, every job, the idle gaps between jobs and the idle `scaledown_window` after the last one, for
the GPU and for CPU and memory at the larger of what the container requested and what it used.

- steady state: each run's job seconds (core.stages: no boot, no model load, no measurement) at
  its own all-in rate; what a service whose containers never go cold pays per clip.
- this experiment's bill: every container's lifetime here, boot to last job plus the scaledown
  window. A container already warm from an earlier experiment pays no boot here; one that a later
  experiment reused pays only the idle time up to that reuse as its tail.

Their difference is exactly the containers' boots, idle gaps, scaledown tails, any model load or
compile paid inside a job and the measurement-only work (fidelity, encode PSNR) after each job,
each at its container's rate. Runs on one container share its overheads equally (run_seconds),
and each candidate's share is the sum of its runs' (so every run is counted once, under the
candidate it ran for). Pure functions over runs as bench.experiments.read_runs gives them; no
Modal, no database.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from bench.analysis import DAYS_PER_MONTH, GpuFit
from bench.formatting import as_finite
from bench.pricing import PriceTable
from core.errors import InputError
from core.resources import DEFAULT_CPU_CORES, DEFAULT_MEMORY_GIB
from core.stages import STARTUP_STAGES, startup_in_job

BASES = {"steady": "steady state (warm containers)", "billed": "this experiment's bill"}
"""Which seconds a verdict is judged on -> how the choice is labelled."""
CLOCK_ROUNDING = 1e-6
"""Seconds a job's span (a difference of two Unix times) may fall short of its job seconds by
rounding alone."""
DEFAULT_BASIS = "steady"
"""The verdict judges steady-state cost unless the user switches."""


@dataclass(frozen=True)
class BilledRun:
    """One run that ran on a known container, as the bill sees it."""

    run_id: str
    """Store id of the run."""
    candidate: str
    """The candidate it ran for (bench.figures.RunFigures.candidate)."""
    container_id: str
    """The container (Modal task id) or worker process it ran on."""
    booted_at: float
    """Unix time that container booted."""
    started_at: float
    """Unix time the job started (worker clock)."""
    finished_at: float
    """Unix time the job and its measurement work finished (worker clock)."""
    job_seconds: float
    """Its job seconds (at most its span)."""
    startup_in_job: float
    """Model load and compile paid inside the job (0 on a warm worker)."""
    all_in_rate: float
    """$/s while it runs: its card plus CPU and memory (bench.pricing.run_rates)."""
    idle_rate: float
    """$/s of its container while idle: card, CPU request, memory request or peak."""
    queue_wait_seconds: float | None
    """Spawn to container start, when measured."""
    cold: bool
    """The first job of its container."""

    @property
    def span(self) -> float:
        """Seconds from the job's start to the end of its measurement work."""
        return max(0.0, self.finished_at - self.started_at)

    @property
    def measurement_seconds(self) -> float:
        """Seconds of the span that are neither job nor start-up: fidelity scoring, encode PSNR."""
        return max(0.0, self.span - self.job_seconds - self.startup_in_job)

    @property
    def cost(self) -> float:
        """$ of its span at its all-in rate: job, in-job start-up and measurement."""
        return (self.job_seconds + self.startup_in_job + self.measurement_seconds) * self.all_in_rate


@dataclass(frozen=True)
class ContainerBill:
    """One container's lifetime and what it cost."""

    container_id: str
    """Modal task id (or host:pid locally)."""
    candidates: tuple[str, ...]
    """The candidates its runs ran for, in order of first run."""
    runs: int
    """Runs it served."""
    booted_at: float
    """Unix time it booted."""
    boot_seconds: float
    """Boot to its first job's start (boot, imports, model load, compile); 0 when it was already
    warm from an earlier experiment."""
    busy_seconds: float
    """Seconds its jobs ran."""
    idle_seconds: float
    """Seconds it idled between jobs."""
    tail_seconds: float
    """The scaledown window it idled after its last job (less, when a later experiment reused it
    sooner)."""
    steady_cost: float
    """Its runs' steady-state cost, $."""
    boot_cost: float
    """$ of its boot."""
    idle_cost: float
    """$ of its idle gaps."""
    tail_cost: float
    """$ of its scaledown tail."""
    in_job_overhead_cost: float
    """$ of model loads or compiles paid inside its jobs."""
    measurement_cost: float
    """$ of the measurement-only work after its jobs (fidelity, encode PSNR)."""
    cost: float
    """Its whole lifetime here, $ (steady + in-job overhead + measurement + boot + idle + tail)."""

    @property
    def lifetime_seconds(self) -> float:
        """Boot to shutdown."""
        return self.boot_seconds + self.busy_seconds + self.idle_seconds + self.tail_seconds

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"container_id": self.container_id, "gpu": ", ".join(self.candidates),
                "candidates": list(self.candidates), "runs": self.runs,
                "booted_at": self.booted_at, "boot_seconds": self.boot_seconds,
                "busy_seconds": self.busy_seconds, "idle_seconds": self.idle_seconds,
                "tail_seconds": self.tail_seconds, "lifetime_seconds": self.lifetime_seconds,
                "steady_cost": self.steady_cost, "boot_cost": self.boot_cost,
                "idle_cost": self.idle_cost, "tail_cost": self.tail_cost,
                "in_job_overhead_cost": self.in_job_overhead_cost,
                "measurement_cost": self.measurement_cost, "cost": self.cost}


@dataclass(frozen=True)
class CandidateBill:
    """One candidate's share of the bill: its runs, each with its share of its container."""

    gpu: str
    """The candidate (the key the exports have always called 'gpu')."""
    runs: int
    """Its runs in the bill."""
    containers: int
    """Containers its runs ran on."""
    cold_boots: int
    """Containers booted for it in this experiment (first run its, not warm from earlier)."""
    steady_cost: float
    """Steady-state cost of its runs, $."""
    billed_cost: float
    """Its runs' jobs, in-job start-up and measurement plus their shares of their containers'
    boots, idle gaps and tails, $."""
    boot_seconds: float | None
    """Median boot-to-first-job seconds of the containers booted for it (what a cold clip waits
    and pays)."""
    queue_wait_median: float | None
    """Median spawn-to-container-start seconds of its runs."""
    queue_wait_max: float | None
    """Longest queue wait of its runs."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"gpu": self.gpu, "candidate": self.gpu, "runs": self.runs,
                "containers": self.containers, "cold_boots": self.cold_boots,
                "steady_cost": self.steady_cost,
                "billed_cost": self.billed_cost, "boot_seconds": self.boot_seconds,
                "queue_wait_median": self.queue_wait_median, "queue_wait_max": self.queue_wait_max}


@dataclass(frozen=True)
class ExperimentBill:
    """Steady-state cost and the bill of one experiment's runs."""

    scaledown_window: float
    """Seconds every container idled after its last job (the plan's)."""
    reuse: str | None
    """How the runs shared containers (the plan's container_reuse), None when unknown."""
    containers: tuple[ContainerBill, ...]
    """Every container, in order of boot."""
    gpus: tuple[CandidateBill, ...]
    """Per candidate, in order of first appearance (their billed costs add up to the bill)."""
    run_seconds: dict[str, float]
    """Run id -> its billed seconds: its job plus an equal share of its container's boot, idle
    gaps and tail (the seconds of the 'billed' verdict basis)."""
    unaccounted_runs: int
    """Runs with no known container (failed before one started, or imported): not in the bill."""

    @property
    def steady_cost(self) -> float:
        """$ the runs cost on warm containers."""
        return sum(c.steady_cost for c in self.containers)

    @property
    def billed_cost(self) -> float:
        """$ of every container's lifetime."""
        return sum(c.cost for c in self.containers)

    @property
    def boot_cost(self) -> float:
        return sum(c.boot_cost for c in self.containers)

    @property
    def idle_cost(self) -> float:
        return sum(c.idle_cost for c in self.containers)

    @property
    def tail_cost(self) -> float:
        return sum(c.tail_cost for c in self.containers)

    @property
    def in_job_overhead_cost(self) -> float:
        return sum(c.in_job_overhead_cost for c in self.containers)

    @property
    def measurement_cost(self) -> float:
        return sum(c.measurement_cost for c in self.containers)

    @property
    def cold_boots(self) -> int:
        """Containers booted in this experiment (each paid a boot)."""
        return sum(1 for c in self.containers if c.boot_seconds > 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict (the export's 'bill'). Raises nothing."""
        return {"steady_cost": self.steady_cost, "billed_cost": self.billed_cost,
                "difference": self.billed_cost - self.steady_cost,
                "boot_cost": self.boot_cost, "idle_cost": self.idle_cost,
                "tail_cost": self.tail_cost, "in_job_overhead_cost": self.in_job_overhead_cost,
                "measurement_cost": self.measurement_cost,
                "containers": len(self.containers), "cold_boots": self.cold_boots,
                "scaledown_window_seconds": self.scaledown_window, "container_reuse": self.reuse,
                "unaccounted_runs": self.unaccounted_runs,
                "per_gpu": [g.to_dict() for g in self.gpus],
                "per_container": [c.to_dict() for c in self.containers]}


# --------------------------------------------------------------------------- runs -> bill


def billed_runs(runs: Sequence[Mapping[str, Any]], prices: PriceTable
                ) -> tuple[list[BilledRun], int]:
    """(the runs that ran on a known container, how many did not). A run counts when it has a
    container id, the container's boot time, its job's start and finish and a rate; its status
    does not matter (a failed job still ran on a billed container). Raises nothing."""
    out, missing = [], 0
    for run in runs:
        container = run.get("container_id")
        booted = as_finite(run.get("container_started_at"))
        started, finished = as_finite(run.get("job_started_at")), as_finite(run.get("job_finished_at"))
        rate, all_in = as_finite(run.get("rate")), as_finite(run.get("all_in_rate"))
        if not container or booted is None or started is None or finished is None \
                or rate is None or all_in is None:
            missing += 1
            continue
        span = max(0.0, finished - started)
        job = as_finite(run.get("job_seconds"))
        # the worker's clock stamps are Unix times: allow their rounding, never more than the span
        job = span if job is None or job > span + CLOCK_ROUNDING else job
        in_job = min(max(0.0, span - job), startup_in_job({s: as_finite(run.get(f"{s}_seconds"))
                                                  for s in STARTUP_STAGES}))
        peak = as_finite(run.get("peak_memory_gib")) or 0.0
        memory = max(as_finite(run.get("memory_gib")) or DEFAULT_MEMORY_GIB, peak)
        cpu = 0.0 if run.get("device") == "cpu" else \
            (as_finite(run.get("cpu_cores")) or DEFAULT_CPU_CORES)
        out.append(BilledRun(
            run_id=str(run.get("id") or run.get("run_id")), candidate=str(run.get("candidate")),
            container_id=str(container), booted_at=booted, started_at=started,
            finished_at=finished, job_seconds=job, startup_in_job=in_job, all_in_rate=all_in,
            idle_rate=rate + prices.container_rate(cpu, memory),
            queue_wait_seconds=as_finite(run.get("queue_wait_seconds")),
            cold=bool(run.get("cold"))))
    return out, missing


def container_bill(runs: Sequence[BilledRun], scaledown_window: float, warm: bool = False,
                   reused_at: float | None = None) -> ContainerBill:
    """The lifetime here and the cost of the container these runs (all on one container) ran on.

    Jobs, their in-job start-up and their measurement work run at their own all-in rate; boot,
    idle gaps and the tail at the container's idle rate. A container `warm` from an earlier
    experiment pays no boot here. A later experiment's reuse at `reused_at` cuts the tail to the
    idle time before it. Raises
    InputError for no runs or runs of several containers."""
    if not runs or len({r.container_id for r in runs}) != 1:
        raise InputError("a container bill needs the runs of exactly one container")
    ordered = sorted(runs, key=lambda r: r.started_at)
    first = ordered[0]
    booted = min(r.booted_at for r in ordered)
    idle_rate = max(r.idle_rate for r in ordered)
    boot = 0.0 if warm else max(0.0, first.started_at - booted)
    busy = sum(r.span for r in ordered)
    last = max(r.finished_at for r in ordered)
    idle = max(0.0, (last - first.started_at) - busy)
    tail = float(scaledown_window)
    if reused_at is not None and reused_at >= last:
        tail = min(tail, reused_at - last)
    steady = sum(r.job_seconds * r.all_in_rate for r in ordered)
    in_job = sum(r.startup_in_job * r.all_in_rate for r in ordered)
    measurement = sum(r.measurement_seconds * r.all_in_rate for r in ordered)
    boot_cost, idle_cost, tail_cost = boot * idle_rate, idle * idle_rate, tail * idle_rate
    return ContainerBill(
        container_id=first.container_id,
        candidates=tuple(dict.fromkeys(r.candidate for r in ordered)), runs=len(ordered),
        booted_at=booted, boot_seconds=boot, busy_seconds=busy, idle_seconds=idle,
        tail_seconds=tail, steady_cost=steady, boot_cost=boot_cost, idle_cost=idle_cost,
        tail_cost=tail_cost, in_job_overhead_cost=in_job, measurement_cost=measurement,
        cost=steady + in_job + measurement + boot_cost + idle_cost + tail_cost)


def experiment_bill(runs: Sequence[Mapping[str, Any]], prices: PriceTable,
                    scaledown_window: float, reuse: str | None = None,
                    warm: frozenset[str] | set[str] = frozenset(),
                    reused_at: Mapping[str, float] | None = None) -> ExperimentBill:
    """The bill of runs (as bench.experiments.read_runs gives them) whose containers idled
    `scaledown_window` seconds after their last job. `warm`: containers an earlier experiment
    used (no boot here); `reused_at`: container id -> when a later experiment's first job started
    on it (cuts its tail). Raises InputError for a
    negative or non-finite window."""
    if not (isinstance(scaledown_window, (int, float)) and math.isfinite(scaledown_window)
            and scaledown_window >= 0):
        raise InputError(f"scaledown window {scaledown_window!r} must be a non-negative number")
    known, missing = billed_runs(runs, prices)
    by_container: dict[str, list[BilledRun]] = {}
    for run in known:
        by_container.setdefault(run.container_id, []).append(run)
    containers = sorted((container_bill(group, scaledown_window, cid in warm,
                                        (reused_at or {}).get(cid))
                         for cid, group in by_container.items()),
                        key=lambda c: (c.booted_at, c.container_id))
    run_seconds, run_billed, booted_for = {}, {}, {}
    for container in containers:
        group = sorted(by_container[container.container_id], key=lambda r: r.started_at)
        overhead = container.boot_seconds + container.idle_seconds + container.tail_seconds
        share = overhead / len(group)
        share_cost = (container.boot_cost + container.idle_cost + container.tail_cost) / len(group)
        for run in group:
            run_seconds[run.run_id] = run.span + share
            run_billed[run.run_id] = run.cost + share_cost
        if container.boot_seconds > 0:
            booted_for[container.container_id] = group[0].candidate
    candidates = []
    for candidate in dict.fromkeys(r.candidate for r in known):
        mine = [r for r in known if r.candidate == candidate]
        boots = [c.boot_seconds for c in containers
                 if booted_for.get(c.container_id) == candidate]
        waits = [r.queue_wait_seconds for r in mine if r.queue_wait_seconds is not None]
        candidates.append(CandidateBill(
            gpu=candidate, runs=len(mine), containers=len({r.container_id for r in mine}),
            cold_boots=len(boots), steady_cost=sum(r.job_seconds * r.all_in_rate for r in mine),
            billed_cost=sum(run_billed[r.run_id] for r in mine),
            boot_seconds=statistics.median(boots) if boots else None,
            queue_wait_median=statistics.median(waits) if waits else None,
            queue_wait_max=max(waits) if waits else None))
    return ExperimentBill(float(scaledown_window), reuse, tuple(containers), tuple(candidates),
                          run_seconds, missing)


# --------------------------------------------------------------------------- projection


@dataclass(frozen=True)
class ReuseProjection:
    """A month of one GPU serving clips that arrive at random through the day."""

    gpu: str
    """GPU label."""
    monthly_cost: float
    """$ per month with containers scaling down after the window (what the bill will say)."""
    steady_monthly_cost: float
    """$ per month if a container were always warm and never idle (steady state)."""
    cold_share: float
    """Fraction of clips that find no warm container and pay a boot."""
    idle_seconds_per_clip: float
    """Billed idle seconds a clip leaves behind on average (its container waiting for the next
    clip, up to the scaledown window)."""
    cold_seconds: float
    """Boot and model load a cold clip pays (measured: median over the GPU's containers)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"gpu": self.gpu, "monthly_cost": self.monthly_cost,
                "steady_monthly_cost": self.steady_monthly_cost, "cold_share": self.cold_share,
                "idle_seconds_per_clip": self.idle_seconds_per_clip,
                "cold_seconds": self.cold_seconds}


def reuse_projection(fits: Mapping[str, GpuFit], rates: Mapping[str, float], clips_per_day: float,
                     mix: Mapping[float, float], scaledown_window: float,
                     cold_seconds: Mapping[str, float], active_hours: float = 24.0
                     ) -> dict[str, ReuseProjection]:
    """$ per month per GPU for clips_per_day clips (lengths in mix {frames: share}) arriving at
    random (a Poisson stream over active_hours a day) at one container that scales down after
    scaledown_window idle seconds.

    A clip's job costs its fitted steady seconds. After it, the container idles until the next
    clip or the window, whichever comes first: E[min(gap, W)] = (1 - e^(-lW)) / l billed idle
    seconds, l the arrival rate; with probability e^(-lW) the window ran out and the next clip
    is cold, paying cold_seconds[gpu] (boot and model load). Clips that arrive while one is
    running are assumed to wait for it (one container). rates are all-in $/s.

    Raises InputError for a negative count, window or hours, an empty or bad mix, or a GPU
    without a rate."""
    for label, value in (("clips per day", clips_per_day), ("scaledown window", scaledown_window)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise InputError(f"{label} {value!r} must be a non-negative number")
    if not (isinstance(active_hours, (int, float)) and 0 < active_hours <= 24):
        raise InputError(f"active hours {active_hours!r} must be in (0, 24]")
    if not mix:
        raise InputError("the clip-length mix is empty")
    for frames, share in mix.items():
        if not (math.isfinite(frames) and frames > 0 and math.isfinite(share) and share >= 0):
            raise InputError(f"bad clip-length mix entry {frames!r}: {share!r}")
    total = sum(mix.values())
    if total <= 0:
        raise InputError("the shares of the clip-length mix add up to 0")
    per_second = clips_per_day / (active_hours * 3600.0)
    if per_second > 0:
        cold = math.exp(-per_second * scaledown_window)
        idle = -math.expm1(-per_second * scaledown_window) / per_second
    else:
        cold, idle = 1.0, float(scaledown_window)
    month = clips_per_day * DAYS_PER_MONTH
    out = {}
    for gpu, fit in fits.items():
        if gpu not in rates:
            raise InputError(f"no price for {gpu}")
        job = sum(share / total * fit.seconds(frames) for frames, share in mix.items())
        boot = max(0.0, float(cold_seconds.get(gpu, 0.0)))
        out[gpu] = ReuseProjection(
            gpu=gpu, monthly_cost=(job + idle + cold * boot) * rates[gpu] * month,
            steady_monthly_cost=job * rates[gpu] * month, cold_share=cold,
            idle_seconds_per_clip=idle, cold_seconds=boot)
    return out
