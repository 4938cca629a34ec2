"""Exports: an experiment as E6-format JSON (plus our fields) and as markdown findings.

Inputs are plain dicts as the store hands them out. A run dict has the keys gpu, clip, status,
error, frames_out, frames_expected, stage_total, cost_gpu, cost_all_in, cold, repeat_index, fps,
price_gpu, device_name (missing keys are treated as unknown); optionally billed_seconds and rate.
Only whitelisted experiment fields are copied into an export, so nothing secret can leak into it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Mapping, Sequence

from bench.analysis import DEFAULT_TOLERANCE, Analysis, Measurement, analyse, gpu_order
from bench.e6 import (DEFAULT_FPS, E6File, E6Result, dump_e6, measurements_from_e6)
from bench.errors import InputError
from bench.formatting import format_cost, format_rate
from bench.pricing import DEFAULT_PRICES, PriceTable, canonical_gpu, gpu_for_device

__all__ = ["experiment_to_e6", "findings_markdown", "measurements_from_e6", "measurements_from_runs",
           "analyse_runs"]

EXPORT_SCHEMA = "upscale-gpu-bench/1"
"""Version of the extra fields our exports add to the E6 format."""
EXPERIMENT_FIELDS = ("id", "experiment_id", "name", "created_at", "finished_at", "status", "preset",
                     "source", "model", "engine", "backend", "repeats", "fps", "price_date",
                     "price_table_date", "price_source", "notes", "origin", "commit",
                     "schema_version")
"""Experiment fields copied into exports (a whitelist: nothing else can leak)."""
RUN_FIELDS = ("run_id", "gpu", "clip", "repeat_index", "status", "error", "cold", "device_name",
              "price_gpu", "frames_out", "frames_expected", "stage_total", "billed_seconds",
              "client_wall_seconds", "cost_gpu", "cost_all_in", "fps", "upscale_fps", "stages",
              "fidelity", "model", "engine", "precision", "weights_provenance", "weights_sha256",
              "torch_version", "cuda_version", "output_width", "output_height", "started_at",
              "finished_at")
"""Run fields copied into the export's per-run section."""


# --------------------------------------------------------------------------- runs -> measurements


def price_table_of(experiment: Mapping[str, Any] | None) -> PriceTable:
    """The experiment's stored price table ('prices' or 'price_table'): a PriceTable dict, or a
    flat {GPU: $/s} map as an imported E6 file has (applied over the catalog; names the catalog
    does not know are left to the runs' own cost_gpu). Else the catalog.

    Raises InputError for a malformed stored table."""
    raw = (experiment or {}).get("prices") or (experiment or {}).get("price_table")
    if isinstance(raw, PriceTable):
        return raw
    if not isinstance(raw, Mapping):
        return DEFAULT_PRICES
    if "gpus" in raw:
        return PriceTable.from_dict(raw)
    known = {}
    for gpu, rate in raw.items():
        try:
            known[canonical_gpu(str(gpu))] = rate
        except InputError:
            continue
    return DEFAULT_PRICES.with_overrides(known)


def measurements_from_runs(runs: Sequence[Mapping[str, Any]],
                           prices: PriceTable = DEFAULT_PRICES) -> list[Measurement]:
    """One Measurement per run dict.

    seconds: billed_seconds, else stage_total, else client_wall_seconds. rate ($/s), first known
    of: the run's 'rate'; the table's rate of price_gpu; of the card matching device_name; of the
    gpu label itself (Modal runs); cost_gpu / seconds (e.g. CPU runs priced by core-seconds).
    all_in_rate: cost_all_in / seconds when both are known.

    Raises InputError when a run has no gpu/clip, or a succeeded run has no price."""
    out = []
    for i, run in enumerate(runs):
        gpu, clip = run.get("gpu"), run.get("clip")
        if not gpu or not clip:
            raise InputError(f"run {i} has no gpu or clip")
        status = str(run.get("status") or "unknown")
        frames = _int(run.get("frames_out")) if status == "succeeded" else 0
        frames = frames or _int(run.get("frames_expected"))
        seconds = _first_number(run, ("billed_seconds", "stage_total", "client_wall_seconds"))
        rate = _rate(run, seconds, prices)
        if rate is None:
            if status == "succeeded":
                raise InputError(f"run of {gpu} on {clip} has no price: give its card "
                                 f"(e.g. cuda:0=T4) or a rate")
            rate = 0.0
        all_in = _number(run.get("cost_all_in"))
        error = run.get("error")
        if status in ("queued", "running"):
            error = f"run {status}, not finished"
        elif status != "succeeded" and not error:
            error = f"run {status}"
        out.append(Measurement(
            gpu=str(gpu), clip=str(clip), frames=frames, seconds=seconds, status=status, rate=rate,
            repeat=_int(run.get("repeat_index")), cold=bool(run.get("cold")),
            error=str(error) if error else None,
            all_in_rate=(all_in / seconds) if all_in is not None and seconds else None,
        ))
    return out


def _rate(run: Mapping[str, Any], seconds: float | None, prices: PriceTable) -> float | None:
    rate = _number(run.get("rate"))
    if rate is not None:
        return rate
    for card in (run.get("price_gpu"), gpu_for_device(str(run.get("device_name") or "")),
                 run.get("gpu")):
        if card:
            try:
                return prices.rate(str(card))
            except InputError:
                continue
    cost = _number(run.get("cost_gpu"))
    if cost is not None and seconds:
        return cost / seconds
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _int(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else 0


def _first_number(run: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for key in keys:
        value = _number(run.get(key))
        if value is not None:
            return value
    return None


def _plan_of(experiment: Mapping[str, Any]) -> dict[str, Any]:
    plan = experiment.get("plan")
    return dict(plan) if isinstance(plan, Mapping) else {}


def _fps_of(experiment: Mapping[str, Any]) -> float:
    fps = _number(_plan_of(experiment).get("fps")) or _number(experiment.get("fps"))
    return fps if fps and fps > 0 else DEFAULT_FPS


def _baseline_of(experiment: Mapping[str, Any], measurements: Sequence[Measurement]) -> str | None:
    gpus = gpu_order(measurements)
    for g in _plan_of(experiment).get("gpus") or ():
        label = g.get("label") if isinstance(g, Mapping) else g
        if label in gpus:
            return label
    return gpus[0] if gpus else None


def analyse_runs(experiment: Mapping[str, Any], runs: Sequence[Mapping[str, Any]],
                 tolerance: float = DEFAULT_TOLERANCE) -> Analysis:
    """The analysis of an experiment's runs (baseline: the plan's first GPU; fps: the plan's).

    Raises InputError when no run succeeded, a succeeded run has no price, or the tolerance is bad."""
    ms = measurements_from_runs(runs, price_table_of(experiment))
    return analyse(ms, _baseline_of(experiment, ms), tolerance, _fps_of(experiment))


# --------------------------------------------------------------------------- E6 export


def experiment_to_e6(experiment: Mapping[str, Any], runs: Sequence[Mapping[str, Any]],
                     analysis: Analysis | None = None) -> dict[str, Any]:
    """The experiment in the original E6 format (timestamp, config, pricing, results, comparisons)
    plus a 'bench' section: experiment fields, price table, per-run details, fits, crossovers and
    the verdict. `analysis` defaults to analyse_runs(experiment, runs); with no succeeded run the
    export still lists every result.

    Raises InputError for a malformed run or price table."""
    prices = price_table_of(experiment)
    ms = measurements_from_runs(runs, prices)
    if analysis is None:
        try:
            analysis = analyse(ms, _baseline_of(experiment, ms), DEFAULT_TOLERANCE,
                               _fps_of(experiment))
        except InputError:
            analysis = None
    results = tuple(_e6_result(m, run) for m, run in zip(ms, runs))
    pricing = {}
    for m in ms:
        if m.rate > 0:
            pricing.setdefault(m.gpu, m.rate)
    e6 = E6File(timestamp=_timestamp(experiment.get("created_at") or experiment.get("timestamp")),
                config=_config(experiment, ms), pricing=pricing, results=results, comparisons=None)
    bench = {
        "schema": EXPORT_SCHEMA,
        "experiment": {k: _plain(experiment[k]) for k in EXPERIMENT_FIELDS if k in experiment},
        "price_table": prices.to_dict(),
        "runs": [{k: _plain(run[k]) for k in RUN_FIELDS if k in run} for run in runs],
    }
    if analysis is not None:
        bench["analysis"] = analysis.to_dict()
    return dump_e6(e6, {"bench": bench}, analysis=analysis)


def _e6_result(m: Measurement, run: Mapping[str, Any]) -> E6Result:
    fps = _number(run.get("fps"))
    if fps is None and m.seconds and m.frames:
        fps = m.frames / m.seconds
    ok = m.ok
    return E6Result(gpu=m.gpu, clip=m.clip, frames=m.frames, elapsed=m.seconds,
                    fps=fps if ok else None, status="succeeded" if ok else "failed",
                    error=None if ok else (m.error or f"run {m.status}"),
                    repeat=m.repeat, cold=m.cold)


def _config(experiment: Mapping[str, Any], ms: Sequence[Measurement]) -> dict[str, Any]:
    plan = _plan_of(experiment)
    config = {k: experiment[k] for k in ("preset", "source", "model", "engine", "backend")
              if experiment.get(k) is not None}
    config.update(plan)
    labels = [g.get("label") if isinstance(g, Mapping) else g for g in plan.get("gpus") or ()]
    config["gpus"] = [g for g in labels if g] or gpu_order(ms)
    config["fps"] = _fps_of(experiment)
    return config


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO text, non-finite floats as None."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _timestamp(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).isoformat()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- markdown


def findings_markdown(analysis: Analysis, experiment: Mapping[str, Any] | None = None,
                      prices: PriceTable | None = None) -> str:
    """A findings section for an experiment log: context, a table per clip, the verdict, the cost
    curves in words, cold and failed runs. Raises nothing."""
    experiment = experiment or {}
    prices = prices or price_table_of(experiment)
    title = experiment.get("name") or experiment.get("id") or experiment.get("experiment_id")
    lines = [f"## Findings{f': {title}' if title else ''}", ""]
    context = [f"`{experiment[k]}`" if k == "source" else f"{k} {experiment[k]}"
               for k in ("source", "model", "engine", "backend", "preset") if experiment.get(k)]
    repeats = max((st.runs for s in analysis.summaries for st in s.stats), default=0)
    lines.append(
        (", ".join(context) + ". " if context else "")
        + f"{len(analysis.summaries)} clips x {len(analysis.gpus)} GPUs"
        + f" (up to {repeats} succeeded run{'s' if repeats != 1 else ''} each). "
        + f"Baseline: {analysis.baseline_gpu}. Prices: {prices.source}, {prices.date}: "
        + ", ".join(f"{g} {format_rate(r)}/s" for g, r in analysis.rates.items()) + ".")
    lines += ["", "### Per clip", "",
              "| Clip | Frames | GPU | Runs | Time (s) | Spread (s) | FPS | GPU cost | All-in cost "
              "| Speedup | Break-even (s) |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in analysis.summaries:
        for st in s.stats:
            mark = " **(cheapest)**" if st.gpu == s.winner else ""
            lines.append(
                f"| {s.clip} | {s.frames} | {st.gpu}{mark} | {st.runs} | {st.median_seconds:.1f} "
                f"| {st.min_seconds:.1f}-{st.max_seconds:.1f} | {st.fps:.2f} | {format_cost(st.cost)} "
                f"| {format_cost(st.all_in_cost)} | {_fmt(st.speedup, '.2f', 'x')} "
                f"| {_fmt(st.break_even_seconds, '.1f')} |")
        if not s.stats:
            lines.append(f"| {s.clip} | {s.frames} | (no succeeded run) | 0 | | | | | | | |")
    lines.append("")
    lines.append("Break-even: the time at which a GPU costs the same as the baseline "
                 "(baseline time x baseline rate / its rate); below it, it is cheaper.")
    v = analysis.verdict
    lines += ["", "### Verdict", "", f"**{v.rule}**: {_choice_text(v.choice)}. {v.reason}"]
    if not v.settled:
        lines.append("")
        lines.append(f"Not settled: the repeats' cost ranges overlap on {', '.join(v.unsettled_clips)}; "
                     "more repeats would tell.")
    lines += ["", "### Cost curves", ""]
    lines += _curve_lines(analysis)
    cold = [(s.clip, st) for s in analysis.summaries for st in s.stats if st.cold_runs]
    if cold:
        lines += ["", "### Cold starts", ""]
        lines += [f"- {st.gpu} on {clip}: {st.cold_runs} of {st.runs} runs were cold "
                  f"(start-up included in their time and cost)" for clip, st in cold]
    if analysis.failed:
        lines += ["", "### Failed runs (not used)", ""]
        lines += [f"- {m.gpu} on {m.clip} (repeat {m.repeat}): {m.error or m.status}"
                  for m in analysis.failed]
    return "\n".join(lines) + "\n"


def _curve_lines(analysis: Analysis) -> list[str]:
    out = []
    for gpu, fit in analysis.fits.items():
        rate = analysis.rates[gpu]
        speed = f"{fit.throughput_fps:.2f} fps" if fit.throughput_fps else "no growth with length"
        r2 = f", R² {fit.r2:.3f}" if fit.r2 is not None else ""
        note = f" ({fit.note})" if fit.note else ""
        out.append(f"- {gpu}: {fit.overhead_s:.1f} s fixed + {speed}; "
                   f"{format_cost(fit.per_frame_s * rate)} per extra frame, "
                   f"{format_cost(fit.overhead_s * rate)} per clip of overhead{r2}{note}.")
    measured = [s for s in analysis.summaries if s.winner]
    if not measured:
        return out
    lo, hi = measured[0].frames, measured[-1].frames
    if analysis.crossovers:
        for c in analysis.crossovers:
            secs = f" ({c.seconds:.1f} s of video)" if c.seconds is not None else ""
            out.append(f"- Crossover: {c.from_gpu} is cheaper below about {c.frames:.0f} frames"
                       f"{secs}, {c.to_gpu} above.")
    elif analysis.fits:
        cheapest = min(analysis.fits, key=lambda g: analysis.fits[g].seconds(hi) * analysis.rates[g])
        out.append(f"- No crossover between {lo} and {hi} frames: by the fit {cheapest} stays "
                   f"cheapest over that range.")
    return out


def _choice_text(choice: Any) -> str:
    if isinstance(choice, Mapping):
        secs = choice.get("threshold_seconds")
        return (f"{choice['below']} below {choice['threshold_frames']} frames"
                f"{f' ({secs:g} s)' if secs is not None else ''}, {choice['above']} above")
    return f"use {choice}"


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"
