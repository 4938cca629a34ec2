"""The Compare page's tables and numbers, pure (no st.* calls; unit-tested directly): the per-clip
and failed-runs tables, which runs were cold, the monthly projection (clips per day x a mix of clip
lengths -> $ per month per GPU), and the downloads of an experiment's exports.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import pandas as pd

from bench.analysis import Analysis
from bench.billing import reuse_projection
from bench.formatting import as_finite, format_cost, format_seconds, repeat_label
from core.errors import InputError
from core.status import SUCCEEDED
from store.db import Database
from ui.charts import measured, run_label

MIX_LENGTH = "Clip length (s)"
"""Column of the projection's mix table: length of a clip in seconds of video."""
MIX_SHARE = "Share (%)"
"""Column of the projection's mix table: share of the daily clips with that length."""
COLD_NAMES = 6
"""How many cold runs the cold/warm note names before it says 'and N more'."""


# --------------------------------------------------------------------------- tables


CLIP_KEY_COLUMNS = ("Clip", "Candidate", "GPU cost", "Job time (median)", "FPS")
"""The per-clip table's key columns on the default (job seconds) basis: first, so a narrow screen
shows them without scrolling (on the billed basis the time column is 'Billed time (median)')."""


def clip_table(analysis: Analysis | None) -> pd.DataFrame:
    """One row per clip and candidate (GPU, or GPU x variant), key columns first: GPU cost,
    median time, fps; then whether it is the clip's cheapest, the spread over repeats, runs (and
    how many were cold), all-in cost, speedup and break-even against the baseline."""
    rows = []
    for s in measured(analysis):
        for st in s.stats:
            spread = "" if st.runs < 2 else \
                f"{format_seconds(st.min_seconds)}–{format_seconds(st.max_seconds)}"
            rows.append({
                "Clip": s.clip, "Candidate": st.gpu, "GPU cost": format_cost(st.cost),
                TIME_COLUMN[analysis.basis]: format_seconds(st.median_seconds),
                "FPS": f"{st.fps:.2f}",
                "Cheapest": ("yes" if s.settled else "yes (unsettled)") if st.gpu == s.winner
                else "",
                "Spread": spread,
                "Runs": f"{st.runs}" + (f" ({st.cold_runs} cold)" if st.cold_runs else ""),
                "All-in cost": format_cost(st.all_in_cost),
                "Speedup": "—" if st.speedup is None else f"{st.speedup:.2f}x",
                "Break-even": "—" if st.gpu == s.baseline_gpu else
                format_seconds(st.break_even_seconds),
                "Frames": s.frames,
            })
    return pd.DataFrame(rows)


TIME_COLUMN = {"steady": "Job time (median)", "billed": "Billed time (median)"}
"""Analysis basis -> the per-clip table's time column: it says which seconds it shows."""


def certainty(analysis: Analysis) -> tuple[str, str]:
    """How far the verdict can be trusted, as (kind, sentence): 'info' when there is nothing to
    compare (one candidate) or each candidate ran once per clip (no spread to test the order
    against), 'warning' when the repeats leave some clip's order open, 'success' when they settle
    every clip."""
    v = analysis.verdict
    measured_gpus = [g for g in analysis.gpus if g in analysis.fits]
    if len(measured_gpus) < 2:
        only = measured_gpus[0] if measured_gpus else analysis.baseline_gpu
        return "info", (f"Only {only} was measured, so there is nothing to compare it with: add "
                        "another GPU, engine or model to the plan.")
    if not v.settled:
        return "warning", (f"Not settled: the repeats' cost ranges overlap on "
                           f"{', '.join(v.unsettled_clips)}; run more repeats to separate them.")
    runs = [st.runs for s in measured(analysis) for st in s.stats]
    if runs and min(runs) < 2:
        return "info", ("Not tested against run-to-run spread: some candidates ran once per clip. "
                        "Run 3 or more repeats to know whether the order holds.")
    return "success", (f"Settled: no clip's winner changes within the repeats' spread "
                       f"(baseline {v.baseline_gpu}, tolerance {v.tolerance:.0%}).")


def failed_table(analysis: Analysis | None) -> pd.DataFrame:
    """The runs the analysis did not use (failed, interrupted, unfinished) with their reasons."""
    if analysis is None:
        return pd.DataFrame()
    return pd.DataFrame([{"Clip": m.clip, "GPU": m.gpu, "Status": m.status,
                          "Reason": m.error or "", "Repeat": repeat_label(m.repeat)}
                         for m in analysis.failed])


def cold_warm_note(runs: pd.DataFrame | None, imported: bool = False) -> str:
    """Which succeeded runs were cold (their start-up is in the bill and the cold-vs-warm chart,
    never in their job seconds), in one sentence.
    `imported`: the runs come from a results file, which records a cold start only when it marks
    one (original E6 files never do): the others are unknown, not warm."""
    if runs is None or runs.empty:
        return "No runs yet."
    done = runs[runs["status"] == SUCCEEDED]
    if done.empty:
        return "No succeeded runs yet."
    known = done[done["cold"].notna()] if "cold" in done else done.iloc[0:0]
    unknown = len(done) - len(known)
    if known.empty:
        return ("Cold starts were not recorded for these runs (imported results: original E6 "
                "files do not record them), so some of their times may include start-up.")
    cold = known[known["cold"].astype(bool)]
    tail = f" {unknown} run(s) do not record whether they were cold." if unknown else ""
    if cold.empty and imported:
        return ("Imported results: the file marks no run as cold, so some times may include "
                "start-up." + tail)
    if cold.empty:
        return (f"All {len(known)} succeeded runs were warm: no start-up was paid." + tail)
    labels = [run_label(r, mark_cold=False) for r in cold.to_dict("records")]
    names = ", ".join(labels[:COLD_NAMES]) + \
        (f" and {len(labels) - COLD_NAMES} more" if len(labels) > COLD_NAMES else "")
    return (f"{len(cold)} of {len(known)} succeeded runs were cold: their start-up (container and "
            f"model load) is in the bill and the cold-vs-warm chart, not in their job seconds "
            f"(the charts hatch them): {names}." + tail)


# --------------------------------------------------------------------------- projection


def default_mix(analysis: Analysis | None) -> pd.DataFrame:
    """The projection's editable mix: one row per measured clip length, equal shares."""
    clips = measured(analysis)
    if not clips:
        return pd.DataFrame({MIX_LENGTH: pd.Series(dtype=float), MIX_SHARE: pd.Series(dtype=float)})
    share = round(100.0 / len(clips), 1)
    return pd.DataFrame({MIX_LENGTH: [round(s.frames / analysis.fps, 2) for s in clips],
                         MIX_SHARE: [share] * len(clips)})


def mix_from_table(table: pd.DataFrame, fps: float) -> dict[float, float]:
    """{clip frames: share} from the mix table (rows with an empty cell are skipped; equal lengths
    add up). Raises InputError for a non-positive length, a negative share or no usable row."""
    mix: dict[float, float] = {}
    for row in table.to_dict("records"):
        length, share = as_finite(row.get(MIX_LENGTH)), as_finite(row.get(MIX_SHARE))
        if length is None or share is None:
            continue
        if length <= 0:
            raise InputError(f"clip length {length:g} s must be positive")
        if share < 0:
            raise InputError(f"share {share:g}% of {length:g} s clips must not be negative")
        frames = length * fps
        mix[frames] = mix.get(frames, 0.0) + share
    if not mix or sum(mix.values()) <= 0:
        raise InputError("give at least one clip length with a share above 0%")
    return mix


def projection(analysis: Analysis | None, clips_per_day: float,
               mix: Mapping[float, float]) -> dict[str, float]:
    """All-in $ per month (30 days) per candidate in steady state (warm containers), by its
    fitted job seconds, for `clips_per_day` clips with lengths in `mix` {frames: share}: the
    steady column of the bill's reuse table (bench.billing.reuse_projection), the one monthly
    projection. Empty without an analysis. Raises InputError for a bad count or mix."""
    if analysis is None or not analysis.fits:
        return {}
    fits = {g: f for g, f in analysis.fits.items() if g in analysis.all_in_rates}
    rows = reuse_projection(fits, analysis.all_in_rates, clips_per_day, mix, 0.0, {})
    return {g: r.steady_monthly_cost for g, r in rows.items()}


def projection_sentence(costs: Mapping[str, float]) -> str:
    """'L4 is cheapest at $123.45 per month; T4 costs $150.00 (1.22x).'"""
    if not costs:
        return ""
    order = sorted(costs, key=lambda g: costs[g])
    best = order[0]
    parts = [f"{best} is cheapest at {format_cost(costs[best])} per month"]
    others = [f"{g} costs {format_cost(costs[g])}"
              + (f" ({costs[g] / costs[best]:.2f}x)" if costs[best] > 0 else "")
              for g in order[1:]]
    return "; ".join(parts + others) + "."


# --------------------------------------------------------------------------- exports


def export_files(db: Database, experiment_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The downloads of an experiment: ([{label, data, file_name, mime}], [why a format is not
    available]). E6 JSON always (failed runs included); markdown findings too (without a
    succeeded run they list the failures).
    Raises InputError for an unknown id, StorageError."""
    from bench.report import export_experiment

    stem = f"experiment-{experiment_id[:8]}"
    files = [{"label": "E6 JSON", "file_name": f"{stem}.json", "mime": "application/json",
              "data": json.dumps(export_experiment(db, experiment_id, "json"), indent=2,
                                 default=str)}]
    missing = []
    try:
        files.append({"label": "Markdown findings", "file_name": f"{stem}-findings.md",
                      "mime": "text/markdown", "data": export_experiment(db, experiment_id, "md")})
    except InputError as exc:
        missing.append(f"Markdown findings: {exc}")
    return files, missing
