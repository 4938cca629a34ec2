"""The Run page's form, pure (no st.* calls; unit-tested directly): preset -> form values, the
clip and keyframe tables <-> ClipSpec/Keyframe, frame counts, GPU labels with prices, the plan built
from the form, and everything known to stop a launch (preflight, clips past the end of the source,
crop boxes outside the frame, a spend cap the estimate exceeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from bench.estimate import PlanEstimate, check_cap
from bench.formatting import format_cost, format_rate
from bench.plan import (
    DEMO_SOURCE,
    DEMO_SOURCE_FPS,
    DEMO_SOURCE_SECONDS,
    DEMO_SOURCE_SIZE,
    PRESETS,
    ClipSpec,
    Plan,
    build_plan,
    clips_past_end,
)
from bench.pricing import PriceTable
from core.errors import InputError, UserError, one_line
from core.job import Keyframe

SOURCE_KINDS = {"demo": "Generate a demo clip", "upload": "Upload a video",
                "file": "A local video file", "key": "An object key (R2 or the local store)"}
"""Source kind -> label of the Run page's source choice."""
CLIP_COLUMNS = ("name", "start", "end")
"""Columns of the clips table (seconds of the source)."""
KEYFRAME_COLUMNS = ("time", "x", "y", "width", "height")
"""Columns of the crop keyframes table (seconds, source pixels)."""


@dataclass(frozen=True)
class SourceInfo:
    """What is known about the source before launch."""

    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    fps: float
    """Frames per second."""
    duration: float
    """Length in seconds."""

    def describe(self) -> str:
        """'160x120, 10 fps, 1.5 s'."""
        return f"{self.width}x{self.height}, {self.fps:g} fps, {self.duration:.1f} s"


DEMO_INFO = SourceInfo(DEMO_SOURCE_SIZE[0], DEMO_SOURCE_SIZE[1], DEMO_SOURCE_FPS, DEMO_SOURCE_SECONDS)
"""The generated demo source."""


UPLOAD_TYPES = ("mp4", "mov", "mkv", "webm", "avi", "m4v")
"""File types the Run page's upload accepts (PyAV reads each; the content is probed anyway)."""
WHOLE_FRAME_PIXELS = 960 * 540
"""Sources up to this many pixels a frame are upscaled whole by default; larger ones get a
centred crop of half their width and height."""


def upload_key(data: bytes, name: str) -> str:
    """The object key an uploaded video is kept under in the local store: the same bytes always
    land at the same key (so a second upload is not stored twice), named after the file."""
    import hashlib
    import re

    from store.keys import source_object_key

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name)).name).strip("._")[:80] or "video"
    return source_object_key(f"uploads/{hashlib.sha256(data).hexdigest()[:16]}-{safe}")


def source_defaults(info: SourceInfo) -> dict[str, Any]:
    """Form values that follow a source once it is probed: its frame rate, three clips from its
    start (a quarter, half and all of it, so the fit has three lengths), and the whole frame, or
    a centred crop of half of each side for a frame above WHOLE_FRAME_PIXELS."""
    lengths = sorted({round(info.duration * share, 2) for share in (0.25, 0.5, 1.0)} - {0.0})
    clips = [ClipSpec(f"{length:g}s", 0.0, length) for length in lengths]
    keyframes: list[Keyframe] = []
    if info.width * info.height > WHOLE_FRAME_PIXELS:
        width, height = info.width // 4 * 2, info.height // 4 * 2
        keyframes = [Keyframe(time=0.0, x=(info.width - width) // 2, y=(info.height - height) // 2,
                              width=width, height=height)]
    return {"fps": float(info.fps), "clips": clips_table(clips),
            "keyframes": keyframes_table(keyframes)}


def preset_form(preset: str) -> dict[str, Any]:
    """The Run form's values for a preset (plan_form of the preset's plan). Raises InputError for
    an unknown preset."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return plan_form(build_plan(preset))


def plan_form(plan: Plan, stored_source: str | None = None) -> dict[str, Any]:
    """The Run form's values for a plan (a preset's, or a stored experiment's for Rerun): source
    kind and value, clips and keyframes tables, whether to keep the model's scale, output size,
    fps, the models and engines compared, backend, GPUs and the cards pricing local devices,
    repeats, precision, weights, batch size. A source that is no longer a file here becomes the
    object key it was stored under (stored_source). Raises nothing."""
    variants = plan.variant_list()
    width, height = plan.output_width, plan.output_height
    if width is None:  # the model's scale; the size fields start at x4 of the first crop
        first = plan.keyframes[0] if plan.keyframes else None
        width, height = (first.width * 4, first.height * 4) if first else (1280, 720)
    if plan.source == DEMO_SOURCE:
        kind, source = "demo", ""
    elif Path(plan.source).expanduser().is_file():
        kind, source = "file", plan.source
    else:
        kind, source = "key", stored_source or plan.source
    return {
        "source_kind": kind,
        "source": source,
        "clips": clips_table(plan.clips),
        "keyframes": keyframes_table(plan.keyframes),
        "scale_output": plan.output_width is None,
        "output_width": width,
        "output_height": height,
        "fps": float(plan.fps),
        "models": list(dict.fromkeys(v.model for v in variants)),
        "engines": list(dict.fromkeys(v.engine for v in variants)),
        "backend": plan.backend,
        "gpus": [g.label for g in plan.gpus],
        "price_cards": {g.label: g.price_gpu for g in plan.gpus
                        if plan.backend == "local" and g.price_gpu and g.price_gpu != g.label},
        "repeats": int(plan.repeats),
        "precision": plan.precision,
        "weights": plan.weights,
        "batch_size": int(plan.batch_size),
    }


def clips_table(clips: Sequence[ClipSpec]) -> pd.DataFrame:
    """Clips as the editable table (name, start, end)."""
    return pd.DataFrame([{"name": c.name, "start": float(c.start), "end": float(c.end)} for c in clips],
                        columns=list(CLIP_COLUMNS)).astype({"name": "string", "start": "float64",
                                                             "end": "float64"})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        (isinstance(value, str) and not value.strip()) or value is pd.NA


def clips_from_table(table: pd.DataFrame) -> tuple[ClipSpec, ...]:
    """The clips of the edited table (blank rows skipped). Raises InputError naming the first bad
    row."""
    clips = []
    for n, row in enumerate(table.to_dict("records"), start=1):
        if all(_blank(row.get(c)) for c in CLIP_COLUMNS):
            continue
        if any(_blank(row.get(c)) for c in CLIP_COLUMNS):
            raise InputError(f"clip row {n}: give a name, a start and an end (seconds)")
        try:
            start, end = float(row["start"]), float(row["end"])
        except (TypeError, ValueError):
            raise InputError(f"clip row {n}: start and end must be numbers of seconds") from None
        clips.append(ClipSpec(str(row["name"]).strip(), start, end))
    if not clips:
        raise InputError("add at least one clip (name, start and end in seconds)")
    return tuple(clips)


def clip_frames_text(clips: Sequence[ClipSpec], fps: float) -> str:
    """'Frames at 10 fps: 0.3s 3 · 0.6s 6 · 1s 10 (19 per GPU and repeat)'."""
    if not clips or not fps > 0:
        return ""
    counts = [(c.name, c.frames(fps)) for c in clips]
    listed = " · ".join(f"{name} {frames}" for name, frames in counts)
    return f"Frames at {fps:g} fps: {listed} ({sum(f for _, f in counts)} per GPU and repeat)"


def keyframes_table(keyframes: Sequence[Keyframe]) -> pd.DataFrame:
    """Keyframes as the editable table (time s, x, y, width, height px)."""
    return pd.DataFrame([{"time": float(k.time), "x": k.x, "y": k.y, "width": k.width,
                          "height": k.height} for k in keyframes],
                        columns=list(KEYFRAME_COLUMNS)).astype(
        {"time": "float64", "x": "Int64", "y": "Int64", "width": "Int64", "height": "Int64"})


def keyframes_from_table(table: pd.DataFrame) -> tuple[Keyframe, ...]:
    """The keyframes of the edited table (blank rows skipped), sorted by time. An empty table
    means no crop (the whole frame). Raises InputError naming the first bad row."""
    keyframes = []
    for n, row in enumerate(table.to_dict("records"), start=1):
        if all(_blank(row.get(c)) for c in KEYFRAME_COLUMNS):
            continue
        if any(_blank(row.get(c)) for c in KEYFRAME_COLUMNS):
            raise InputError(f"keyframe row {n}: give time, x, y, width and height")
        keyframes.append(Keyframe.from_dict({c: row[c] for c in KEYFRAME_COLUMNS}))
    return tuple(sorted(keyframes, key=lambda k: k.time))


def gpu_label(name: str, prices: PriceTable) -> str:
    """'L4 · $0.000222/s ($0.80/h) · 24 GB' for a catalog GPU."""
    gpu = prices.gpus[name]
    return (f"{name} · {format_rate(gpu.usd_per_second)}/s "
            f"({format_cost(gpu.usd_per_second * 3600)}/h) · {gpu.memory_gb} GB")


def local_gpu_spec(device: str, price_card: str | None) -> str:
    """'cuda:0=H100' (or the device alone when priced by its own name / the CPU rate)."""
    return f"{device}={price_card}" if price_card and device != "cpu" else device


def plan_from_form(form: Mapping[str, Any]) -> Plan:
    """The plan the form describes (every chosen model x engine runs on every GPU), marked with a
    preset only when it equals that preset. Raises InputError for anything the plan rejects."""
    kind = form["source_kind"]
    if kind == "demo":
        source = DEMO_SOURCE
    else:
        source = str(form.get("source") or "").strip()
        if not source:
            raise InputError({"file": "give the source: a path to a video file",
                              "upload": "upload a video file first"}.get(
                kind, "give the source: an object key USER/PATH"))
    scale = bool(form.get("scale_output"))
    return matching_preset(build_plan(
        None, source=source, clips=clips_from_table(form["clips"]),
        keyframes=keyframes_from_table(form["keyframes"]),
        output_width=None if scale else form.get("output_width"),
        output_height=None if scale else form.get("output_height"),
        fps=form["fps"], model=_chosen(form["models"], "model"),
        engine=_chosen(form["engines"], "engine"), backend=form["backend"],
        gpus=list(form["gpus"]), repeats=form["repeats"],
        weights=form.get("weights") or "auto", precision=form.get("precision") or "auto",
        batch_size=form.get("batch_size") or None,
    ))


def _chosen(values: Any, what: str) -> list[str]:
    items = [values] if isinstance(values, str) else list(values or ())
    if not items:
        raise InputError(f"choose at least one {what}")
    return [str(v) for v in items]


def matching_preset(plan: Plan) -> Plan:
    """The plan marked with the preset it equals field for field (the form left as a preset
    filled it), else unchanged."""
    from dataclasses import replace

    for name in PRESETS:
        try:
            if replace(plan, preset=name) == build_plan(name):
                return replace(plan, preset=name)
        except InputError:
            continue
    return plan


def source_info(kind: str, source: str) -> SourceInfo | None:
    """Size, fps and length of the source when it can be known without fetching anything: the
    demo clip, or a local file (probed). None for an object key. Raises InputError/MediaError
    for a local path that is missing or not a video."""
    if kind == "demo":
        return DEMO_INFO
    if kind != "file":
        return None
    from workers.video import probe

    path = Path(source).expanduser()
    if not path.is_file():
        raise InputError(f"no file at {path}")
    info = probe(path)
    return SourceInfo(info.width, info.height, info.fps, info.duration)


def source_problems(plan: Plan, info: SourceInfo | None) -> list[str]:
    """Clips past the end of the source and crop keyframes that do not fit its frame."""
    if info is None:
        return []
    problems = clips_past_end(plan, info.duration, info.fps)
    if plan.keyframes:
        from workers.crop import validate_keyframes

        try:
            validate_keyframes(plan.keyframes, info.width, info.height)
        except InputError as exc:
            problems.append(one_line(exc))
    return problems


def launch_problems(plan: Plan, storage_config: Any, modal_token: bool) -> list[str]:
    """Why the plan cannot launch, one line each (empty: it can): everything preflight knows
    (unknown GPU or device, Modal without R2 storage, no Modal token), the missing Modal token
    named even when preflight stops at the storage first."""
    from bench.backends.modal_backend import NO_TOKEN_MESSAGE
    from bench.orchestrator import preflight

    problems = []
    try:
        preflight(plan, storage_config)
    except UserError as exc:
        problems.append(one_line(exc))
    if plan.backend == "modal" and not modal_token and NO_TOKEN_MESSAGE not in problems:
        problems.append(NO_TOKEN_MESSAGE)
    return problems


def cap_problems(estimate: PlanEstimate, max_cost: float | None) -> list[str]:
    """Why a spend cap refuses the plan (the same check as `run --max-cost`); empty without a cap
    or within it."""
    if max_cost is None:
        return []
    try:
        check_cap(estimate, max_cost)
    except InputError as exc:
        return [one_line(exc).replace("--max-cost", "the spend cap")]
    return []


def confirm_label(estimate: PlanEstimate) -> str:
    """What a Modal launch asks the user to accept before Run is enabled."""
    return f"Spend on Modal: {estimate.summary()}"
