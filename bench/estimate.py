"""What a plan will take and cost before it runs: per candidate and clip, job seconds with a range
and their cost, and the bill (start-ups and scaledown tails under the plan's container reuse).

An estimate is job seconds x bench.pricing.run_rates of the price card (run_cost: no second cost
formula). The seconds come from history, each with its basis:
- `measured`: runs of the same model, engine, precision and output shape on this card: their fit
  (bench.analysis.fit_gpu) at the clip's frames, the range from the runs' spread about the fit;
- `scaled`: such runs on other cards only: each card's fit scaled by the datasheet throughput
  ratio (bench.cards), with a wide range: a factor SCALED_SPREAD either way, and a high end no
  faster than the measured card (the reference engine is bound by per-frame work that datasheet
  peaks do not scale: E6's x4plus reference loop is 2.2x faster on an H200 than on a T4, not the
  16x the datasheets give);
- `none`: nothing to go on; no seconds, no cost.
Pure functions over MeasuredRun records (bench.estimate_history reads them from the store).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from bench.analysis import GpuFit, fit_gpu
from bench.cards import speed_ratio
from bench.figures import CPU_DEVICE
from bench.plan import GpuChoice, Plan, Variant
from bench.pricing import PriceTable, RunRates, run_cost, run_rates
from core.errors import InputError
from workers.catalog import get_model_spec

BASES = ("measured", "scaled", "none")
"""What an estimated time rests on (see the module docstring)."""
MEASURED_MARGIN = 0.05
"""Least range either side of a measured estimate (a fit of one run is not exact)."""
SCALED_SPREAD = 2.0
"""A scaled estimate's range: datasheet ratios predict measured speed ratios to within about this
factor (E6: T4 -> L4 measured 1.61x, predicted 1.32x)."""
ASSUMED_MODAL_STARTUP_SECONDS = 60.0
"""Start-up of a cold Modal container (boot, imports, weights, model load) when history has none
for the card and variant: an assumption, labelled so; its high end is twice this."""


@dataclass(frozen=True)
class MeasuredRun:
    """One succeeded run of history, as the estimate uses it."""

    card: str
    """Its price card ('T4'), else its device ('cpu', 'cuda:0')."""
    model: str | None
    """Catalog model name."""
    engine: str | None
    """'fast' or 'reference'."""
    precision: str | None
    """Precision it ran at; None when not recorded."""
    output: tuple[int, int] | None
    """Output width, height; None when not recorded."""
    frames: int
    """Frames out."""
    job_seconds: float
    """Its job seconds (core.stages)."""
    startup_seconds: float | None
    """Start-up it paid (0 on a warm worker); None when unknown."""


@dataclass(frozen=True)
class ClipEstimate:
    """One run of one clip on one candidate."""

    clip: str
    frames: int
    seconds: float | None
    """Estimated job seconds; None on basis 'none'."""
    seconds_low: float | None
    seconds_high: float | None
    cost: float | None
    """GPU-only $ of `seconds`."""
    cost_all_in: float | None
    """Card, CPU and memory $ of `seconds`."""
    cost_high: float | None
    """All-in $ of `seconds_high`."""
    basis: str
    """One of BASES."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `estimate`: clip, seconds, seconds_low, seconds_high, cost, cost_all_in,
        basis. Raises nothing."""
        return {"clip": self.clip, "seconds": self.seconds, "seconds_low": self.seconds_low,
                "seconds_high": self.seconds_high, "cost": self.cost,
                "cost_all_in": self.cost_all_in, "basis": self.basis}


@dataclass(frozen=True)
class BillEstimate:
    """One candidate's runs as the provider bills them."""

    runs: int
    """Runs (clips x repeats)."""
    containers: int
    """Containers (or worker processes) that start: each pays a start-up, each a tail."""
    startup_seconds: float
    """Start-up of one (boot, model load, compile)."""
    startup_basis: str
    """'measured' (history's startup_seconds for this card and variant), 'other card', 'assumed'
    or 'none' (local, unknown: 0)."""
    tail_seconds: float
    """Scaledown window each container idles after its last run (0 locally)."""
    steady_cost: float | None
    """All-in $ of every run's job seconds."""
    overhead_cost: float
    """All-in $ of the start-ups and tails."""
    cost: float | None
    """steady + overhead; None when some clip has no estimate."""
    cost_high: float | None
    """The same at the high end of every range."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"runs": self.runs, "containers": self.containers,
                "startup_seconds": self.startup_seconds, "startup_basis": self.startup_basis,
                "tail_seconds": self.tail_seconds, "steady_cost": self.steady_cost,
                "overhead_cost": self.overhead_cost, "cost": self.cost,
                "cost_high": self.cost_high}


@dataclass(frozen=True)
class CandidateEstimate:
    """One candidate of the plan."""

    candidate: str
    clips: tuple[ClipEstimate, ...]
    bill: BillEstimate

    @property
    def seconds(self) -> float | None:
        """Estimated job seconds of all its runs; None when some clip has no estimate."""
        known = [c.seconds for c in self.clips]
        if None in known:
            return None
        return sum(known) * (self.bill.runs / max(1, len(self.clips)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"candidate": self.candidate, "clips": [c.to_dict() for c in self.clips],
                "bill": self.bill.to_dict()}


@dataclass(frozen=True)
class PlanEstimate:
    """Every candidate of a plan, and the plan's total."""

    candidates: tuple[CandidateEstimate, ...]

    @property
    def total_cost(self) -> float | None:
        """$ of the whole plan (bills of every candidate); None when something has no estimate."""
        return _sum(c.bill.cost for c in self.candidates)

    @property
    def total_cost_high(self) -> float | None:
        """The high end of total_cost."""
        return _sum(c.bill.cost_high for c in self.candidates)

    def unknown(self) -> list[str]:
        """'L4 on 6s' for every clip without an estimate. Raises nothing."""
        return [f"{c.candidate} on {clip.clip}" for c in self.candidates for clip in c.clips
                if clip.basis == "none"]

    def summary(self) -> str:
        """One line: '$0.41 estimated (up to $0.92), measured', or what has no estimate."""
        if self.total_cost is None:
            unknown = self.unknown()
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            return f"no estimate for {', '.join(unknown[:3])}{more}: no runs of it in history"
        bases = sorted({clip.basis for c in self.candidates for clip in c.clips},
                       key=BASES.index)
        return (f"${self.total_cost:.4f} estimated (up to ${self.total_cost_high:.4f}), "
                f"{' and '.join(bases)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `estimate`: candidates, total_cost, total_cost_high. Raises nothing."""
        return {"candidates": [c.to_dict() for c in self.candidates],
                "total_cost": self.total_cost, "total_cost_high": self.total_cost_high}


def _sum(values) -> float | None:
    items = list(values)
    return None if not items or None in items else sum(items)


# --------------------------------------------------------------------------- matching history


@dataclass(frozen=True)
class Shape:
    """What must match for a run of history to time a planned run: model, engine, precision and
    output size."""

    model: str
    engine: str
    precision: str
    """The plan's precision; 'auto' matches any."""
    output: tuple[int, int] | None
    """The plan's output size; None (unknown before the source is read) matches any."""

    def matches(self, run: MeasuredRun) -> bool:
        """Whether `run` ran this shape. Raises nothing."""
        return (run.model == self.model and run.engine == self.engine
                and (self.precision == "auto" or run.precision in (None, "auto", self.precision))
                and (self.output is None or run.output == self.output))


def plan_output(plan: Plan, model: str) -> tuple[int, int] | None:
    """The plan's output size: as given, else the first crop at the model's scale; None for the
    whole frame at the model's scale (its size is known only once the source is read)."""
    if plan.output_width is not None and plan.output_height is not None:
        return plan.output_width, plan.output_height
    if plan.keyframes:
        scale = get_model_spec(model).scale
        return plan.keyframes[0].width * scale, plan.keyframes[0].height * scale
    return None


def shape_of(plan: Plan, variant: Variant) -> Shape:
    """The Shape one variant of the plan runs. Raises InputError for an unknown model."""
    return Shape(variant.model, variant.engine, plan.precision, plan_output(plan, variant.model))


# --------------------------------------------------------------------------- seconds


def _fits(history: Sequence[MeasuredRun], shape: Shape) -> dict[str, tuple[GpuFit, list]]:
    by_card: dict[str, list[tuple[float, float]]] = {}
    for run in history:
        if shape.matches(run) and run.frames > 0 and run.job_seconds > 0:
            by_card.setdefault(run.card, []).append((float(run.frames), run.job_seconds))
    return {card: (fit_gpu(points), points) for card, points in by_card.items()}


def clip_seconds(card: str, frames: int, fits: dict[str, tuple[GpuFit, list]]
                 ) -> tuple[float | None, float | None, float | None, str]:
    """(seconds, low, high, basis) of one run of `frames` frames on `card` from per-card fits of
    history (card -> (fit, its points)). Raises nothing."""
    if card in fits:
        fit, points = fits[card]
        seconds = fit.seconds(frames)
        ratios = [s / fit.seconds(f) for f, s in points if fit.seconds(f) > 0] or [1.0]
        low = seconds * min(min(ratios), 1 - MEASURED_MARGIN)
        high = seconds * max(max(ratios), 1 + MEASURED_MARGIN)
        return seconds, low, high, "measured"
    scaled, highs = [], []
    for other, (fit, _) in fits.items():
        ratio = speed_ratio(other, card)
        if ratio:
            scaled.append(fit.seconds(frames) / ratio)
            highs.append(fit.seconds(frames) * max(1.0, 1.0 / ratio))
    if scaled:
        high = max(max(scaled) * SCALED_SPREAD, max(highs))
        return statistics.median(scaled), min(scaled) / SCALED_SPREAD, high, "scaled"
    return None, None, None, "none"


# --------------------------------------------------------------------------- cost and the bill


def _card_and_rates(plan: Plan, gpu: GpuChoice, prices: PriceTable, local_cores: float
                    ) -> tuple[str, RunRates | None]:
    """(history card key, rates) of one of the plan's GPUs: its price card at the catalog rate, a
    local CPU at the core rate of `local_cores`; rates None when nothing prices it."""
    card = gpu.price_gpu or gpu.label
    cores = plan.cpu_cores if plan.backend == "modal" else local_cores
    if gpu.label == CPU_DEVICE and not gpu.price_gpu:
        return CPU_DEVICE, run_rates(prices, prices.cpu_rate(local_cores), True, cores)
    try:
        return card, run_rates(prices, prices.rate(card), False, cores)
    except InputError:
        return card, None


def _startup(history: Sequence[MeasuredRun], card: str, shape: Shape, backend: str
             ) -> tuple[float, float, str]:
    """(start-up seconds, its high end, basis) of one container or worker of `card`."""
    def paid(runs: list[MeasuredRun]) -> list[float]:
        return [r.startup_seconds for r in runs if r.startup_seconds]

    same = [r for r in history if r.model == shape.model and r.engine == shape.engine]
    for basis, runs in (("measured", [r for r in same if r.card == card]), ("other card", same)):
        seconds = paid(runs)
        if seconds:
            return statistics.median(seconds), max(seconds), basis
    if backend == "modal":
        return ASSUMED_MODAL_STARTUP_SECONDS, 2 * ASSUMED_MODAL_STARTUP_SECONDS, "assumed"
    return 0.0, 0.0, "none"


def estimate_candidate(plan: Plan, gpu: GpuChoice, variant: Variant,
                       history: Sequence[MeasuredRun], prices: PriceTable,
                       local_cores: float) -> CandidateEstimate:
    """The estimate of one GPU x variant of the plan. Raises InputError for an unknown model."""
    shape = shape_of(plan, variant)
    card, rates = _card_and_rates(plan, gpu, prices, local_cores)
    fits = _fits(history, shape)
    clips = []
    for clip in plan.clips:
        frames = clip.frames(plan.fps)
        seconds, low, high, basis = clip_seconds(card, frames, fits)
        priced = rates is not None and seconds is not None
        clips.append(ClipEstimate(
            clip.name, frames, seconds, low, high,
            run_cost(seconds, rates.card) if priced else None,
            run_cost(seconds, rates.all_in) if priced else None,
            run_cost(high, rates.all_in) if priced else None,
            basis if rates is not None else "none"))
    runs = len(plan.clips) * plan.repeats
    modal = plan.backend == "modal"
    containers = runs if modal and plan.container_reuse == "parallel" else 1
    startup, startup_high, startup_basis = _startup(history, card, shape, plan.backend)
    tail = float(plan.scaledown_window_seconds) if modal else 0.0
    idle = rates.all_in if rates is not None else 0.0
    overhead = containers * (startup + tail) * idle
    steady = _sum(c.cost_all_in for c in clips)
    steady_high = _sum(c.cost_high for c in clips)
    bill = BillEstimate(
        runs=runs, containers=containers, startup_seconds=startup, startup_basis=startup_basis,
        tail_seconds=tail, steady_cost=None if steady is None else steady * plan.repeats,
        overhead_cost=overhead,
        cost=None if steady is None else steady * plan.repeats + overhead,
        cost_high=None if steady_high is None else
        steady_high * plan.repeats + containers * (startup_high + tail) * idle)
    return CandidateEstimate(plan.candidate_of(gpu.label, variant), tuple(clips), bill)


def estimate_plan(plan: Plan, history: Sequence[MeasuredRun], prices: PriceTable,
                  local_cores: float = 1.0) -> PlanEstimate:
    """The estimate of every candidate of the plan (in plan order) from succeeded runs of
    history, priced by `prices` placed as the plan asks (PriceTable.for_placement: its region's
    multiplier), a local CPU at `local_cores` cores. Raises InputError for an unknown model."""
    prices = prices.for_placement(plan.region)
    return PlanEstimate(tuple(estimate_candidate(plan, gpu, variant, history, prices, local_cores)
                              for gpu in plan.gpus for variant in plan.variant_list()))


def check_cap(estimate: PlanEstimate, max_cost: float) -> None:
    """Raises InputError naming the estimate when its high end exceeds `max_cost` $ (or when some
    part of the plan has no estimate, so no cap can be promised)."""
    if estimate.total_cost_high is None:
        raise InputError(f"--max-cost ${max_cost:g}: {estimate.summary()}, so the cap cannot be "
                         f"checked; run a smaller plan first or drop --max-cost")
    if estimate.total_cost_high > max_cost:
        raise InputError(f"the plan may cost more than --max-cost ${max_cost:g}: "
                         f"{estimate.summary()}")



# --------------------------------------------------------------------------- estimate vs actual


PLAN_KEY = "estimate"
"""Key of the plan's estimate in the experiment's stored plan (plan_json), written at creation."""


@dataclass(frozen=True)
class EstimateCheck:
    """One candidate's estimate against what its succeeded runs took."""

    candidate: str
    basis: str
    """The bases of its clips' estimates ('measured', 'scaled', 'measured and scaled')."""
    runs: int
    """Succeeded runs compared (each against its clip's estimate)."""
    estimated_seconds: float
    actual_seconds: float
    estimated_cost: float | None
    """All-in $ the estimate gave those runs."""
    actual_cost: float | None
    """All-in $ of their job seconds."""

    @property
    def error(self) -> float | None:
        """(estimated - actual) / actual job seconds; None without actual seconds."""
        return self.estimated_seconds / self.actual_seconds - 1 if self.actual_seconds else None

    @property
    def cost_error(self) -> float | None:
        """The same for the all-in cost."""
        if self.estimated_cost is None or not self.actual_cost:
            return None
        return self.estimated_cost / self.actual_cost - 1


def estimate_checks(stored: Any, runs: Sequence[Any]) -> list[EstimateCheck]:
    """Per candidate of a stored estimate (PlanEstimate.to_dict) with an estimate for its clips,
    its succeeded runs (as bench.experiments.read_runs gives them) against it; [] without a
    stored estimate. Raises nothing."""
    if not isinstance(stored, dict):
        return []
    out = []
    for cand in stored.get("candidates") or ():
        if not isinstance(cand, dict):
            continue
        clips = {c.get("clip"): c for c in cand.get("clips") or () if isinstance(c, dict)
                 and isinstance(c.get("seconds"), (int, float))}
        mine = [r for r in runs if r.get("candidate") == cand.get("candidate")
                and r.get("status") == "succeeded" and r.get("clip") in clips
                and isinstance(r.get("job_seconds"), (int, float))]
        if not mine:
            continue
        est = [clips[r["clip"]] for r in mine]
        costs = [c.get("cost_all_in") for c in est]
        actual_costs = [r.get("cost_all_in") for r in mine]
        bases = [b for b in BASES if b in {c.get("basis") for c in est}]
        out.append(EstimateCheck(
            str(cand.get("candidate")), " and ".join(bases), len(mine),
            sum(c["seconds"] for c in est), sum(r["job_seconds"] for r in mine),
            None if None in costs else sum(costs),
            None if None in actual_costs else sum(actual_costs)))
    return out
