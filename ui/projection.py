"""Pure helpers behind the Compare and History pages (no st.* calls; unit-tested directly).

The monthly projection (clips per day x a mix of clip lengths -> $ per month per GPU), the verdict
and per-clip tables as text, analysing a selection of runs, output keys and frames for the preview
and the side-by-side, run filters, and the import of an uploaded E6 JSON file.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bench.analysis import DEFAULT_TOLERANCE, Analysis, monthly_projection
from bench.errors import InputError
from store.db import Database
from ui.charts import format_cost, format_seconds, measured, run_label

MIX_LENGTH = "Clip length (s)"
"""Column of the projection's mix table: length of a clip in seconds of video."""
MIX_SHARE = "Share (%)"
"""Column of the projection's mix table: share of the daily clips with that length."""
COLD_NAMES = 6
"""How many cold runs the cold/warm note names before it says 'and N more'."""
RULE_TITLES = {
    "within_tolerance": "Costs within tolerance: the fastest wins",
    "keep_baseline": "Keep the baseline",
    "single_winner": "One GPU wins every clip",
    "threshold": "The cheapest GPU depends on clip length",
}
"""Verdict rule -> heading of the verdict card."""


# --------------------------------------------------------------------------- verdict and tables


def choice_text(choice: Any) -> str:
    """The verdict's choice as a phrase: 'L4', or for threshold 'T4 below 450 frames (15.0 s),
    L4 above'."""
    if isinstance(choice, Mapping):
        seconds = choice.get("threshold_seconds")
        when = f" ({seconds:.1f} s)" if isinstance(seconds, (int, float)) else ""
        text = (f"{choice.get('below')} below {choice.get('threshold_frames')} frames{when}, "
                f"{choice.get('above')} above")
        steps = choice.get("steps") or []
        if len(steps) > 1:
            text += f" (then {len(steps) - 1} more change{'s' if len(steps) > 2 else ''})"
        return text
    return str(choice)


def clip_table(analysis: Analysis | None) -> pd.DataFrame:
    """One row per clip and GPU: runs, median time (min–max), fps, GPU cost, all-in cost,
    speedup and break-even against the baseline, and whether it is the clip's cheapest."""
    rows = []
    for s in measured(analysis):
        for st in s.stats:
            spread = "" if st.runs < 2 else \
                f" ({format_seconds(st.min_seconds)}–{format_seconds(st.max_seconds)})"
            rows.append({
                "Clip": s.clip, "Frames": s.frames, "GPU": st.gpu,
                "Cheapest": ("yes" if s.settled else "yes, unsettled") if st.gpu == s.winner
                else "",
                "Runs": st.runs,
                "Cold runs": st.cold_runs,
                "Time (median)": format_seconds(st.median_seconds) + spread,
                "FPS": f"{st.fps:.2f}", "GPU cost": format_cost(st.cost),
                "All-in cost": format_cost(st.all_in_cost),
                "Speedup": "—" if st.speedup is None else f"{st.speedup:.2f}x",
                "Break-even": "—" if st.gpu == s.baseline_gpu else
                format_seconds(st.break_even_seconds),
            })
    return pd.DataFrame(rows)


def failed_table(analysis: Analysis | None) -> pd.DataFrame:
    """The runs the analysis did not use (failed, interrupted, unfinished) with their reasons."""
    if analysis is None:
        return pd.DataFrame()
    return pd.DataFrame([{"Clip": m.clip, "GPU": m.gpu, "Repeat": m.repeat + 1, "Status": m.status,
                          "Reason": m.error or ""} for m in analysis.failed])


def cold_warm_note(runs: pd.DataFrame | None, imported: bool = False) -> str:
    """Which succeeded runs were cold (start-up in their time and cost), in one sentence.
    `imported`: the runs come from a results file, where only our own exports record cold starts
    (an original E6 file reads as all warm, which it does not claim)."""
    if runs is None or runs.empty:
        return "No runs yet."
    done = runs[runs["status"] == "succeeded"]
    if done.empty:
        return "No succeeded runs yet."
    known = done[done["cold"].notna()] if "cold" in done else done.iloc[0:0]
    if known.empty:
        return "Cold starts were not recorded for these runs (e.g. imported results)."
    cold = known[known["cold"].astype(bool)]
    if cold.empty and imported:
        return ("Imported results: the file does not mark any run as cold (original E6 files do "
                "not record cold starts), so some times may include start-up.")
    if cold.empty:
        return (f"All {len(known)} succeeded runs were warm: the model was already loaded, so no "
                f"start-up is in their time or cost.")
    labels = [run_label(r) for r in cold.to_dict("records")]
    names = ", ".join(labels[:COLD_NAMES]) + \
        (f" and {len(labels) - COLD_NAMES} more" if len(labels) > COLD_NAMES else "")
    return (f"{len(cold)} of {len(known)} succeeded runs were cold, so their time and cost include "
            f"start-up (container and model load): {names}.")


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
        length, share = _float(row.get(MIX_LENGTH)), _float(row.get(MIX_SHARE))
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


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def projection(analysis: Analysis | None, clips_per_day: float,
               mix: Mapping[float, float]) -> dict[str, float]:
    """$ per month (30 days) per GPU, by each GPU's fitted cost, for `clips_per_day` clips with
    lengths in `mix` {frames: share}. Empty without an analysis. Raises InputError for a bad count
    or mix."""
    if analysis is None or not analysis.fits:
        return {}
    rates = {g: r for g, r in analysis.rates.items() if g in analysis.fits}
    fits = {g: f for g, f in analysis.fits.items() if g in rates}
    return monthly_projection(fits, rates, clips_per_day, mix)


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


# --------------------------------------------------------------------------- selections of runs


def distinct_variants(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """The (model, engine) pairs among the runs, in first-seen order ('?' when unknown)."""
    if runs.empty:
        return []
    pairs = zip(runs.get("model", pd.Series(["?"] * len(runs))).fillna("?").astype(str),
                runs.get("engine", pd.Series(["?"] * len(runs))).fillna("?").astype(str))
    return list(dict.fromkeys(pairs))


def label_variants(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run dicts whose gpu label also names the model and/or engine when the runs differ in them
    ('T4 · x4plus', 'T4 · x4plus/reference'), so the analysis compares each GPU x model x engine
    instead of pooling them as repeats. The catalog card for the price is kept in price_gpu."""
    models = {r.get("model") for r in runs}
    engines = {r.get("engine") for r in runs}
    if len(models) < 2 and len(engines) < 2:
        return runs
    out = []
    for run in runs:
        run = dict(run)
        parts = ([run.get("model") or "unknown model"] if len(models) > 1 else []) + \
            ([run.get("engine") or "unknown engine"] if len(engines) > 1 else [])
        run["price_gpu"] = run.get("price_gpu") or run["gpu"]
        run["gpu"] = f"{run['gpu']} · {'/'.join(parts)}"
        out.append(run)
    return out


def analyse_selection(db: Database, run_ids: Sequence[str],
                      tolerance: float = DEFAULT_TOLERANCE) -> tuple[Analysis | None, str | None,
                                                                       pd.DataFrame]:
    """(analysis or None, why not, runs) of a selection of runs, possibly from several experiments.
    The first run's experiment supplies the plan (baseline GPU, fps) and price table. Raises
    StorageError."""
    from bench.experiment_view import experiment_dict, runs_frame_to_dicts
    from bench.report import analyse_runs
    from store import runs as store_runs

    frame = store_runs.list_runs(db, run_ids=list(run_ids))
    if frame.empty:
        return None, "none of the selected runs is in the database any more", frame
    experiment = experiment_dict(db, str(frame["experiment_id"].iloc[-1]))
    try:
        analysis = analyse_runs(experiment, label_variants(runs_frame_to_dicts(frame)), tolerance)
    except InputError as exc:
        return None, str(exc), frame
    return analysis, None, frame


def analyse_experiment_runs(db: Database, experiment_id: str,
                            tolerance: float = DEFAULT_TOLERANCE) -> tuple[Analysis | None,
                                                                           str | None, pd.DataFrame]:
    """(analysis or None, why not, runs) of one experiment; runs of different models/engines are
    told apart as in label_variants. Raises InputError for an unknown id, StorageError."""
    from store import runs as store_runs

    frame = store_runs.list_runs(db, experiment_id=experiment_id)
    if frame.empty:
        from bench.experiment_view import experiment_dict

        experiment_dict(db, experiment_id)  # raises InputError for an unknown id
        return None, "this experiment has no runs", frame
    return analyse_selection(db, frame["id"].tolist(), tolerance)


def experiment_label(row: Mapping[str, Any]) -> str:
    """'name — 2026-11-26 14:05 (6/7 succeeded)' for an experiments row."""
    created = row.get("created_at")
    when = pd.Timestamp(created).strftime("%Y-%m-%d %H:%M") if created is not None and \
        not pd.isna(created) else "?"
    return f"{row.get('name')} — {when} ({row.get('succeeded', 0)}/{row.get('runs', 0)} succeeded)"


# --------------------------------------------------------------------------- outputs


def output_object_key(source_key: str | None, output_key: str) -> str:
    """Where a run's output lives: '{user_id}/{output_key}', user_id being the first part of the
    experiment's source key (the tool's own user when the source has none). Raises StorageError
    for an unsafe key."""
    from bench.orchestrator import LOCAL_USER
    from store.objects import user_key

    user = (source_key or "").partition("/")[0] if source_key and "/" in source_key else LOCAL_USER
    return user_key(user, output_key)


def runs_with_output(runs: pd.DataFrame) -> pd.DataFrame:
    """Succeeded runs that stored an output video."""
    if runs.empty or "output_key" not in runs:
        return runs.iloc[0:0]
    return runs[(runs["status"] == "succeeded") & runs["output_key"].notna()]


def variant_label(row: Mapping[str, Any]) -> str:
    """'GPU · model/engine · #repeat' of a run row."""
    repeat = row.get("repeat_index")
    suffix = f" · #{int(repeat) + 1}" if repeat is not None and not pd.isna(repeat) else ""
    return (f"{row.get('gpu')} · {text_of(row.get('model')) or '?'}/"
            f"{text_of(row.get('engine')) or '?'}{suffix}")


def run_label_long(row: Mapping[str, Any]) -> str:
    """'clip · GPU · model/engine · #repeat · status' of a run row."""
    return f"{row.get('clip')} · {variant_label(row)} · {row.get('status')}"


def side_by_side_clips(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Clip -> its runs with outputs (one per model/engine, first run of each) for the clips where
    runs used more than one model or engine."""
    done = runs_with_output(runs)
    out = {}
    for clip, group in done.groupby("clip", sort=False):
        firsts = group.assign(_variant=group["model"].fillna("?") + "/" + group["engine"].fillna("?"))
        firsts = firsts.drop_duplicates("_variant").drop(columns="_variant")
        if len(firsts) > 1:
            out[str(clip)] = firsts
    return out


def fidelity_text(row: Mapping[str, Any]) -> str:
    """'PSNR 31.2 dB, SSIM 0.912 (bicubic 29.8 dB, 0.880)' or what is known of it."""
    def num(key: str, spec: str) -> str | None:
        value = row.get(key)
        return None if value is None or pd.isna(value) else format(float(value), spec)

    psnr, ssim = num("psnr", ".1f"), num("ssim", ".3f")
    if psnr is None and ssim is None:
        return "no fidelity measured"
    text = f"PSNR {psnr or '—'} dB, SSIM {ssim or '—'}"
    b_psnr, b_ssim = num("bicubic_psnr", ".1f"), num("bicubic_ssim", ".3f")
    if b_psnr is not None or b_ssim is not None:
        text += f" (bicubic {b_psnr or '—'} dB, {b_ssim or '—'})"
    return text


def read_frame(path: Path | str, index: int) -> np.ndarray:
    """Frame `index` (0-based) of a video as an RGB array. Raises InputError past the last frame,
    MediaError for an unreadable file."""
    from workers.video import decode_segment

    if index < 0:
        raise InputError(f"frame {index} must not be negative")
    for frame in decode_segment(path):
        if frame.index == index:
            return frame.image
    raise InputError(f"the video has no frame {index}")


def crop_region(image: np.ndarray, zoom: float, centre_x: float, centre_y: float) -> np.ndarray:
    """The part of the image shown at `zoom` (1 = whole image, 4 = a quarter of each side) around
    the centre given as fractions (0..1) of the width and height, kept inside the image."""
    height, width = image.shape[:2]
    zoom = max(1.0, float(zoom))
    w, h = max(1, round(width / zoom)), max(1, round(height / zoom))
    left = min(max(0, round(centre_x * width - w / 2)), width - w)
    top = min(max(0, round(centre_y * height - h / 2)), height - h)
    return image[top:top + h, left:left + w]


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """The image with each pixel repeated factor x factor times (nearest neighbour), so a zoomed
    crop shows the model's pixels instead of the browser's smoothing. factor < 2 returns it as is."""
    if factor < 2:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


# --------------------------------------------------------------------------- history


def date_bounds(start: dt.date | None, end: dt.date | None) -> tuple[dt.datetime | None,
                                                                     dt.datetime | None]:
    """(since, until) datetimes for list_runs from an inclusive date range (UTC days)."""
    since = dt.datetime.combine(start, dt.time()) if start else None
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time()) if end else None
    return since, until


HISTORY_RUN_LIMIT = 1000
"""Most runs the History page lists at once (newest first); filters reach the others."""


def filter_runs(db: Database, gpus: Sequence[str] = (), models: Sequence[str] = (),
                statuses: Sequence[str] = (), start: dt.date | None = None,
                end: dt.date | None = None, limit: int | None = HISTORY_RUN_LIMIT) -> pd.DataFrame:
    """The newest `limit` runs matching every non-empty filter (an empty selection means all).
    Raises StorageError."""
    from store import runs as store_runs

    since, until = date_bounds(start, end)
    return store_runs.list_runs(db, gpus=list(gpus) or None, models=list(models) or None,
                                statuses=list(statuses) or None, since=since, until=until,
                                limit=limit)


def runs_display(runs: pd.DataFrame) -> pd.DataFrame:
    """The History table: one readable row per run."""
    rows = []
    for r in runs.to_dict("records"):
        seconds = r.get("billed_seconds")
        if seconds is None or pd.isna(seconds):
            seconds = r.get("total_seconds")
        created = r.get("created_at")
        rows.append({
            "Experiment": r.get("experiment_name"),
            "Created": pd.Timestamp(created).strftime("%Y-%m-%d %H:%M") if created is not None
            and not pd.isna(created) else "",
            "Clip": r.get("clip"), "GPU": r.get("gpu"),
            "Device": text_of(r.get("device_name")),
            "Model": text_of(r.get("model")), "Engine": text_of(r.get("engine")),
            "Repeat": int(r["repeat_index"]) + 1 if r.get("repeat_index") is not None else None,
            "Status": r.get("status"),
            "Time": format_seconds(None if seconds is None or pd.isna(seconds) else float(seconds)),
            "GPU cost": format_cost(None if r.get("cost_gpu") is None or pd.isna(r.get("cost_gpu"))
                                    else float(r["cost_gpu"])),
            "Run id": r.get("id"),
        })
    return pd.DataFrame(rows)


def text_of(value: Any) -> str:
    """A cell as display text: '' for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    return str(value)


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Failed and interrupted runs with their reasons."""
    if runs.empty:
        return pd.DataFrame()
    bad = runs[runs["status"].isin(["failed", "interrupted"])]
    return pd.DataFrame([{"Experiment": r.get("experiment_name"), "Clip": r.get("clip"),
                          "GPU": r.get("gpu"), "Status": r.get("status"),
                          "Reason": text_of(r.get("error")) or "(no reason stored)",
                          "Run id": r.get("id")}
                         for r in bad.to_dict("records")])


def import_e6_upload(db: Database, data: bytes, name: str) -> str:
    """Store an uploaded E6 results file as a new experiment; return its id. Raises InputError
    (one line) for a file that is not UTF-8 JSON in the E6 shape, StorageError."""
    from bench.e6 import parse_e6
    from store.runs import import_e6

    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{name} is not a text file (expected E6 results JSON)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg})") from None
    try:
        e6 = parse_e6(parsed)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None
    return import_e6(db, e6, name)


# --------------------------------------------------------------------------- exports


def export_files(db: Database, experiment_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The downloads of an experiment: ([{label, data, file_name, mime}], [why a format is not
    available]). E6 JSON always (failed runs included); markdown findings need a succeeded run.
    Raises InputError for an unknown id, StorageError."""
    from bench.experiment_view import export_experiment

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
