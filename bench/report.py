"""Exports of a stored experiment: E6-format JSON (plus our fields), markdown findings, and its
runs as JSON (the CLI's --json).

The experiment comes as its store record (ExperimentRow), the runs as rows of store.runs.list_runs;
bench.experiments reads both (prices, plan, Measurements, the analysis); this module only writes
documents. Only whitelisted experiment and run fields are copied into an export.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Sequence

from bench.analysis import DEFAULT_TOLERANCE, Analysis, Measurement, gpu_order
from bench.billing import ExperimentBill
from bench.e6 import E6File, E6Result, dump_e6, measurements_from_e6
from bench.escape import markdown_text as md
from bench.experiments import (
    Runs,
    analyse_measurements,
    analyse_runs,
    bill_of,
    experiment_bill_in,
    load_experiment,
    measurements_from_runs,
    plan_candidates,
    plan_dict,
    plan_fps,
    prices_of,
    read_runs,
    run_records,
)
from bench.formatting import as_finite, format_cost, format_rate, repeat_label
from bench.pricing import PriceTable
from core.errors import InputError
from core.jsonsafe import json_safe
from store import runs as store_runs
from store.db import Database
from store.runs import STAGE_COLUMNS, ExperimentRow

__all__ = ["experiment_to_e6", "failures_markdown", "findings_markdown", "measurements_from_e6", "run_json",
           "run_summaries", "export_experiment"]

EXPORT_SCHEMA = "upscale-gpu-bench/1"
"""Version of the extra fields our exports add to the E6 format."""
EXPERIMENT_FIELDS = ("id", "experiment_id", "name", "created_at", "finished_at", "status", "preset",
                     "source", "model", "engine", "backend", "repeats", "fps", "price_date",
                     "price_table_date", "price_source", "notes", "origin", "commit",
                     "schema_version")
"""Experiment fields copied into exports (a whitelist: nothing else can leak)."""
RUN_FIELDS = ("run_id", "gpu", "candidate", "device", "price_card", "job_seconds",
              "startup_seconds", "cost", "rate", "all_in_rate", "clip", "repeat_index", "status", "error", "cold", "device_name",
              "price_gpu", "frames_out", "frames_expected", "stage_total", "billed_seconds",
              "client_wall_seconds", "cost_gpu", "cost_all_in", "fps", "upscale_fps", "stages",
              "fidelity", "model", "engine", "precision", "weights_provenance", "weights_sha256",
              "torch_version", "cuda_version", "output_width", "output_height", "started_at",
              "finished_at", "queue_wait_seconds", "container_id",
              "container_started_at", "job_started_at", "job_finished_at", "cpu_cores",
              "cpu_used_cores", "memory_gib", "peak_memory_gib")
"""Run fields copied into the export's per-run section."""
FIDELITY_COLUMNS = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "fidelity_frames")
"""Run columns gathered into a run's 'fidelity' object."""


# --------------------------------------------------------------------------- a stored experiment


def export_experiment(db: Database, experiment_id: str, fmt: str) -> dict[str, Any] | str:
    """E6-format JSON dict ('json') or markdown findings ('md') of a stored experiment.
    Raises InputError for an unknown id or format; StorageError. A markdown export of an experiment
    without a verdict (every run failed) lists its runs and why they failed."""
    experiment = load_experiment(db, experiment_id)
    if fmt not in ("json", "md"):
        raise InputError(f"unknown export format {fmt!r}; choose json or md")
    runs = read_runs(store_runs.list_runs(db, experiment_id=experiment_id), experiment)
    bill = experiment_bill_in(db, experiment, runs)
    if fmt == "json":  # strict JSON: no NaN or Infinity
        return json_safe(experiment_to_e6(experiment, runs, bill=bill))
    try:
        analysis = analyse_runs(experiment, runs)
    except InputError as exc:  # e.g. every run failed: report the failures instead
        return failures_markdown(experiment, runs, str(exc))
    return findings_markdown(analysis, experiment, bill=bill)


def run_json(run: Mapping[str, Any]) -> dict[str, Any]:
    """One stored run as JSON: every column (result_json left out) plus run_id, stage_total,
    'stages' {stage: seconds} and, when measured, 'fidelity'. Raises nothing."""
    out = {k: json_safe(v) for k, v in run.items() if k != "result_json"}
    out["run_id"] = out.get("id")
    out["stage_total"] = out.get("total_seconds")
    out["stages"] = {stage: out.get(col) for stage, col in STAGE_COLUMNS.items()
                     if out.get(col) is not None}
    if out.get("psnr") is not None:
        out["fidelity"] = {k: out.get(k) for k in FIDELITY_COLUMNS}
    return out


def run_summaries(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    """The runs of an experiment as the CLI's --json prints them: run_json of read_runs (its
    figures included: candidate, job_seconds, startup_seconds, fps, cost, cost_all_in). Raises
    InputError for an unknown id, StorageError."""
    experiment = load_experiment(db, experiment_id)
    return [run_json(run) for run in
            read_runs(store_runs.list_runs(db, experiment_id=experiment_id), experiment)]


# --------------------------------------------------------------------------- E6 export


def experiment_to_e6(experiment: ExperimentRow, runs: Sequence[Mapping[str, Any]],
                     analysis: Analysis | None = None,
                     bill: ExperimentBill | None = None) -> dict[str, Any]:
    """The experiment in the original E6 format (timestamp, config, pricing, results, comparisons)
    plus a 'bench' section: experiment fields, price table, per-run details, fits, crossovers and
    the verdict, for runs as read_runs gives them: results are labelled by candidate and timed in
    job seconds, exactly as Compare and the CLI show them. `analysis` defaults to the analysis of
    the runs, `bill` to bill_of them; with no succeeded run the export still lists every result.

    Raises InputError for a malformed run or price table."""
    prices = prices_of(experiment)
    records = list(runs)
    ms = measurements_from_runs(records)
    if analysis is None:
        try:
            analysis = analyse_measurements(experiment, ms, DEFAULT_TOLERANCE)
        except InputError:
            analysis = None
    results = tuple(_e6_result(m, run) for m, run in zip(ms, records))
    pricing = {}
    for m in ms:
        if m.rate > 0:
            pricing.setdefault(m.gpu, m.rate)
    e6 = E6File(timestamp=_timestamp(experiment.created_at), config=_config(experiment, ms),
                pricing=pricing, results=results, comparisons=None)
    fields = _experiment_fields(experiment)
    bench = {
        "schema": EXPORT_SCHEMA,
        "experiment": {k: fields[k] for k in EXPERIMENT_FIELDS if k in fields},
        "price_table": prices.to_dict(),
        "runs": [{k: v for k, v in run_json(run).items() if k in RUN_FIELDS}
                 for run in records],
        # Steady state (warm containers) beside this experiment's bill (container lifetimes).
        "bill": (bill or bill_of(experiment, records)).to_dict(),
    }
    if analysis is not None:
        bench["analysis"] = analysis.to_dict()
    return dump_e6(e6, {"bench": bench}, analysis=analysis)


def _experiment_fields(experiment: ExperimentRow) -> dict[str, Any]:
    """The record's fields as JSON, with the aliases exports have always carried."""
    fields = {k: json_safe(getattr(experiment, k)) for k in experiment.__dataclass_fields__}
    fields.update(experiment_id=experiment.id, price_date=experiment.price_table_date)
    return fields


def _e6_result(m: Measurement, run: Mapping[str, Any]) -> E6Result:
    fps = as_finite(run.get("fps"))
    ok = m.ok
    return E6Result(gpu=m.gpu, clip=m.clip, frames=m.frames, elapsed=m.seconds,
                    fps=fps if ok else None, status="succeeded" if ok else "failed",
                    error=None if ok else (m.error or f"run {m.status}"),
                    repeat=m.repeat, cold=m.cold)


def _config(experiment: ExperimentRow, ms: Sequence[Measurement]) -> dict[str, Any]:
    config = {k: getattr(experiment, k) for k in ("preset", "source", "model", "engine", "backend")
              if getattr(experiment, k) is not None}
    config.update(plan_dict(experiment))
    config["gpus"] = plan_candidates(experiment) or gpu_order(ms)
    config["fps"] = plan_fps(experiment)
    return config


def _timestamp(value: dt.datetime | str | None) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- markdown


def findings_markdown(analysis: Analysis, experiment: ExperimentRow | None = None,
                      prices: PriceTable | None = None, bill: ExperimentBill | None = None) -> str:
    """A findings section for an experiment log: context, a table per clip, the verdict, the cost
    curves in words, the bill (when given and something was billed), cold and failed runs.
    `prices` defaults to the experiment's. Raises InputError only for a malformed stored price
    table."""
    prices = prices or prices_of(experiment)
    lines = [_title(experiment), ""]
    context = _context(experiment)
    repeats = max((st.runs for s in analysis.summaries for st in s.stats), default=0)
    lines.append(
        (", ".join(context) + ". " if context else "")
        + f"{len(analysis.summaries)} clips x {len(analysis.gpus)} GPUs"
        + f" (up to {repeats} succeeded run{'s' if repeats != 1 else ''} each). "
        + f"Baseline: {md(analysis.baseline_gpu)}. Prices: {md(prices.source)}, {md(prices.date)}: "
        + ", ".join(f"{md(g)} {format_rate(r)}/s" for g, r in analysis.rates.items()) + ".")
    lines += ["", "### Per clip", "",
              "| Clip | Frames | Candidate | Runs | Job time (s) | Spread (s) | FPS | GPU cost | All-in cost "
              "| Speedup | Break-even (s) |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in analysis.summaries:
        for st in s.stats:
            mark = " **(cheapest)**" if st.gpu == s.winner else ""
            lines.append(
                f"| {md(s.clip)} | {s.frames} | {md(st.gpu)}{mark} | {st.runs} | {st.median_seconds:.1f} "
                f"| {st.min_seconds:.1f}-{st.max_seconds:.1f} | {st.fps:.2f} | {format_cost(st.cost)} "
                f"| {format_cost(st.all_in_cost)} | {_fmt(st.speedup, '.2f', 'x')} "
                f"| {_fmt(st.break_even_seconds, '.1f')} |")
        if not s.stats:
            lines.append(f"| {md(s.clip)} | {s.frames} | (no succeeded run) | 0 | | | | | | | |")
    lines.append("")
    lines.append("Break-even: the time at which a GPU costs the same as the baseline "
                 "(baseline time x baseline rate / its rate); below it, it is cheaper.")
    v = analysis.verdict
    lines += ["", "### Verdict", "", md(v.headline), "",
              f"**{v.rule}**: use {md(v.choice.describe())}. {md(v.reason)}"]
    if not v.settled:
        lines.append("")
        lines.append(f"Not settled: the repeats' cost ranges overlap on {md(', '.join(v.unsettled_clips))}; "
                     "more repeats would tell.")
    lines += ["", "### Cost curves", ""]
    lines += _curve_lines(analysis)
    if bill is not None and bill.containers:
        lines += ["", "### The bill", ""]
        lines += bill_lines(bill)
    cold = [(s.clip, st) for s in analysis.summaries for st in s.stats if st.cold_runs]
    if cold:
        lines += ["", "### Cold starts", ""]
        lines += [f"- {md(st.gpu)} on {md(clip)}: {st.cold_runs} of {st.runs} runs were cold "
                  f"({_basis_words(analysis)})" for clip, st in cold]
    if analysis.failed:
        lines += ["", "### Failed runs (not used)", ""]
        lines += [f"- {md(m.gpu)} on {md(m.clip)} ({repeat_label(m.repeat)}): {md(m.error or m.status)}"
                  for m in analysis.failed]
    return "\n".join(lines) + "\n"


def _basis_words(analysis: Analysis) -> str:
    """What a cold run's figures above include, on the analysis's cost basis."""
    if analysis.basis == "billed":
        return "their start-up is in their billed seconds and cost"
    return "their time and cost are job seconds: the start-up is in the bill, not here"


def bill_lines(bill: ExperimentBill) -> list[str]:
    """The bill in words, one line each: both costs and what separates them, then per GPU
    (containers, queue wait). The CLI prints the same lines. Raises nothing."""
    window = f"{bill.scaledown_window:g} s"
    reuse = f", {bill.reuse} container reuse" if bill.reuse else ""
    out = [f"- Steady state (warm containers): {format_cost(bill.steady_cost)}; this experiment's "
           f"bill: {format_cost(bill.billed_cost)} (boots {format_cost(bill.boot_cost)}, idle "
           f"between runs {format_cost(bill.idle_cost)}, scaledown tails "
           f"{format_cost(bill.tail_cost)} at {window} each"
           + (f", model loads inside jobs {format_cost(bill.in_job_overhead_cost)}"
              if bill.in_job_overhead_cost > 0 else "")
           + (f", measurement (fidelity, encode PSNR) {format_cost(bill.measurement_cost)}"
              if bill.measurement_cost > 0 else "") + f"{reuse}).",
           f"- {len(bill.containers)} container(s), {bill.cold_boots} booted here"
           + (f"; {bill.unaccounted_runs} run(s) ran on no known container and are not in the "
              f"bill" if bill.unaccounted_runs else "") + "."]
    for g in bill.gpus:
        wait = "" if g.queue_wait_median is None else \
            f", queue wait median {g.queue_wait_median:.1f} s (max {g.queue_wait_max:.1f} s)"
        boot = "" if g.boot_seconds is None else f", boot to first job {g.boot_seconds:.1f} s"
        out.append(f"- {md(g.gpu)}: {g.runs} run(s) on {g.containers} container(s){boot}{wait}; "
                   f"steady {format_cost(g.steady_cost)}, billed {format_cost(g.billed_cost)}.")
    return out


def failures_markdown(experiment: ExperimentRow, runs: Runs, reason: str) -> str:
    """The findings section of an experiment without a verdict (every run failed): its context,
    why there is no verdict, and each run with its status and reason. Raises nothing."""
    records = run_records(runs)
    failed = [r for r in records if r.get("status") != "succeeded"]
    lines = [_title(experiment), ""]
    context = _context(experiment)
    lines.append((", ".join(context) + ". " if context else "")
                 + f"{len(records)} runs, {len(failed)} without a result. No verdict: {md(reason)}.")
    lines += ["", "### Runs that failed", "", "| Clip | GPU | Repeat | Status | Reason |",
              "|---|---|---:|---|---|"]
    lines += [f"| {md(r.get('clip'))} | {md(r.get('candidate') or r.get('gpu'))} | {repeat_label(int(r.get('repeat_index') or 0))} "
              f"| {md(r.get('status'))} | {md(r.get('error') or '(no reason stored)')} |"
              for r in failed]
    return "\n".join(lines) + "\n"


def _title(experiment: ExperimentRow | None) -> str:
    title = (experiment.name or experiment.id) if experiment is not None else None
    return f"## Findings{f': {md(title)}' if title else ''}"


def _context(experiment: ExperimentRow | None) -> list[str]:
    values = {k: getattr(experiment, k, None) for k in ("source", "model", "engine", "backend",
                                                        "preset")}
    return [f"source {md(v)}" if k == "source" else f"{k} {md(v)}" for k, v in values.items() if v]


def _curve_lines(analysis: Analysis) -> list[str]:
    out = []
    for gpu, fit in analysis.fits.items():
        rate = analysis.rates[gpu]
        speed = f"{fit.throughput_fps:.2f} fps" if fit.throughput_fps else "no growth with length"
        r2 = f", R² {fit.r2:.3f}" if fit.r2 is not None else ""
        note = f" ({md(fit.note)})" if fit.note else ""
        out.append(f"- {md(gpu)}: {fit.overhead_s:.1f} s fixed + {speed}; "
                   f"{format_cost(fit.per_frame_s * rate)} per extra frame, "
                   f"{format_cost(fit.overhead_s * rate)} per clip of overhead{r2}{note}.")
    measured = [s for s in analysis.summaries if s.winner]
    if not measured:
        return out
    lo, hi = measured[0].frames, measured[-1].frames
    if analysis.crossovers:
        for c in analysis.crossovers:
            secs = f" ({c.seconds:.1f} s of video)" if c.seconds is not None else ""
            out.append(f"- Crossover: {md(c.from_gpu)} is cheaper below about {c.frames:.0f} frames"
                       f"{secs}, {md(c.to_gpu)} above.")
    elif analysis.fits:
        cheapest = min(analysis.fits, key=lambda g: analysis.fits[g].seconds(hi) * analysis.rates[g])
        out.append(f"- No crossover between {lo} and {hi} frames: by the fit {md(cheapest)} stays "
                   f"cheapest over that range.")
    return out


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"
