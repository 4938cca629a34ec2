"""The original experiment's (E6) results JSON: read it, write it, and judge it.

Shape: {"timestamp": str, "config": {...}, "pricing": {GPU: $/s},
"results": [{"gpu", "clip", "frames", "elapsed", "fps", "status", "error"?}], "comparisons": ...}.
Old files spell success several ways; every result is normalised to 'succeeded' or 'failed'.
Our exports add "repeat"/"cold" to a result and extra top-level keys; old readers ignore them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.analysis import DEFAULT_TOLERANCE, Analysis, Measurement, analyse
from bench.pricing import DEFAULT_PRICES, PriceTable
from core.errors import InputError

SUCCESS_WORDS = frozenset({"success", "succeeded", "successful", "ok", "completed", "complete", "done"})
"""Status spellings that mean the run succeeded (compared case-insensitively)."""
DEFAULT_FPS = 30.0
"""Frame rate of the original experiment's clips, used when the config names none."""
BASE_KEYS = ("timestamp", "config", "pricing", "results", "comparisons")


@dataclass(frozen=True)
class E6Result:
    """One run of the results file."""

    gpu: str
    """GPU name as written in the file ('T4')."""
    clip: str
    """Clip name ('6s')."""
    frames: int
    """Frames processed (or expected, for a failed run; 0 when unknown)."""
    elapsed: float | None
    """Seconds the run took (None when it failed before timing)."""
    fps: float | None
    """Frames per second (frames / elapsed when the file omits it)."""
    status: str
    """'succeeded' or 'failed' (normalised)."""
    error: str | None
    """Reason when failed."""
    repeat: int = 0
    """Repeat index (our exports; 0 in original files)."""
    cold: bool = False
    """Whether the run paid for a cold start (our exports; False in original files)."""


@dataclass(frozen=True)
class E6File:
    """A whole results file."""

    timestamp: str
    """When the experiment ran, as written."""
    config: dict
    """The experiment's configuration, as written (clips, GPUs, model, ...)."""
    pricing: dict[str, float]
    """GPU -> $/s used by the experiment."""
    results: tuple[E6Result, ...]
    """Every run, failed ones included."""
    comparisons: Any
    """The file's own comparisons, kept as written (dump_e6 recomputes them)."""


def load_e6(path: str | Path) -> E6File:
    """Read and parse a results file. Raises InputError (one line) for a missing or unreadable
    file, bad JSON, or a bad shape."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc.__class__.__name__})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg})") from None
    try:
        return parse_e6(data)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def parse_e6(data: Any) -> E6File:
    """An E6File from the parsed JSON. Raises InputError naming the first bad field."""
    if not isinstance(data, dict):
        raise InputError(f"an E6 results file is a JSON object, not {type(data).__name__}")
    results = data.get("results")
    if not isinstance(results, list):
        raise InputError("not an E6 results file: no 'results' list")
    config = data.get("config") if data.get("config") is not None else {}
    if not isinstance(config, dict):
        raise InputError("'config' must be an object")
    pricing = _parse_pricing(data.get("pricing") if data.get("pricing") is not None else {})
    parsed = tuple(_parse_result(i, r) for i, r in enumerate(results))
    timestamp = data.get("timestamp")
    return E6File("" if timestamp is None else str(timestamp), config, pricing, parsed,
                  data.get("comparisons"))


def _parse_pricing(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise InputError("'pricing' must be an object {GPU: $ per second}")
    out = {}
    for gpu, rate in raw.items():
        if not _is_number(rate) or not rate > 0:
            raise InputError(f"pricing of {gpu!r} must be a positive number of $/s, got {rate!r}")
        out[str(gpu)] = float(rate)
    return out


def _parse_result(index: int, raw: Any) -> E6Result:
    if not isinstance(raw, dict):
        raise InputError(f"result {index} must be an object")
    gpu, clip = raw.get("gpu"), raw.get("clip")
    if not isinstance(gpu, str) or not gpu.strip():
        raise InputError(f"result {index} has no 'gpu' name")
    if isinstance(clip, (int, float)) and not isinstance(clip, bool):
        clip = f"{clip:g}"
    if not isinstance(clip, str) or not clip.strip():
        raise InputError(f"result {index} ({gpu}) has no 'clip' name")
    where = f"result {index} ({gpu} on {clip})"
    frames = _frames(raw.get("frames"), where)
    elapsed = _optional_seconds(raw.get("elapsed"), "elapsed", where)
    fps = _optional_seconds(raw.get("fps"), "fps", where)
    if fps is None and elapsed and frames:
        fps = frames / elapsed
    error = raw.get("error")
    error = " ".join(str(error).split()) if error not in (None, "") else None
    word = str(raw.get("status") or "").strip().lower()
    repeat = raw.get("repeat", 0)
    repeat = int(repeat) if _is_number(repeat) and float(repeat).is_integer() and repeat >= 0 else 0
    cold = raw.get("cold") is True
    status = "failed"
    if error is None:
        if word in SUCCESS_WORDS:
            if not elapsed or not frames:
                error = "reported success without an elapsed time and frame count"
            else:
                status = "succeeded"
        elif word in ("failed", "failure", "error", "errored"):
            error = "failed (no reason given)"
        else:
            error = f"status {raw.get('status')!r}"
    return E6Result(gpu.strip(), clip.strip(), frames, elapsed, fps, status, error, repeat, cold)


def _frames(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InputError(f"{where}: frames {value!r} is not a number") from None
    if not _is_number(value) or value < 0 or not float(value).is_integer():
        raise InputError(f"{where}: frames {value!r} must be a whole number >= 0")
    return int(value)


def _optional_seconds(value: Any, name: str, where: str) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or value < 0:
        raise InputError(f"{where}: {name} {value!r} must be a non-negative number")
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------- to the analysis


def baseline_of(e6: E6File) -> str | None:
    """The baseline GPU: the first of config['gpus'] that has results, else the first GPU of the
    results; None for a file without results. Raises nothing."""
    gpus = [r.gpu for r in e6.results]
    listed = e6.config.get("gpus")
    if isinstance(listed, (list, tuple)):
        for g in listed:
            if g in gpus:
                return g
    return gpus[0] if gpus else None


def fps_of(e6: E6File) -> float:
    """The clips' frame rate: config['fps'] when it is a positive number, else 30. Raises nothing."""
    fps = e6.config.get("fps")
    return float(fps) if _is_number(fps) and fps > 0 else DEFAULT_FPS


def rate_for(e6: E6File, gpu: str, table: PriceTable = DEFAULT_PRICES) -> float | None:
    """$/s of `gpu`: the file's pricing (exact, then case-insensitive name), else the catalog;
    None when neither knows it. Raises nothing."""
    if gpu in e6.pricing:
        return e6.pricing[gpu]
    for name, rate in e6.pricing.items():
        if name.lower() == gpu.lower():
            return rate
    try:
        return table.rate(gpu)
    except InputError:
        return None


def measurements_from_e6(e6: E6File, table: PriceTable = DEFAULT_PRICES) -> list[Measurement]:
    """One Measurement per result, priced by the file's pricing (else the catalog).

    Raises InputError when a succeeded result's GPU has no price anywhere."""
    out = []
    for r in e6.results:
        rate = rate_for(e6, r.gpu, table)
        if rate is None:
            if r.status == "succeeded":
                raise InputError(f"no price for GPU {r.gpu!r}: add it to the file's 'pricing' "
                                 f"(the catalog has {', '.join(table.gpus)})")
            rate = 0.0
        out.append(Measurement(gpu=r.gpu, clip=r.clip, frames=r.frames, seconds=r.elapsed,
                               status=r.status, rate=rate, repeat=r.repeat, cold=r.cold,
                               error=r.error))
    return out


def analyse_e6(e6: E6File, tolerance: float = DEFAULT_TOLERANCE,
               table: PriceTable = DEFAULT_PRICES) -> Analysis:
    """The full analysis of a results file (baseline from its config, fps from its config).

    Raises InputError when nothing succeeded or a GPU has no price."""
    return analyse(measurements_from_e6(e6, table), baseline_of(e6), tolerance, fps_of(e6))


def comparisons_from(analysis: Analysis) -> dict[str, Any]:
    """The 'comparisons' section: per clip, each GPU against the baseline (speedup, break-even,
    cost) and the winner; then the verdict. Raises nothing."""
    clips = {}
    for s in analysis.summaries:
        clips[s.clip] = {
            "frames": s.frames,
            "winner": s.winner,
            "settled": s.settled,
            "gpus": {st.gpu: {
                "elapsed": st.median_seconds,
                "fps": st.fps,
                "cost": st.cost,
                "speedup_vs_baseline": st.speedup,
                "break_even_elapsed": st.break_even_seconds,
                "cheaper_than_baseline": st.beats_break_even,
            } for st in s.stats},
        }
    return {"baseline": analysis.baseline_gpu, "tolerance": analysis.verdict.tolerance,
            "clips": clips, "verdict": analysis.verdict.to_dict()}


# --------------------------------------------------------------------------- writing


def result_dict(r: E6Result) -> dict[str, Any]:
    """One result in the file's shape ('error' only when failed; 'repeat'/'cold' only when set).
    Raises nothing."""
    out: dict[str, Any] = {"gpu": r.gpu, "clip": r.clip, "frames": r.frames,
                           "elapsed": r.elapsed, "fps": r.fps, "status": r.status}
    if r.error is not None:
        out["error"] = r.error
    if r.repeat:
        out["repeat"] = r.repeat
    if r.cold:
        out["cold"] = True
    return out


def dump_e6(e6: E6File, extra: dict | None = None, tolerance: float = DEFAULT_TOLERANCE,
            analysis: Analysis | None = None) -> dict:
    """The file as a JSON-ready dict. 'comparisons' come from `analysis` or are recomputed from the
    results (the file's own are kept when nothing can be judged, e.g. every run failed). `extra`
    adds top-level keys.

    Raises InputError when an extra key would replace one of the format's own keys."""
    if analysis is None:
        try:
            analysis = analyse_e6(e6, tolerance)
        except InputError:
            analysis = None
    comparisons = comparisons_from(analysis) if analysis is not None else e6.comparisons
    out = {
        "timestamp": e6.timestamp,
        "config": dict(e6.config),
        "pricing": dict(e6.pricing),
        "results": [result_dict(r) for r in e6.results],
        "comparisons": comparisons,
    }
    for key, value in (extra or {}).items():
        if key in BASE_KEYS:
            raise InputError(f"extra field {key!r} would replace the E6 format's own")
        out[key] = value
    return out

