"""The Compare page's bill, pure (no st.* calls; unit-tested directly): steady-state cost beside
this experiment's bill, queue waits, cold boots and containers, per GPU and per container, and
the monthly projection with container reuse.
"""

from __future__ import annotations

import statistics
from typing import Mapping

import pandas as pd

from bench.analysis import Analysis
from bench.billing import ExperimentBill, reuse_projection
from bench.formatting import format_cost, format_seconds

STEADY, BILLED = "Steady state", "This experiment's bill"
"""Headings of the two costs (the same words in the CLI and the exports)."""


def queue_waits(bill: ExperimentBill) -> tuple[float | None, float | None]:
    """(median of the GPUs' median queue waits, longest queue wait), None when none measured."""
    medians = [g.queue_wait_median for g in bill.gpus if g.queue_wait_median is not None]
    longest = [g.queue_wait_max for g in bill.gpus if g.queue_wait_max is not None]
    return (statistics.median(medians) if medians else None, max(longest) if longest else None)


def metrics(bill: ExperimentBill) -> list[tuple[str, str, str]]:
    """(label, value, help) of the headline numbers: both costs, their difference, containers
    (each a cold boot) and the queue wait."""
    median, longest = queue_waits(bill)
    return [
        (STEADY, format_cost(bill.steady_cost),
         "Each run's job seconds on a warm container at its all-in rate (GPU, CPU and memory at "
         "the larger of request and use): the sum of the runs' all-in costs, what a service "
         "whose containers never go cold pays."),
        (BILLED, format_cost(bill.billed_cost),
         "Every container from boot (or from this experiment's first job, when it was already "
         "warm) to its last job plus the scaledown window, as Modal bills."),
        ("Difference", format_cost(bill.billed_cost - bill.steady_cost),
         "Boots, idle time between runs and scaledown tails (and model loads inside jobs and the "
         "measurement work after each)."),
        ("Cold boots", str(bill.cold_boots),
         "Containers booted for this experiment; their later runs were warm."),
        ("Queue wait (median / max)", f"{format_seconds(median)} / {format_seconds(longest)}",
         "Spawn to container start: a cold run waits for a container with its card, a warm one "
         "only for the container to pick it up."),
    ]


def breakdown_sentence(bill: ExperimentBill) -> str:
    """What separates the two costs, in one sentence."""
    parts = [f"boots {format_cost(bill.boot_cost)}", f"idle between runs {format_cost(bill.idle_cost)}",
             f"scaledown tails {format_cost(bill.tail_cost)} ({bill.scaledown_window:g} s each)"]
    if bill.in_job_overhead_cost > 0:
        parts.append(f"model loads inside jobs {format_cost(bill.in_job_overhead_cost)}")
    if bill.measurement_cost > 0:
        parts.append(f"measurement after jobs (fidelity, encode PSNR) "
                     f"{format_cost(bill.measurement_cost)}")
    reuse = f" Runs shared containers: {bill.reuse}." if bill.reuse else ""
    left_out = (f" {bill.unaccounted_runs} run(s) ran on no known container and are not in the "
                f"bill.") if bill.unaccounted_runs else ""
    return (f"The bill exceeds steady state by {format_cost(bill.billed_cost - bill.steady_cost)}: "
            + ", ".join(parts) + "." + reuse + left_out)


def gpu_table(bill: ExperimentBill) -> pd.DataFrame:
    """One row per candidate: its runs, containers, both costs (its billed costs add up to the
    bill), boot and queue wait."""
    return pd.DataFrame([{
        "Candidate": g.gpu, "Runs": g.runs, "Containers": g.containers,
        "Cold boots": g.cold_boots, STEADY: format_cost(g.steady_cost),
        BILLED: format_cost(g.billed_cost), "Boot to first job": format_seconds(g.boot_seconds),
        "Queue wait (median)": format_seconds(g.queue_wait_median),
        "Queue wait (max)": format_seconds(g.queue_wait_max)} for g in bill.gpus])


def container_table(bill: ExperimentBill) -> pd.DataFrame:
    """One row per container: its runs and where its lifetime went."""
    return pd.DataFrame([{
        "Container": c.container_id, "Candidates": ", ".join(c.candidates), "Runs": c.runs,
        "Boot": format_seconds(c.boot_seconds), "Busy": format_seconds(c.busy_seconds),
        "Idle": format_seconds(c.idle_seconds), "Tail": format_seconds(c.tail_seconds),
        "Lifetime": format_seconds(c.lifetime_seconds), "Cost": format_cost(c.cost)}
        for c in bill.containers])


def reuse_table(analysis: Analysis | None, bill: ExperimentBill,
                clips_per_day: float, mix: Mapping[float, float]) -> pd.DataFrame:
    """Monthly cost per GPU for clips_per_day clips of `mix` {frames: share}, with containers
    scaling down after the experiment's window: steady state beside what the bill would say,
    how often a clip finds no warm container, and the idle seconds each clip leaves. The fits
    come from `analysis` (steady basis), rates are its all-in rates, so the steady column is the
    projection of ui.compare_view.projection. Empty without fits. Raises InputError for a bad
    count or mix."""
    if analysis is None or not analysis.fits:
        return pd.DataFrame()
    rates = analysis.all_in_rates
    cold = {g.gpu: g.boot_seconds or 0.0 for g in bill.gpus}
    window = bill.scaledown_window
    rows = reuse_projection({g: f for g, f in analysis.fits.items() if g in rates}, rates,
                            clips_per_day, mix, window, cold)
    return pd.DataFrame([{
        "Candidate": r.gpu, "Steady state per month": format_cost(r.steady_monthly_cost),
        "With scaledown per month": format_cost(r.monthly_cost),
        "Clips that start cold": f"{r.cold_share:.0%}",
        "Idle billed per clip": format_seconds(r.idle_seconds_per_clip),
        "Cold start": format_seconds(r.cold_seconds)}
        for r in sorted(rows.values(), key=lambda r: r.monthly_cost)])
