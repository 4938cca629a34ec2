"""Pure helpers behind the Run page (no st.* calls; unit-tested directly).

- The live view: stored run rows -> one progress row per run (fraction, stage, status, reason) and
  the experiment's overall progress.
- The form: preset -> form values, the clip and keyframe tables <-> ClipSpec/Keyframe, frame counts,
  GPU labels with prices, the plan built from the form, and everything known to stop a launch
  (preflight, clips past the end of the source, crop boxes outside the frame).
- The crop preview: a few source frames with the crop boxes drawn on them.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from bench.errors import InputError, UserError, one_line
from bench.plan import (DEMO_SOURCE, DEMO_SOURCE_FPS, DEMO_SOURCE_SECONDS, DEMO_SOURCE_SIZE,
                        PRESETS, ClipSpec, Plan, build_plan)
from bench.pricing import PriceTable
from bench.formatting import as_finite as _float
from bench.formatting import format_rate
from ui.charts import format_cost, format_seconds
from workers.job import Keyframe

# --------------------------------------------------------------------------- live progress

STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:",
                "succeeded": ":material/check_circle:", "failed": ":material/error:",
                "interrupted": ":material/warning:"}
"""Status -> Material icon (Streamlit markdown) shown before a run's progress line."""
STAGE_WORDS = {"fetch": "fetching the input", "model_load": "loading the model", "decode": "decoding",
               "upscale": "upscaling", "encode": "encoding", "upload": "uploading"}
"""Worker stage -> what the progress line says."""
ACTIVE = ("queued", "running")
"""Statuses of runs that have not ended."""


@dataclass(frozen=True)
class ProgressRow:
    """How far one run has got, ready to draw as a progress bar."""

    run_id: str
    """Run id."""
    label: str
    """'GPU · clip · #repeat'."""
    status: str
    """queued, running, succeeded, failed or interrupted."""
    fraction: float
    """0..1 for the progress bar (1 once succeeded)."""
    text: str
    """One line: icon, label, and frames/stage or time/cost or the reason."""
    error: str | None = None
    """Why it failed or was interrupted."""


@dataclass(frozen=True)
class ExperimentProgress:
    """The whole experiment at a glance."""

    counts: dict[str, int] = field(default_factory=dict)
    """Status -> number of runs."""
    frames_done: int = 0
    """Frames upscaled so far over all runs."""
    frames_total: int = 0
    """Frames all runs will produce."""

    @property
    def runs(self) -> int:
        """Number of runs."""
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        """True when there are runs and none is queued or running."""
        return self.runs > 0 and not any(self.counts.get(s, 0) for s in ACTIVE)

    @property
    def fraction(self) -> float:
        """Frames done over frames total (0 when unknown)."""
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0

    def headline(self) -> str:
        """'3 of 5 runs finished · 2 succeeded, 1 failed · 12/30 frames'."""
        if not self.runs:
            return "No runs in this experiment"
        ended = sum(n for s, n in self.counts.items() if s not in ACTIVE)
        parts = [f"{ended} of {self.runs} run{'s' if self.runs != 1 else ''} finished"]
        states = [f"{n} {s}" for s, n in self.counts.items() if n]
        if states:
            parts.append(", ".join(states))
        if self.frames_total:
            parts.append(f"{self.frames_done}/{self.frames_total} frames")
        return " · ".join(parts)


def _int(value: Any) -> int | None:
    """A whole number from a DataFrame cell (None for NaN/None)."""
    number = _float(value)
    return None if number is None else int(number)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = " ".join(str(value).split())
    return text or None


def run_title(row: Mapping[str, Any]) -> str:
    """'cpu · 0.3s · #1' for a run row."""
    repeat = _int(row.get("repeat_index"))
    return " · ".join([str(row.get("gpu")), str(row.get("clip"))]
                      + ([f"#{repeat + 1}"] if repeat is not None else []))


def frames_of(row: Mapping[str, Any]) -> tuple[int, int]:
    """(frames done, frames total) of a run row; the total falls back to the frames expected."""
    done = _int(row.get("frames_done")) or 0
    total = _int(row.get("frames_total")) or _int(row.get("frames_expected")) or 0
    if row.get("status") == "succeeded":
        out = _int(row.get("frames_out"))
        done = out if out is not None else max(done, total)
        total = max(total, done)
    return done, total


def progress_row(row: Mapping[str, Any]) -> ProgressRow:
    """One run row (a list_runs record) as a progress row."""
    status = str(row.get("status"))
    label = run_title(row)
    done, total = frames_of(row)
    error = _text(row.get("error"))
    icon = STATUS_ICONS.get(status, ":material/radio_button_unchecked:")
    if status == "succeeded":
        fraction = 1.0
        seconds = _float(row.get("billed_seconds")) or _float(row.get("total_seconds"))
        details = [f"{done} frames", format_seconds(seconds)]
        fps = _float(row.get("fps"))
        if fps is not None:
            details.append(f"{fps:.2f} frames/s")
        cost = _float(row.get("cost_gpu"))
        if cost is not None:
            details.append(format_cost(cost))
        if row.get("cold") is True:
            details.append("cold start")
        text = f"{icon} {label} — succeeded: " + ", ".join(details)
    elif status in ("failed", "interrupted"):
        fraction = min(1.0, done / total) if total else 0.0
        text = f"{icon} {label} — {status}: {error or 'no reason recorded'}"
    elif status == "running":
        fraction = min(1.0, done / total) if total else 0.0
        stage = _text(row.get("progress_stage"))
        doing = STAGE_WORDS.get(stage or "", stage or "starting")
        text = f"{icon} {label} — {doing}: {done}/{total or '?'} frames"
    else:
        fraction = 0.0
        text = f"{icon} {label} — {status}" + (f" ({total} frames)" if total else "")
    return ProgressRow(str(row.get("id")), label, status, fraction, text, error)


def progress_rows(runs: pd.DataFrame | None) -> list[ProgressRow]:
    """A progress row per run of a list_runs DataFrame, in plan order."""
    if runs is None or runs.empty:
        return []
    frame = runs.sort_values("seq") if "seq" in runs else runs
    return [progress_row(r) for r in frame.to_dict("records")]


def experiment_progress(runs: pd.DataFrame | None) -> ExperimentProgress:
    """Counts per status and frames done/total over the experiment's runs."""
    if runs is None or runs.empty:
        return ExperimentProgress()
    counts: dict[str, int] = {}
    done_sum = total_sum = 0
    for row in runs.to_dict("records"):
        status = str(row.get("status"))
        counts[status] = counts.get(status, 0) + 1
        done, total = frames_of(row)
        done_sum += min(done, total) if total else done
        total_sum += total
    order = ("queued", "running", "succeeded", "failed", "interrupted")
    ordered = {s: counts[s] for s in order if s in counts}
    ordered.update({s: n for s, n in counts.items() if s not in ordered})
    return ExperimentProgress(ordered, done_sum, total_sum)


# --------------------------------------------------------------------------- the form

SOURCE_KINDS = {"demo": "Generate a demo clip", "file": "A local video file",
                "key": "An object key (R2 or the local store)"}
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


def preset_form(preset: str) -> dict[str, Any]:
    """The Run form's values for a preset: source kind and value, clips and keyframes tables,
    whether to keep the model's scale, output size, fps, model, engine, backend, GPUs, repeats.
    Raises InputError for an unknown preset."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = PRESETS[preset]
    source = values["source"]
    width, height = values["output_width"], values["output_height"]
    if width is None:  # the model's scale; the size fields start at x4 of the first crop
        first = values["keyframes"][0] if values["keyframes"] else None
        width, height = (first.width * 4, first.height * 4) if first else (1280, 720)
    return {
        "source_kind": "demo" if source == DEMO_SOURCE else "key",
        "source": "" if source == DEMO_SOURCE else source,
        "clips": clips_table(values["clips"]),
        "keyframes": keyframes_table(values["keyframes"]),
        "scale_output": values["output_width"] is None,
        "output_width": width,
        "output_height": height,
        "fps": float(values["fps"]),
        "model": values["model"],
        "engine": values["engine"],
        "backend": values["backend"],
        "gpus": list(values["gpus"]),
        "repeats": int(values["repeats"]),
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
    """The plan the form describes, marked with a preset only when it equals that preset.
    Raises InputError for anything the plan rejects."""
    kind = form["source_kind"]
    if kind == "demo":
        source = DEMO_SOURCE
    else:
        source = str(form.get("source") or "").strip()
        if not source:
            raise InputError("give the source: " + ("a path to a video file" if kind == "file"
                                                    else "an object key USER/PATH"))
    scale = bool(form.get("scale_output"))
    return matching_preset(build_plan(
        None, source=source, clips=clips_from_table(form["clips"]),
        keyframes=keyframes_from_table(form["keyframes"]),
        output_width=None if scale else form.get("output_width"),
        output_height=None if scale else form.get("output_height"),
        fps=form["fps"], model=form["model"], engine=form["engine"], backend=form["backend"],
        gpus=list(form["gpus"]), repeats=form["repeats"],
        weights=form.get("weights") or "auto", precision=form.get("precision") or "auto",
        batch_size=form.get("batch_size") or None,
    ))


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
    problems = []
    for clip in plan.clips:
        if clip.start >= info.duration:
            problems.append(f"clip {clip.name} starts at {clip.start:g} s, at or past the end of "
                            f"the source ({info.duration:.1f} s)")
        elif clip.end > info.duration + 0.5 / info.fps:
            problems.append(f"clip {clip.name} ends at {clip.end:g} s, past the end of the source "
                            f"({info.duration:.1f} s)")
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


# --------------------------------------------------------------------------- crop preview

BOX_COLOURS = ((255, 40, 40), (40, 220, 40), (60, 120, 255), (255, 200, 0))
"""Outline colours of the crop boxes, one per preview frame."""


def preview_times(plan: Plan, info: SourceInfo, count: int = 3) -> list[float]:
    """Up to `count` source times evenly spread from the first frame of the earliest clip to the
    last frame of the latest one (frame times inside the source)."""
    last = max(0, math.ceil(info.duration * info.fps - 1e-9) - 1)
    first_frame = min(last, math.ceil(min(c.start for c in plan.clips) * info.fps - 1e-9))
    last_frame = min(last, max(first_frame, math.ceil(max(c.end for c in plan.clips) * info.fps - 1e-9) - 1))
    steps = max(1, count - 1)
    frames = sorted({first_frame + (last_frame - first_frame) * i // steps for i in range(count)})
    return [round(f / info.fps, 6) for f in frames]


def draw_box(image: np.ndarray, box: Any, colour: tuple[int, int, int]) -> np.ndarray:
    """A copy of an RGB frame with the box (x, y, width, height) outlined."""
    picture = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    thickness = max(1, min(picture.size) // 120)
    draw.rectangle([box.x, box.y, box.x + box.width - 1, box.y + box.height - 1], outline=colour,
                   width=thickness)
    return np.asarray(picture)


def source_frame(kind: str, source: str, info: SourceInfo, t: float) -> np.ndarray:
    """The source frame shown at time t (RGB). Raises MediaError/InputError for a bad file."""
    if kind == "demo":
        from workers.video import demo_frame

        return demo_frame(round(t * info.fps), info.width, info.height, info.fps)
    from workers.video import decode_segment

    end = min(info.duration, t + 1.0 / info.fps)
    for frame in decode_segment(Path(source).expanduser(), t, end):
        return frame.image
    raise InputError(f"no frame at {t:g} s in {source}")


def crop_preview(kind: str, source: str, plan: Plan, info: SourceInfo,
                 count: int = 3) -> list[tuple[float, Any, np.ndarray]]:
    """(time, crop box, frame with the box drawn) for a few times of the source; the box is the whole
    frame when the plan has no keyframes. Raises InputError for keyframes that do not fit the frame,
    MediaError for an unreadable file."""
    from workers.crop import crop_boxes

    times = preview_times(plan, info, count)
    boxes = crop_boxes(plan.keyframes, times, info.width, info.height)
    out = []
    for i, (t, box) in enumerate(zip(times, boxes)):
        frame = source_frame(kind, source, info, t)
        out.append((t, box, draw_box(frame, box, BOX_COLOURS[i % len(BOX_COLOURS)])))
    return out


# --------------------------------------------------------------------------- background process


def launch_log_path(db_path: Path | str, experiment_id: str) -> Path:
    """Where orchestrator.launch_detached writes the background process's output."""
    return Path(db_path).parent / "logs" / f"{experiment_id}.log"


def launch_log_tail(db_path: Path | str, experiment_id: str, lines: int = 30) -> str:
    """The last `lines` lines of the background process's log ('' when there is none)."""
    try:
        text = launch_log_path(db_path, experiment_id).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def orphaned_modal_runs(runs: pd.DataFrame, host: str | None = None) -> list[str]:
    """Ids of Modal runs still running remotely (call id stored) whose collecting process on this
    machine is gone, so nobody is gathering their results: the page offers to reattach."""
    from store.runs import pid_exists

    host = host or socket.gethostname()
    orphans = []
    for row in runs.to_dict("records"):
        pid = _int(row.get("worker_pid"))
        if (row.get("status") == "running" and _text(row.get("call_id")) and pid is not None
                and (row.get("worker_host") or host) == host and not pid_exists(pid)):
            orphans.append(str(row["id"]))
    return orphans
