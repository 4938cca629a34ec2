"""Cost, speedup, break-even, the overhead + throughput fit, crossovers and the verdict.

Pure functions over Measurements (one per run). Only succeeded runs are used; the others are listed.

The verdict generalises the original experiment's four decision rules to N GPUs. They are tried in
this order (the first that holds is the verdict):

1. within_tolerance: two or more GPUs cost within `tolerance` of the cheapest on every clip. Cost
   does not separate them, so the fastest of them (least total time over the clips) is chosen. It
   comes first because a few percent of cost must not decide against a much faster card: with the
   two GPUs of the original it is exactly "every clip's costs within 10%: prefer the faster".
2. keep_baseline: the baseline GPU (the first of the plan) is cheapest on every clip.
3. single_winner: one other GPU is cheapest on every clip.
4. threshold: the cheapest GPU changes with clip length. The switch point comes from the fitted cost
   lines (crossover of `seconds = overhead + frames / throughput` times the rate); when the fit puts
   no crossover between the clips, it is placed halfway between the clips whose winners differ.

Whether a clip's winner is settled: its cost range over repeats (min..max) overlaps no other GPU's
range. With one run per GPU the ranges are points, so only an exact tie is unsettled.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from core.errors import InputError
from core.status import SUCCEEDED

DEFAULT_TOLERANCE = 0.10
"""Costs within this fraction of the cheapest count as equal (issue 4: 10%)."""
DAYS_PER_MONTH = 30
"""Days in the month of a monthly projection (bench.billing.reuse_projection)."""
RULE_TITLES = {
    "within_tolerance": "Costs within tolerance: the fastest wins",
    "keep_baseline": "Keep the baseline",
    "single_winner": "One candidate wins every clip",
    "threshold": "The cheapest candidate depends on clip length",
}
"""Each verdict rule, in the order they are tried (see the module docstring) -> its heading."""
RULES = tuple(RULE_TITLES)
"""The verdict's rules, in the order they are tried."""


@dataclass(frozen=True)
class Measurement:
    """One run, as the analysis sees it."""

    gpu: str
    """The candidate: a GPU label as planned ('T4', 'cuda:0', 'cpu'), with the model and/or engine
    where the runs compared differ in them ('cpu · fast'). The JSON keeps the key 'gpu'."""
    clip: str
    """Clip name ('6s')."""
    frames: int
    """Frames produced (or expected, for a failed run)."""
    seconds: float | None
    """Seconds of the run on the analysis's basis: its job seconds (steady) or the bill's run
    seconds (billed); None when it failed before timing."""
    status: str
    """'succeeded' or anything else (failed, interrupted, ...); only succeeded runs are used."""
    rate: float
    """GPU price in $/s that applies to this run."""
    repeat: int = 0
    """Repeat index (0-based)."""
    cold: bool = False
    """Whether the run paid for a cold start (container/model start-up)."""
    error: str | None = None
    """One-line reason when it failed."""
    all_in_rate: float | None = None
    """GPU + CPU + memory price in $/s, when known."""

    @property
    def ok(self) -> bool:
        """Succeeded with a usable time and frame count."""
        return (self.status == SUCCEEDED and self.seconds is not None and self.seconds > 0
                and self.frames > 0)


@dataclass(frozen=True)
class GpuClipStats:
    """One GPU on one clip, over its succeeded repeats."""

    gpu: str
    """GPU label."""
    runs: int
    """Succeeded runs used."""
    cold_runs: int
    """How many of them were cold (their start-up is in their seconds only on the billed basis)."""
    median_seconds: float
    """Median seconds over the runs."""
    min_seconds: float
    """Fastest run."""
    max_seconds: float
    """Slowest run."""
    fps: float
    """Frames / median seconds."""
    rate: float
    """GPU $/s."""
    cost: float
    """GPU-only cost of the median run in $."""
    cost_min: float
    """GPU-only cost of the fastest run."""
    cost_max: float
    """GPU-only cost of the slowest run."""
    all_in_cost: float | None
    """GPU + CPU + memory cost of the median run, when every run has an all-in rate."""
    speedup: float | None
    """Baseline median seconds / this median seconds (None when the baseline has no run here)."""
    break_even_seconds: float | None
    """The time at which this GPU would cost the same as the baseline:
    baseline_seconds x baseline_rate / rate (None without a baseline run)."""

    @property
    def beats_break_even(self) -> bool | None:
        """Whether this GPU ran faster than its break-even time (cheaper than the baseline)."""
        if self.break_even_seconds is None:
            return None
        return self.median_seconds < self.break_even_seconds

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {
            "gpu": self.gpu, "runs": self.runs, "cold_runs": self.cold_runs,
            "seconds": self.median_seconds, "min_seconds": self.min_seconds,
            "max_seconds": self.max_seconds, "fps": self.fps, "rate": self.rate,
            "cost": self.cost, "cost_min": self.cost_min, "cost_max": self.cost_max,
            "all_in_cost": self.all_in_cost, "speedup": self.speedup,
            "break_even_seconds": self.break_even_seconds, "beats_break_even": self.beats_break_even,
        }


@dataclass(frozen=True)
class ClipSummary:
    """Every GPU on one clip."""

    clip: str
    """Clip name."""
    frames: int
    """Frames in the clip (most common over its succeeded runs)."""
    baseline_gpu: str
    """GPU that speedups and break-even times are measured against."""
    stats: tuple[GpuClipStats, ...]
    """One entry per GPU with a succeeded run, in plan order."""
    winner: str | None
    """Cheapest GPU by median GPU-only cost; None when no run succeeded."""
    settled: bool
    """False when the winner's cost range over repeats overlaps another GPU's."""
    failed: tuple[Measurement, ...] = ()
    """Runs of this clip that did not succeed (reported, not used)."""

    def get(self, gpu: str) -> GpuClipStats | None:
        """Stats of one GPU on this clip, or None. Raises nothing."""
        return next((s for s in self.stats if s.gpu == gpu), None)

    @property
    def costs(self) -> dict[str, float]:
        """GPU -> median GPU-only cost in $."""
        return {s.gpu: s.cost for s in self.stats}

    @property
    def times(self) -> dict[str, float]:
        """GPU -> median seconds."""
        return {s.gpu: s.median_seconds for s in self.stats}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {
            "clip": self.clip, "frames": self.frames, "baseline": self.baseline_gpu,
            "winner": self.winner, "settled": self.settled, "costs": self.costs,
            "times": self.times, "gpus": [s.to_dict() for s in self.stats],
            "failed": [failure_dict(m) for m in self.failed],
        }


@dataclass(frozen=True)
class GpuFit:
    """Least-squares fit of seconds = overhead_s + frames x per_frame_s for one GPU."""

    overhead_s: float
    """Fixed seconds per run (start-up, model load, encode tail); 0 when it cannot be told apart."""
    throughput_fps: float | None
    """Frames per second of the variable part (1 / per_frame_s); None when per_frame_s is 0."""
    per_frame_s: float
    """Seconds per additional frame."""
    r2: float | None
    """Coefficient of determination; None when it is undefined (a single clip length)."""
    points: int = 0
    """Number of (frames, seconds) points fitted."""
    note: str = ""
    """How the fit was constrained, when it was ('' for an ordinary least-squares fit)."""

    def seconds(self, frames: float) -> float:
        """Fitted seconds for a clip of `frames` frames. Raises nothing."""
        return self.overhead_s + frames * self.per_frame_s

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"overhead_s": self.overhead_s, "throughput_fps": self.throughput_fps,
                "per_frame_s": self.per_frame_s, "r2": self.r2, "points": self.points,
                "note": self.note}


@dataclass(frozen=True)
class Crossover:
    """A clip length where the cheapest GPU by fitted cost changes."""

    frames: float
    """Clip length in frames where both GPUs cost the same."""
    seconds: float | None
    """The same length in seconds of video (frames / fps), when the fps is known."""
    from_gpu: str
    """Cheapest GPU for shorter clips."""
    to_gpu: str
    """Cheapest GPU for longer clips."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"frames": self.frames, "seconds": self.seconds, "from": self.from_gpu,
                "to": self.to_gpu}


@dataclass(frozen=True)
class Choice:
    """What the verdict says to use: one GPU for every clip, or (rule threshold) one GPU for clips
    shorter than a threshold and another for longer ones."""

    gpu: str
    """The GPU to use; when the choice depends on clip length, the one for the shorter clips."""
    above: str | None = None
    """The GPU for clips longer than the (first) threshold; None when one GPU serves every
    length."""
    threshold_frames: int | None = None
    """Clip length in frames where the cheapest GPU first changes."""
    threshold_seconds: float | None = None
    """The same length in seconds of video, when the fps is known."""
    source: str | None = None
    """Where the threshold comes from: 'fit' (the fitted cost lines cross) or 'clips' (halfway
    between the measured clips whose winners differ)."""
    steps: tuple[Crossover, ...] = ()
    """Every change of the cheapest GPU, when it changes more than once."""

    @property
    def by_length(self) -> bool:
        """Whether the GPU to use depends on clip length."""
        return self.above is not None

    def describe(self) -> str:
        """The choice as a phrase, the same in the CLI, the exports and the dashboard: 'L4', or
        every segment of clip length with the GPU cheapest there: 'T4 for clips under 9.6 s, L4
        from 9.6 to 12.5 s, A10 above 12.5 s' (lengths in frames when the fps is unknown).
        Raises nothing."""
        if not self.by_length:
            return self.gpu
        first = (self.threshold_frames, self.threshold_seconds)
        later = [(c.frames, c.seconds) for c in self.steps[1:]]
        bounds = [first, *later]
        gpus = [self.gpu, self.above, *(c.to_gpu for c in self.steps[1:])]
        in_seconds = all(seconds is not None for _, seconds in bounds)

        def number(bound: tuple[float | None, float | None]) -> str:
            frames, seconds = bound
            return f"{seconds:.1f}" if in_seconds else f"{round(frames or 0)}"

        unit = " s" if in_seconds else " frames"
        parts = [f"{gpus[0]} for clips under {number(bounds[0])}{unit}"]
        for gpu, low, high in zip(gpus[1:], bounds, bounds[1:]):
            parts.append(f"{gpu} from {number(low)} to {number(high)}{unit}")
        parts.append(f"{gpus[-1]} above {number(bounds[-1])}{unit}")
        return ", ".join(parts)

    def to_json(self) -> str | dict[str, Any]:
        """The JSON form: the GPU's name, or {"below", "above", "threshold_frames",
        "threshold_seconds", "source"} plus "steps" when the cheapest changes more than once.
        Raises nothing."""
        if not self.by_length:
            return self.gpu
        out: dict[str, Any] = {"below": self.gpu, "above": self.above,
                               "threshold_frames": self.threshold_frames,
                               "threshold_seconds": self.threshold_seconds, "source": self.source}
        if self.steps:
            out["steps"] = [c.to_dict() for c in self.steps]
        return out


@dataclass(frozen=True)
class Comparison:
    """One candidate against the baseline on the longest clip both ran: the seed's question (is it
    more times faster than it is more expensive?) answered with numbers."""

    gpu: str
    """The candidate."""
    clip: str
    """The clip compared on (the longest both ran: start-up matters least there)."""
    speedup: float
    """Baseline median seconds / the candidate's."""
    price_ratio: float
    """The candidate's $/s / the baseline's."""
    cost_ratio: float
    """The candidate's median cost on the clip / the baseline's."""
    cost_ratio_low: float
    """The lowest ratio the repeats allow (its cheapest run against the baseline's dearest)."""
    cost_ratio_high: float
    """The highest (its dearest run against the baseline's cheapest)."""
    cost_per_1000_frames: float
    """$ of 1,000 output frames at its median on the clip."""
    cost_per_output_minute: float
    """$ of one minute of output video at its median on the clip."""
    repeats: int
    """Fewest succeeded runs either side has on the clip."""

    def describe(self) -> str:
        """'L4 is 1.61x faster at 1.35x the price: 0.84x the cost per clip'. Raises nothing."""
        pace = f"{self.speedup:.2f}x faster" if self.speedup >= 1 else \
            f"{1 / self.speedup:.2f}x slower"
        spread = f" ({self.cost_ratio_low:.2f}-{self.cost_ratio_high:.2f}x over " \
                 f"{self.repeats} repeats)" if self.repeats > 1 else ""
        return (f"{self.gpu} is {pace} at {self.price_ratio:.2f}x the price: "
                f"{self.cost_ratio:.2f}x the cost per clip{spread}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return asdict(self)


def unit_costs(stats: GpuClipStats, frames: int, fps: float) -> tuple[float, float]:
    """($ per 1,000 frames, $ per output minute) of a median run of `frames` frames at `fps`.
    Raises nothing (0 frames gives 0)."""
    if frames <= 0:
        return 0.0, 0.0
    return stats.cost / frames * 1000.0, stats.cost / (frames / fps / 60.0)


def compare_to_baseline(summaries: Sequence[ClipSummary], fps: float) -> tuple[Comparison, ...]:
    """Each candidate other than the baseline against it, on the longest clip both ran (summaries
    are shortest first). Raises nothing."""
    out = []
    gpus = list(dict.fromkeys(st.gpu for s in summaries for st in s.stats))
    for gpu in gpus:
        for s in reversed(summaries):
            base, mine = s.get(s.baseline_gpu), s.get(gpu)
            if gpu == s.baseline_gpu or base is None or mine is None or not base.cost \
                    or not base.rate or not mine.median_seconds or not base.cost_min:
                continue
            per_1000, per_minute = unit_costs(mine, s.frames, fps)
            out.append(Comparison(
                gpu, s.clip, base.median_seconds / mine.median_seconds, mine.rate / base.rate,
                mine.cost / base.cost, mine.cost_min / base.cost_max, mine.cost_max / base.cost_min,
                per_1000, per_minute, min(base.runs, mine.runs)))
            break
    return tuple(out)


def headline(summaries: Sequence[ClipSummary], comparisons: Sequence[Comparison],
             fps: float) -> str:
    """The verdict's first line: each candidate against the baseline (Comparison.describe), with
    cost per 1,000 frames and per output minute of every candidate on the clip compared. Raises
    nothing ('' without a measured clip)."""
    clips = [s for s in summaries if s.stats]
    if not clips:
        return ""
    clip = next((s for s in clips if comparisons and s.clip == comparisons[0].clip), clips[-1])
    units = []
    for st in clip.stats:
        per_1000, per_minute = unit_costs(st, clip.frames, fps)
        units.append(f"{st.gpu} ${per_1000:.4f} per 1,000 frames, ${per_minute:.4f} per output "
                     f"minute")
    against = "; ".join(c.describe() for c in comparisons)
    lead = f"{against} (against {clip.baseline_gpu}, on {clip.clip})" if against else \
        f"{clip.baseline_gpu} alone (on {clip.clip})"
    return f"{lead}. {'; '.join(units)}."


@dataclass(frozen=True)
class Verdict:
    """Which GPU to use, by which rule, and why."""

    rule: str
    """One of RULES."""
    choice: Choice
    """What to use: one GPU, or for 'threshold' a GPU per range of clip length."""
    reason: str
    """One human sentence."""
    settled: bool
    """False when repeats leave the cost order of some clip open."""
    winners: dict[str, str] = field(default_factory=dict)
    """Clip -> cheapest GPU."""
    baseline_gpu: str = ""
    """The baseline GPU."""
    tolerance: float = DEFAULT_TOLERANCE
    """Tolerance used by within_tolerance."""
    candidates: tuple[str, ...] = ()
    """GPUs within tolerance of the cheapest on every clip."""
    unsettled_clips: tuple[str, ...] = ()
    """Clips whose winner is not settled by the repeats."""
    comparisons: tuple[Comparison, ...] = ()
    """Each candidate against the baseline (compare_to_baseline)."""
    headline: str = ""
    """The first line: the comparisons and the cost per 1,000 frames and output minute."""

    @property
    def title(self) -> str:
        """The rule's heading (RULE_TITLES), else the rule's name."""
        return RULE_TITLES.get(self.rule, self.rule)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"rule": self.rule, "choice": self.choice.to_json(), "reason": self.reason,
                "settled": self.settled, "winners": dict(self.winners),
                "baseline": self.baseline_gpu, "tolerance": self.tolerance,
                "candidates": list(self.candidates), "unsettled_clips": list(self.unsettled_clips),
                "headline": self.headline,
                "comparisons": [c.to_dict() for c in self.comparisons]}


@dataclass(frozen=True)
class Analysis:
    """Everything the analysis derives from one set of measurements."""

    baseline_gpu: str
    """The baseline GPU."""
    gpus: tuple[str, ...]
    """GPUs in plan order."""
    summaries: tuple[ClipSummary, ...]
    """Per clip, shortest first."""
    fits: dict[str, GpuFit]
    """GPU -> fit (GPUs with at least one succeeded run)."""
    rates: dict[str, float]
    """GPU -> $/s."""
    all_in_rates: dict[str, float]
    """GPU -> all-in $/s (card, CPU, memory), for the candidates whose runs all know it."""
    crossovers: tuple[Crossover, ...]
    """Where the cheapest fitted GPU changes, between the shortest and the longest clip."""
    verdict: Verdict
    """The decision."""
    failed: tuple[Measurement, ...]
    """Runs that did not succeed (not used)."""
    fps: float
    """Frames per second of the video, for lengths in seconds."""
    basis: str = "steady"
    """Which seconds it judged: 'steady' (job seconds) or 'billed' (the bill's run seconds)."""

    def to_dict(self) -> dict[str, Any]:
        """The verdict CLI's JSON: rule, choice, reason, settled, per_clip, failed, fits, crossovers."""
        out = self.verdict.to_dict()
        out.update({
            "per_clip": [s.to_dict() for s in self.summaries],
            "failed": [failure_dict(m) for m in self.failed],
            "fits": {g: f.to_dict() for g, f in self.fits.items()},
            "crossovers": [c.to_dict() for c in self.crossovers],
            "rates": dict(self.rates),
            "fps": self.fps,
            "basis": self.basis,
        })
        return out


def failure_dict(m: Measurement) -> dict[str, Any]:
    """A failed run as a plain dict (gpu, clip, repeat, status, error). Raises nothing."""
    return {"gpu": m.gpu, "clip": m.clip, "repeat": m.repeat, "status": m.status,
            "error": m.error}


# --------------------------------------------------------------------------- per clip


def gpu_order(measurements: Iterable[Measurement]) -> list[str]:
    """GPUs in order of first appearance (the plan's order). Raises nothing."""
    return list(dict.fromkeys(m.gpu for m in measurements))


def summarise_clips(measurements: Sequence[Measurement], baseline_gpu: str) -> list[ClipSummary]:
    """Per clip (shortest first) and GPU: median time, spread, fps, cost, speedup, break-even,
    winner and whether the order is settled. Failed runs are listed per clip, not used.

    Raises InputError for a negative time or rate."""
    for m in measurements:
        if m.seconds is not None and (not math.isfinite(m.seconds) or m.seconds < 0):
            raise InputError(f"run of {m.gpu} on {m.clip} has a bad time {m.seconds!r}")
        if not math.isfinite(m.rate) or m.rate < 0:
            raise InputError(f"run of {m.gpu} on {m.clip} has a bad rate {m.rate!r}")
    gpus = gpu_order(measurements)
    clips: dict[str, list[Measurement]] = {}
    for m in measurements:
        clips.setdefault(m.clip, []).append(m)
    summaries = [_summarise_clip(name, runs, gpus, baseline_gpu) for name, runs in clips.items()]
    return sorted(summaries, key=lambda s: (s.frames, s.clip))


def _summarise_clip(clip: str, runs: list[Measurement], gpus: list[str],
                    baseline_gpu: str) -> ClipSummary:
    ok = [m for m in runs if m.ok]
    failed = tuple(m for m in runs if not m.ok)
    frames = _mode([m.frames for m in ok] or [m.frames for m in runs])
    raw = {}
    for gpu in gpus:
        mine = [m for m in ok if m.gpu == gpu]
        if mine:
            raw[gpu] = mine
    base = raw.get(baseline_gpu)
    base_seconds = statistics.median(m.seconds for m in base) if base else None
    base_rate = statistics.median(m.rate for m in base) if base else None
    stats = []
    for gpu, mine in raw.items():
        seconds = [m.seconds for m in mine]
        med = statistics.median(seconds)
        rate = statistics.median(m.rate for m in mine)
        all_in = [m.all_in_rate for m in mine]
        stats.append(GpuClipStats(
            gpu=gpu, runs=len(mine), cold_runs=sum(m.cold for m in mine),
            median_seconds=med, min_seconds=min(seconds), max_seconds=max(seconds),
            fps=frames / med, rate=rate, cost=med * rate,
            cost_min=min(seconds) * rate, cost_max=max(seconds) * rate,
            all_in_cost=(med * statistics.median(all_in)) if None not in all_in else None,
            speedup=(base_seconds / med) if base_seconds is not None else None,
            break_even_seconds=(base_seconds * base_rate / rate)
            if base_seconds is not None and rate > 0 else None,
        ))
    winner = min(stats, key=lambda s: (s.cost, s.median_seconds)).gpu if stats else None
    settled = True
    if winner is not None:
        w = next(s for s in stats if s.gpu == winner)
        settled = all(s.cost_min > w.cost_max for s in stats if s.gpu != winner)
    return ClipSummary(clip, frames, baseline_gpu, tuple(stats), winner, settled, failed)


def _mode(values: list[int]) -> int:
    if not values:
        return 0
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return max(counts, key=lambda v: (counts[v], v))


# --------------------------------------------------------------------------- fit


def fit_gpu(points: Sequence[tuple[float, float]]) -> GpuFit:
    """Least squares of seconds = overhead + frames / throughput over (frames, seconds) points.

    With one clip length the overhead cannot be told apart: it is 0 and per_frame_s is the mean
    seconds per frame (note says so). A negative fitted overhead is refitted through the origin; a
    time that falls with length gives a constant (per_frame_s 0). Raises InputError when there are
    no points or a point has non-positive frames or negative seconds."""
    pts = [(float(f), float(s)) for f, s in points]
    if not pts:
        raise InputError("nothing to fit: no succeeded runs")
    for f, s in pts:
        if not (math.isfinite(f) and f > 0 and math.isfinite(s) and s >= 0):
            raise InputError(f"cannot fit the point ({f} frames, {s} s)")
    n = len(pts)
    xs = [f for f, _ in pts]
    ys = [s for _, s in pts]
    if len(set(xs)) == 1:
        per_frame = sum(ys) / sum(xs)
        return GpuFit(0.0, _throughput(per_frame), per_frame, None, n,
                      "one clip length: overhead cannot be separated, taken as 0")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    slope = sxy / sxx
    intercept = my - slope * mx
    note = ""
    if slope <= 0:
        slope, intercept = 0.0, my
        note = "time does not grow with clip length: fitted as a constant"
    elif intercept < 0:
        slope = sum(x * y for x, y in pts) / sum(x * x for x in xs)
        intercept = 0.0
        note = "negative overhead fitted: refitted through the origin"
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in pts)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else None)
    return GpuFit(intercept, _throughput(slope), slope, r2, n, note)


def _throughput(per_frame: float) -> float | None:
    return 1.0 / per_frame if per_frame > 0 else None


def fit_all(measurements: Sequence[Measurement]) -> dict[str, GpuFit]:
    """fit_gpu per GPU over its succeeded runs (GPUs without one are left out). Raises InputError
    as fit_gpu does."""
    fits = {}
    for gpu in gpu_order(measurements):
        pts = [(m.frames, m.seconds) for m in measurements if m.gpu == gpu and m.ok]
        if pts:
            fits[gpu] = fit_gpu(pts)
    return fits


def rates_of(measurements: Sequence[Measurement]) -> dict[str, float]:
    """GPU -> its $/s (median over its runs, succeeded first). Raises nothing."""
    rates = {}
    for gpu in gpu_order(measurements):
        mine = [m.rate for m in measurements if m.gpu == gpu and m.ok] or \
               [m.rate for m in measurements if m.gpu == gpu]
        rates[gpu] = statistics.median(mine)
    return rates


def all_in_rates_of(measurements: Sequence[Measurement]) -> dict[str, float]:
    """GPU -> its all-in $/s (median over its succeeded runs), for GPUs whose succeeded runs all
    know it. Raises nothing."""
    out = {}
    for gpu in gpu_order(measurements):
        mine = [m.all_in_rate for m in measurements if m.gpu == gpu and m.ok]
        if mine and None not in mine:
            out[gpu] = statistics.median(mine)
    return out


def fitted_cost(fit: GpuFit, rate: float, frames: float) -> float:
    """GPU-only $ of one clip of `frames` frames by the fit. Raises nothing."""
    return fit.seconds(frames) * rate


# --------------------------------------------------------------------------- crossovers


def crossovers(fits: Mapping[str, GpuFit], rates: Mapping[str, float], fps: float | None = None,
               min_frames: float = 1.0, max_frames: float | None = None) -> list[Crossover]:
    """Clip lengths (frames, in (min_frames, max_frames]) where the cheapest GPU by fitted cost
    changes, in increasing order: the breakpoints of the lower envelope of the cost lines.

    Ties go to the GPU whose cost grows slower, then to the earlier GPU. Raises InputError when a
    fitted GPU has no rate."""
    missing = [g for g in fits if g not in rates]
    if missing:
        raise InputError(f"no price for {', '.join(missing)}")
    order = list(fits)
    lines = {g: (rates[g] * fits[g].overhead_s, rates[g] * fits[g].per_frame_s) for g in order}
    if not lines:
        return []

    def cost(g: str, n: float) -> float:
        return lines[g][0] + lines[g][1] * n

    n = float(min_frames)
    current = min(order, key=lambda g: (_rounded(cost(g, n)), lines[g][1], order.index(g)))
    found: list[Crossover] = []
    while True:
        best: tuple[float, float, int, str] | None = None
        c0, s0 = lines[current]
        for g in order:
            ci, si = lines[g]
            if g == current or si >= s0:
                continue
            at = (ci - c0) / (s0 - si)
            if at <= n * (1 + 1e-12):
                continue
            key = (at, si, order.index(g), g)
            if best is None or key < best:
                best = key
        if best is None or (max_frames is not None and best[0] > max_frames):
            return found
        at, _, _, g = best
        found.append(Crossover(at, at / fps if fps else None, current, g))
        current, n = g, at


def _rounded(value: float) -> float:
    return round(value, 15)


# --------------------------------------------------------------------------- verdict


def verdict(summaries: Sequence[ClipSummary], fits: Mapping[str, GpuFit],
            rates: Mapping[str, float], tolerance: float = DEFAULT_TOLERANCE,
            fps: float = 30.0) -> Verdict:
    """The decision over the clips (rules and their order: see the module docstring).

    `fps` turns threshold frames into seconds of video. Raises InputError when no clip has a
    succeeded run or the tolerance is not a number in [0, 1)."""
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and 0 <= tolerance < 1):
        raise InputError(f"tolerance {tolerance!r} must be a fraction in [0, 1), e.g. 0.10")
    clips = [s for s in summaries if s.winner is not None]
    if not clips:
        raise InputError("no succeeded runs to judge: every run failed")
    baseline = clips[0].baseline_gpu
    winners = {s.clip: s.winner for s in clips}
    unsettled = tuple(s.clip for s in clips if not s.settled)
    settled = not unsettled
    comparisons = compare_to_baseline(summaries, fps)
    common = dict(winners=winners, baseline_gpu=baseline, tolerance=tolerance,
                  unsettled_clips=unsettled, comparisons=comparisons,
                  headline=headline(summaries, comparisons, fps))
    candidates = _near_everywhere(clips, tolerance)
    tail = _missing_clause(clips) + _unsettled_clause(unsettled)

    if len(candidates) >= 2:
        fastest = min(candidates, key=lambda g: (sum(s.get(g).median_seconds for s in clips),
                                                 sum(s.get(g).cost for s in clips)))
        others = [g for g in candidates if g != fastest]
        reason = (f"{_join(candidates)} cost within {tolerance:.0%} of the cheapest on every clip, "
                  f"so the fastest, {fastest}, is the choice"
                  f" ({_speed_phrase(clips, fastest, others)}){tail}.")
        # Within tolerance, speed decides: the cost order cannot change the choice.
        return Verdict("within_tolerance", Choice(fastest), reason, settled, candidates=candidates,
                       **common)

    distinct = list(dict.fromkeys(winners.values()))
    if len(distinct) == 1:
        gpu = distinct[0]
        longest = clips[-1]
        if gpu == baseline:
            reason = (f"{baseline}, the baseline, is cheapest on {_every(clips)}"
                      f"{_runner_up_phrase(longest, gpu)}{tail}.")
            return Verdict("keep_baseline", Choice(gpu), reason, settled, candidates=candidates,
                           **common)
        reason = (f"{gpu} is cheapest on {_every(clips)}"
                  f"{_against_baseline_phrase(longest, gpu, baseline)}{tail}.")
        return Verdict("single_winner", Choice(gpu), reason, settled, candidates=candidates,
                       **common)

    choice, reason = _threshold(clips, fits, rates, fps)
    return Verdict("threshold", choice, reason + tail + ".", settled, candidates=candidates, **common)


def _near_everywhere(clips: Sequence[ClipSummary], tolerance: float) -> tuple[str, ...]:
    """GPUs measured on every clip whose cost is within tolerance of that clip's cheapest."""
    sets = []
    for s in clips:
        cheapest = min(st.cost for st in s.stats)
        sets.append({st.gpu for st in s.stats if st.cost <= cheapest * (1 + tolerance) + 1e-15})
    common = set.intersection(*sets)
    order = [st.gpu for st in clips[0].stats]
    return tuple(g for g in order if g in common)


def _threshold(clips: Sequence[ClipSummary], fits: Mapping[str, GpuFit],
               rates: Mapping[str, float], fps: float) -> tuple[Choice, str]:
    lo, hi = clips[0].frames, clips[-1].frames
    usable = {g: f for g, f in fits.items() if g in rates}
    steps = crossovers(usable, rates, fps, min_frames=lo, max_frames=hi) if usable else []
    source = "fit"
    if not steps:
        # The fit smooths the change away: place it between the clips whose winners differ.
        source = "clips"
        for a, b in zip(clips, clips[1:]):
            if a.winner != b.winner:
                mid = (a.frames + b.frames) / 2
                steps = [Crossover(mid, mid / fps if fps else None, a.winner, b.winner)]
                break
    first, last = steps[0], steps[-1]
    frames_n = int(round(first.frames))
    choice = Choice(first.from_gpu, above=first.to_gpu, threshold_frames=frames_n,
                    threshold_seconds=round(frames_n / fps, 3) if fps else None, source=source,
                    steps=tuple(steps) if len(steps) > 1 else ())
    if len(steps) == 1:
        how = "by the fitted cost per clip length" if source == "fit" else \
            "between the measured clips (the fit shows no crossover in range)"
        reason = (f"The cheapest GPU changes with clip length: {first.from_gpu} below about "
                  f"{frames_n} frames ({_secs(frames_n, fps)}) and {first.to_gpu} above, {how}")
    else:
        parts = [f"{first.from_gpu} below about {frames_n} frames ({_secs(frames_n, fps)})"]
        for a, b in zip(steps, steps[1:]):
            n = int(round(b.frames))
            parts.append(f"{a.to_gpu} up to about {n} frames ({_secs(n, fps)})")
        parts.append(f"{last.to_gpu} above")
        reason = "The cheapest GPU changes with clip length: " + ", ".join(parts) + \
            ", by the fitted cost per clip length"
    return choice, reason


def _secs(frames: float, fps: float) -> str:
    return f"{frames / fps:.1f} s" if fps else "? s"


def _every(clips: Sequence[ClipSummary]) -> str:
    names = ", ".join(s.clip for s in clips)
    return f"every clip ({names})" if len(clips) > 1 else f"the only clip ({names})"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _speed_phrase(clips: Sequence[ClipSummary], fastest: str, others: Sequence[str]) -> str:
    longest = clips[-1]
    parts = []
    for g in others:
        ratio = longest.get(g).median_seconds / longest.get(fastest).median_seconds
        parts.append(f"{ratio:.2f}x faster than {g}")
    return f"{'; '.join(parts)} on {longest.clip}"


def _runner_up_phrase(clip: ClipSummary, winner: str) -> str:
    others = [s for s in clip.stats if s.gpu != winner]
    if not others:
        return " (no other GPU was measured)"
    w = clip.get(winner)
    nxt = min(others, key=lambda s: s.cost)
    return f"; on {clip.clip} the next cheapest, {nxt.gpu}, costs {nxt.cost / w.cost:.2f}x as much"


def _against_baseline_phrase(clip: ClipSummary, winner: str, baseline: str) -> str:
    w, b = clip.get(winner), clip.get(baseline)
    if b is None:
        return ""
    return (f", at {w.cost / b.cost:.2f}x {baseline}'s cost on {clip.clip} "
            f"({w.median_seconds:.1f} s against a break-even of {w.break_even_seconds:.1f} s)")


def _missing_clause(clips: Sequence[ClipSummary]) -> str:
    """Which GPUs have no succeeded run on some clip (their failures shape the winners there)."""
    gpus = list(dict.fromkeys(st.gpu for s in clips for st in s.stats))
    gaps = [f"{g} on {s.clip}" for s in clips for g in gpus if s.get(g) is None]
    return f"; no succeeded run of {', '.join(gaps)}" if gaps else ""


def _unsettled_clause(unsettled: Sequence[str]) -> str:
    if not unsettled:
        return ""
    return (f"; the repeats' cost ranges overlap on {', '.join(unsettled)}, "
            f"so the order there is not settled")


# --------------------------------------------------------------------------- everything at once


def analyse(measurements: Sequence[Measurement], baseline_gpu: str | None = None,
            tolerance: float = DEFAULT_TOLERANCE, fps: float = 30.0) -> Analysis:
    """Summaries, fits, crossovers and the verdict of a set of runs. The baseline defaults to the
    first GPU of the measurements. Raises InputError when nothing succeeded, the baseline is not
    among the GPUs, or the tolerance/fps are bad."""
    if not measurements:
        raise InputError("no runs to analyse")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise InputError(f"fps {fps!r} must be positive")
    gpus = tuple(gpu_order(measurements))
    baseline = baseline_gpu or gpus[0]
    if baseline not in gpus:
        raise InputError(f"baseline GPU {baseline!r} has no runs; GPUs are {', '.join(gpus)}")
    summaries = tuple(summarise_clips(measurements, baseline))
    fits = fit_all(measurements)
    rates = rates_of(measurements)
    all_in = all_in_rates_of(measurements)
    measured = [s for s in summaries if s.winner is not None]
    lo = measured[0].frames if measured else 1
    hi = measured[-1].frames if measured else None
    cross = tuple(crossovers(fits, rates, fps, min_frames=lo, max_frames=hi)) if fits else ()
    decision = verdict(summaries, fits, rates, tolerance, fps)
    failed = tuple(m for m in measurements if not m.ok)
    return Analysis(baseline, gpus, summaries, fits, rates, all_in, cross, decision, failed,
                    float(fps))


# --------------------------------------------------------------------------- projections


def pareto_front(points: Iterable[tuple[float, float, str]]) -> list[str]:
    """Labels of the (cost, latency, label) points no other point beats on both (lower or equal on
    both, lower on one), cheapest first. Raises nothing."""
    pts = list(points)
    front = [p for p in pts
             if not any(q[0] <= p[0] and q[1] <= p[1] and (q[0] < p[0] or q[1] < p[1])
                        for q in pts)]
    return [p[2] for p in sorted(front, key=lambda p: (p[0], p[1]))]
