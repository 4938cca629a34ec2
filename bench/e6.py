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
from bench.pricing import DEFAULT_PRICES, PriceTable, check_rate
from core.errors import InputError
from core.status import FAILED, SUCCEEDED

SUCCESS_WORDS = frozenset({"success", "succeeded", "successful", "ok", "completed", "complete", "done"})
"""Status spellings that mean the run succeeded (compared case-insensitively)."""
DEFAULT_FPS = 30.0
"""Frame rate of the original experiment's clips, used when the config names none."""
BASE_KEYS = ("timestamp", "config", "pricing", "results", "comparisons")

# Physical bounds: a value outside them is a corrupt or hostile file, not a measurement. They also
# keep every number inside the store's columns and every derived cost, speedup and fit finite.
MAX_FILE_BYTES = 50_000_000
"""Largest results file read (a real one is a few kB per hundred runs)."""
MAX_DEPTH = 32
"""Deepest nesting of objects and lists accepted anywhere in the file."""
MAX_RESULTS = 100_000
"""Most results in one file."""
MAX_NAME_CHARS = 200
"""Longest GPU or clip name."""
MAX_TEXT_CHARS = 2_000
"""Longest error reason or timestamp kept (longer ones are cut)."""
MAX_FRAMES = 10_000_000
"""Most frames in one result (over 90 hours at 30 fps)."""
MAX_SECONDS = 30 * 24 * 3600.0
"""Longest elapsed time of one result (30 days)."""
MAX_FPS = 100_000.0
"""Fastest frame rate a result may report (frames / elapsed included)."""
MAX_REPEAT = 10_000
"""Highest repeat index."""


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
        if path.is_dir():
            raise InputError(f"{path} is a directory, not a results file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc.__class__.__name__})") from None
    return parse_e6_bytes(raw, str(path))


def parse_e6_bytes(raw: bytes, label: str) -> E6File:
    """An E6File from a file's bytes (a path, an upload), named `label` in messages. Checks the
    content, not the name: UTF-8 JSON text of at most MAX_FILE_BYTES, nested at most MAX_DEPTH
    deep, in the E6 shape. Raises InputError (one line) naming the first problem."""
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"{label} is over {MAX_FILE_BYTES // 1_000_000} MB; a results file is far "
                         f"smaller")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{label} is not a text file (expected E6 results JSON)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{label} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg})") from None
    except RecursionError:
        raise InputError(f"{label} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError:  # an integer of thousands of digits
        raise InputError(f"{label} holds a number too long to read") from None
    try:
        return parse_e6(data)
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None


def _check_depth(data: Any) -> None:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"nested too deeply (at most {MAX_DEPTH} levels)")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def parse_e6(data: Any) -> E6File:
    """An E6File from the parsed JSON. Raises InputError naming the first bad field, a value
    outside the physical bounds above, or nesting deeper than MAX_DEPTH."""
    if not isinstance(data, dict):
        raise InputError(f"an E6 results file is a JSON object, not {type(data).__name__}")
    _check_depth(data)
    results = data.get("results")
    if not isinstance(results, list):
        raise InputError("not an E6 results file: no 'results' list")
    if len(results) > MAX_RESULTS:
        raise InputError(f"{len(results)} results; at most {MAX_RESULTS}")
    config = data.get("config") if data.get("config") is not None else {}
    if not isinstance(config, dict):
        raise InputError("'config' must be an object")
    pricing = _parse_pricing(data.get("pricing") if data.get("pricing") is not None else {})
    parsed = tuple(_parse_result(i, r) for i, r in enumerate(results))
    timestamp = data.get("timestamp")
    return E6File("" if timestamp is None else _text(timestamp), config, pricing, parsed,
                  data.get("comparisons"))


def _text(value: Any) -> str:
    return " ".join(str(value).split())[:MAX_TEXT_CHARS]


def _name(value: Any) -> str | None:
    """A GPU or clip name: non-empty text (a number is written as text), at most MAX_NAME_CHARS."""
    if _is_number(value):
        value = f"{value:g}"
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(value.split())


def _parse_pricing(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise InputError("'pricing' must be an object {GPU: $ per second}")
    out = {}
    for gpu, rate in raw.items():
        if not _is_number(rate):
            raise InputError(f"pricing of {_short(gpu)} must be a number of $/s, got {_short(rate)}")
        check_rate(rate, f"pricing of {_short(gpu)}")
        if len(str(gpu)) > MAX_NAME_CHARS:
            raise InputError(f"pricing names a GPU over {MAX_NAME_CHARS} characters long")
        out[str(gpu)] = float(rate)
    return out


def _short(value: Any) -> str:
    """repr of a value from the file, cut to 60 characters (it may be huge)."""
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"(an integer of ~{int(abs(value).bit_length() * 0.30103) + 1} digits)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_result(index: int, raw: Any) -> E6Result:
    if not isinstance(raw, dict):
        raise InputError(f"result {index} must be an object")
    gpu = raw.get("gpu")
    if not isinstance(gpu, str) or not gpu.strip():
        raise InputError(f"result {index} has no 'gpu' name")
    gpu, clip = " ".join(gpu.split()), _name(raw.get("clip"))
    if clip is None:
        raise InputError(f"result {index} ({gpu[:MAX_NAME_CHARS]}) has no 'clip' name")
    if len(gpu) > MAX_NAME_CHARS or len(clip) > MAX_NAME_CHARS:
        raise InputError(f"result {index}: GPU and clip names are at most {MAX_NAME_CHARS} characters")
    where = f"result {index} ({gpu} on {clip})"
    frames = _frames(raw.get("frames"), where)
    elapsed = _optional_seconds(raw.get("elapsed"), "elapsed", where, MAX_SECONDS)
    fps = _optional_seconds(raw.get("fps"), "fps", where, MAX_FPS)
    if fps is None and elapsed and frames:
        fps = frames / elapsed
    if fps is not None and fps > MAX_FPS:
        raise InputError(f"{where}: {frames} frames in {elapsed:g} s is {fps:.3g} fps, beyond any "
                         f"GPU (at most {MAX_FPS:g})")
    error = raw.get("error")
    error = _text(error) if error not in (None, "") else None
    word = str(raw.get("status") or "").strip().lower()[:MAX_NAME_CHARS]
    repeat = raw.get("repeat", 0)
    repeat = int(repeat) if _is_number(repeat) and float(repeat).is_integer() and repeat >= 0 else 0
    if repeat > MAX_REPEAT:
        raise InputError(f"{where}: repeat {repeat} is over {MAX_REPEAT}")
    cold = raw.get("cold") is True
    status = FAILED
    if error is None:
        if word in SUCCESS_WORDS:
            if not elapsed or not frames:
                error = "reported success without an elapsed time and frame count"
            else:
                status = SUCCEEDED
        elif word in ("failed", "failure", "error", "errored"):
            error = "failed (no reason given)"
        else:
            error = f"status {_short(raw.get('status'))}"
    return E6Result(gpu, clip, frames, elapsed, fps, status, error, repeat, cold)


def _frames(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        try:
            value = float(value[:40])
        except ValueError:
            raise InputError(f"{where}: frames {_short(value)} is not a number") from None
    if not _is_number(value) or not 0 <= value <= MAX_FRAMES or not float(value).is_integer():
        raise InputError(f"{where}: frames {_short(value)} must be a whole number from 0 to "
                         f"{MAX_FRAMES}")
    return int(value)


def _optional_seconds(value: Any, name: str, where: str, most: float) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not 0 <= value <= most:
        raise InputError(f"{where}: {name} {_short(value)} must be a number from 0 to {most:g}")
    return float(value)


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool; an int too large for a float is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


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
    return float(fps) if _is_number(fps) and 0 < fps <= MAX_FPS else DEFAULT_FPS


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
            if r.status == SUCCEEDED:
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

