"""Experiment plans: clips x GPUs x variants x repeats of one source, and the presets `e6` and `demo`.

What a plan compares are its candidates: every GPU (or local device) x every variant (a model and
engine pair). A plan with one variant compares GPUs, as the original experiment did; with several
variants each device x variant is a candidate of its own, labelled 'cpu · fast' (candidate_label),
so the CPU-only demo compares the fast engine against the reference loop on this machine's CPU and
its verdict, break-even and charts mean something. Runs keep the device in their gpu column and the
variant in their model and engine columns.

GPUs of a plan depend on the backend:
- modal: catalog names ('T4', 'l4', 'a100' -> 'A100-40GB'); each is priced at its own catalog rate.
- local: devices, 'cpu', 'cuda:N' ('cuda' means 'cuda:0') or 'cuda:all' (every card, one candidate), optionally '=CARD' naming the catalog
  card whose rate applies ('cuda:0=H100'). Without '=CARD', a CUDA device is priced at the catalog
  card matching the device name it reports (pricing.gpu_for_device) and the CPU at the catalog's
  CPU rate x cores used (price_gpu None): the orchestrator resolves both once the device is known.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from bench.pricing import canonical_gpu, region_multiplier
from core.errors import InputError
from core.job import (
    DEFAULT_ENCODE_PRESET,
    ENGINES,
    PRECISIONS,
    Keyframe,
    check_decoder,
    check_engine_settings,
    check_output_size,
    output_frame_count,
)
from core.resources import DEFAULT_CPU_CORES, DEFAULT_SCALEDOWN_WINDOW_SECONDS
from workers.catalog import get_model_spec

BACKENDS = ("local", "modal")
CONTAINER_REUSE = ("sequential", "parallel")
"""How a Modal plan's runs share containers: 'sequential' runs the runs of one GPU one after
another on one warm container (at most one container per GPU); 'parallel' spawns every run at
once and lets Modal start as many containers as it likes (each one cold, each with its idle tail)."""
SCALEDOWN_WINDOW_RANGE = (2, 3600)
"""Seconds Modal accepts as a scaledown window (modal/_functions.py checks 2 <= window <= 3600)."""
DEFAULT_QUEUE_WAIT_LIMIT_SECONDS = 15 * 60.0
"""How long a Modal run may wait for its GPU before the call is cancelled and the run fails."""

E6_SOURCE = "modal_test/test_videos/wcfc-carlsbad-trimmed.mp4"
"""Source of the original experiment (a key in the object store)."""
DEMO_SOURCE = "demo"
"""Source name meaning 'generate a synthetic clip' (python -m bench demo-clip)."""
DEMO_SOURCE_SIZE = (160, 120)
"""Width, height of the generated demo source."""
DEMO_SOURCE_FPS = 10.0
"""Frame rate of the generated demo source."""
DEMO_SOURCE_SECONDS = 1.5
"""Length of the generated demo source; every demo clip lies inside it."""

MAX_REPEATS = 100
"""Most repeats of a plan (each clip x GPU); more is a typo, and would queue silently for minutes."""
MAX_RUNS = 1000
"""Most runs one plan may create (clips x GPUs x variants x repeats)."""
MAX_SOURCE_SECONDS = 24 * 3600.0
"""Latest clip end a plan accepts (seconds of the source)."""
MAX_FPS = 1000.0
"""Highest output frame rate."""
MAX_BATCH_SIZE = 256
"""Most frames per model call."""


@dataclass(frozen=True)
class ClipSpec:
    """A trimmed segment of the source."""

    name: str
    """Clip name ('6s')."""
    start: float
    """Start in seconds of the source (inclusive)."""
    end: float
    """End in seconds of the source (exclusive)."""

    def __post_init__(self) -> None:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in (self.start, self.end)):
            raise InputError(f"clip {self.name}: start and end must be numbers of seconds")
        if not self.name or not re.fullmatch(r"[\w.\-]+", self.name):
            raise InputError(f"clip name {self.name!r} must be letters, digits, '.', '-' or '_'")
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise InputError(f"clip {self.name}: start and end must be numbers")
        if self.start < 0:
            raise InputError(f"clip {self.name}: start {self.start} s is before the video starts")
        if self.end <= self.start:
            raise InputError(f"clip {self.name}: end {self.end} s must be after start {self.start} s")
        if self.end > MAX_SOURCE_SECONDS:
            raise InputError(f"clip {self.name}: end {self.end:g} s is past the longest source "
                             f"accepted ({MAX_SOURCE_SECONDS:g} s)")

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return self.end - self.start

    def frames(self, fps: float) -> int:
        """Frames the clip's output has at `fps` (core.job.output_frame_count). Raises InputError
        for fps <= 0."""
        if not fps > 0:
            raise InputError(f"fps {fps} must be positive")
        return output_frame_count(self.start, self.end, fps)


@dataclass(frozen=True)
class GpuChoice:
    """One GPU of the plan."""

    label: str
    """What runs are recorded under: the catalog name for Modal ('L4'), the device locally
    ('cuda:0', 'cpu')."""
    price_gpu: str | None
    """Catalog card whose rate applies; None locally means: match the device's reported name
    (CUDA) or use the CPU core rate (cpu)."""
    backend: str
    """'local' or 'modal'."""


@dataclass(frozen=True)
class Variant:
    """One software setting every device of a plan runs: a model and an engine."""

    model: str
    """Model name (workers.catalog.MODELS)."""
    engine: str
    """'fast' or 'reference'."""

    @classmethod
    def parse(cls, text: str, model: str, engine: str) -> "Variant":
        """'MODEL/ENGINE', or a model or an engine alone (the other taken from model/engine).
        Raises InputError for an unknown model or engine."""
        parts = [p.strip() for p in str(text).split("/")]
        if len(parts) == 2:
            return cls(parts[0] or model, parts[1] or engine)
        if len(parts) == 1 and parts[0] in ENGINES:
            return cls(model, parts[0])
        if len(parts) == 1 and parts[0]:
            get_model_spec(parts[0])
            return cls(parts[0], engine)
        raise InputError(f"variant {text!r} must be MODEL/ENGINE, a model or an engine")


def candidate_label(gpu: str, model: str | None, engine: str | None, vary_model: bool,
                    vary_engine: bool) -> str:
    """What the analysis calls one device x variant: the GPU alone when nothing else varies, else
    'cpu · fast', 'T4 · x4plus', 'T4 · x4plus/reference'. Raises nothing."""
    parts = ([model or "unknown model"] if vary_model else []) + \
        ([engine or "unknown engine"] if vary_engine else [])
    return f"{gpu} · {'/'.join(parts)}" if parts else gpu


@dataclass(frozen=True)
class Plan:
    """What an experiment runs: every clip on every GPU, `repeats` times."""

    source: str
    """Source video: an object-store key or local path, or 'demo' for a generated clip."""
    clips: tuple[ClipSpec, ...]
    """Trimmed segments, in order."""
    keyframes: tuple[Keyframe, ...]
    """Crop boxes over time (empty: the whole frame)."""
    output_width: int | None
    """Output width; None (with output_height None) keeps the model's scale."""
    output_height: int | None
    """Output height; None (with output_width None) keeps the model's scale."""
    fps: float
    """Frame rate of the output (and of the source's clips, for frame counts)."""
    model: str
    """Model name (workers.catalog.MODELS)."""
    engine: str
    """'fast' or 'reference'."""
    gpus: tuple[GpuChoice, ...]
    """Where to run, the first is the baseline of comparisons."""
    repeats: int = 1
    """How many times each clip runs on each GPU."""
    backend: str = "local"
    """'local' or 'modal'."""
    preset: str | None = None
    """Preset the plan started from, if any."""
    precision: str = "auto"
    """'auto', 'fp32', 'fp16' or 'bf16'."""
    batch_size: int = 4
    """Frames per model call (fast engine)."""
    weights: str = "auto"
    """'auto', 'random' (timing-only) or a path to a .pth file."""
    compile: str = "off"
    """torch.compile in the fast engine: 'off', 'on' or 'auto' (core.job.COMPILE_MODES)."""
    encoder: str = "libx264"
    """H.264 encoder: 'libx264', 'nvenc' or 'auto' (core.job.ENCODERS)."""
    encode_preset: str = DEFAULT_ENCODE_PRESET
    """Encoder speed preset (core.job.X264_PRESETS)."""
    crf: int = 18
    """Constant quality of the encoder (0..51)."""
    decoder: str = "auto"
    """Video decoder: 'cpu', 'nvdec' or 'auto' (core.job.DECODERS); each run records what it got."""
    cpu_cores: float = DEFAULT_CPU_CORES
    """CPU cores of each Modal container (billed apart from the GPU); local runs use what the
    machine gives and record it per run."""
    container_reuse: str = "sequential"
    """Modal: how runs share containers (CONTAINER_REUSE); stored with the experiment."""
    scaledown_window_seconds: int = DEFAULT_SCALEDOWN_WINDOW_SECONDS
    """Modal: seconds an idle container stays up, billed, after its last run; stored with the
    experiment, it is every container's idle tail in the bill."""
    queue_wait_limit_seconds: float = DEFAULT_QUEUE_WAIT_LIMIT_SECONDS
    """Modal: seconds a run may wait for a GPU (spawn to a sign of life) before it is cancelled
    and fails with 'no <GPU> capacity within ...'."""
    variants: tuple[Variant, ...] = ()
    """Model x engine settings compared on every GPU; empty means the one of model and engine
    (when given, the first is model and engine: the baseline's)."""
    region: str | None = None
    """Modal: the region containers are pinned to (with_options region=), priced at Modal's
    region multiplier (bench.pricing.region_multiplier); None lets Modal place them anywhere."""

    def __post_init__(self) -> None:
        validate_plan(self)

    def variant_list(self) -> tuple[Variant, ...]:
        """The variants every GPU runs, in order (the first is the baseline's)."""
        return self.variants or (Variant(self.model, self.engine),)

    def candidate_of(self, gpu: str, variant: Variant) -> str:
        """The candidate label of a GPU label and one of the plan's variants."""
        variants = self.variant_list()
        return candidate_label(gpu, variant.model, variant.engine,
                               len({v.model for v in variants}) > 1,
                               len({v.engine for v in variants}) > 1)

    def candidates(self) -> list[str]:
        """What the analysis compares: each GPU x variant, in run order (the first is the
        baseline)."""
        return [self.candidate_of(g.label, v) for g in self.gpus for v in self.variant_list()]

    @property
    def baseline(self) -> str:
        """Label of the baseline candidate (the first GPU with the first variant)."""
        return self.candidates()[0]

    def run_count(self) -> int:
        """Runs the plan makes: clips x GPUs x variants x repeats."""
        return len(self.clips) * len(self.gpus) * len(self.variant_list()) * self.repeats

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict (inverse of from_dict)."""
        data = asdict(self)
        data["clips"] = [asdict(c) for c in self.clips]
        data["keyframes"] = [asdict(k) for k in self.keyframes]
        data["gpus"] = [asdict(g) for g in self.gpus]
        data["variants"] = [asdict(v) for v in self.variants]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Plan":
        """Parse to_dict's output. Raises InputError for a malformed plan."""
        try:
            data = dict(data)
            data["clips"] = tuple(ClipSpec(str(c["name"]), float(c["start"]), float(c["end"]))
                                  for c in data.get("clips") or ())
            data["keyframes"] = tuple(Keyframe.from_dict(k) for k in data.get("keyframes") or ())
            data["gpus"] = tuple(GpuChoice(str(g["label"]), g.get("price_gpu"), str(g["backend"]))
                                 for g in data.get("gpus") or ())
            data["variants"] = tuple(Variant(str(v["model"]), str(v["engine"]))
                                     for v in data.get("variants") or ())
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise InputError(f"malformed plan: {exc}") from exc


def validate_plan(plan: Plan) -> None:
    """Check a plan's fields together. Raises InputError naming the first problem."""
    if not plan.source or not str(plan.source).strip():
        raise InputError("the plan has no source video")
    if not plan.clips:
        raise InputError("the plan has no clips")
    names = [c.name for c in plan.clips]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"clip names must be unique; repeated: {', '.join(dupes)}")
    if not plan.gpus:
        raise InputError("the plan has no GPUs")
    check_engine_settings(plan.engine, plan.compile, plan.encoder, plan.encode_preset, plan.crf)
    check_decoder(plan.decoder)
    if not (isinstance(plan.cpu_cores, (int, float)) and math.isfinite(plan.cpu_cores)
            and 0.125 <= plan.cpu_cores <= 64):
        raise InputError(f"cpu cores {plan.cpu_cores!r} must be between 0.125 and 64")
    if plan.backend not in BACKENDS:
        raise InputError(f"unknown backend {plan.backend!r}; choose one of {', '.join(BACKENDS)}")
    wrong = [g.label for g in plan.gpus if g.backend != plan.backend]
    if wrong:
        raise InputError(f"GPUs {', '.join(wrong)} are not for the {plan.backend} backend")
    labels = [g.label for g in plan.gpus]
    if len(set(labels)) != len(labels):
        raise InputError(f"each GPU may appear once; got {', '.join(labels)}")
    get_model_spec(plan.model)
    if plan.engine not in ENGINES:
        raise InputError(f"unknown engine {plan.engine!r}; choose one of {', '.join(ENGINES)}")
    if plan.variants:
        for v in plan.variants:
            get_model_spec(v.model)
            if v.engine not in ENGINES:
                raise InputError(f"unknown engine {v.engine!r}; choose one of {', '.join(ENGINES)}")
        if len(set(plan.variants)) != len(plan.variants):
            raise InputError("each model/engine variant may appear once")
        if (plan.variants[0].model, plan.variants[0].engine) != (plan.model, plan.engine):
            raise InputError("the first variant must be the plan's model and engine")
    if plan.precision not in PRECISIONS:
        raise InputError(f"unknown precision {plan.precision!r}; choose one of {', '.join(PRECISIONS)}")
    if not (isinstance(plan.repeats, int) and 1 <= plan.repeats <= MAX_REPEATS):
        raise InputError(f"repeats {plan.repeats!r} must be a whole number from 1 to {MAX_REPEATS}")
    if plan.run_count() > MAX_RUNS:
        raise InputError(f"the plan makes {plan.run_count()} runs ({len(plan.clips)} clips x "
                         f"{len(plan.gpus)} GPUs x {plan.repeats} repeats); at most {MAX_RUNS}")
    if not (isinstance(plan.batch_size, int) and 1 <= plan.batch_size <= MAX_BATCH_SIZE):
        raise InputError(f"batch size {plan.batch_size!r} must be a whole number from 1 to "
                         f"{MAX_BATCH_SIZE}")
    if not (isinstance(plan.fps, (int, float)) and math.isfinite(plan.fps)
            and 0 < plan.fps <= MAX_FPS):
        raise InputError(f"fps {plan.fps!r} must be positive, at most {MAX_FPS:g}")
    if (plan.output_width is None) != (plan.output_height is None):
        raise InputError("give both output width and height, or neither")
    if plan.output_width is not None:
        check_output_size(plan.output_width, plan.output_height, video=True)
    if not plan.weights:
        raise InputError("weights must be 'auto', 'random' or a path")
    if plan.container_reuse not in CONTAINER_REUSE:
        raise InputError(f"unknown container reuse {plan.container_reuse!r}; choose one of "
                         f"{', '.join(CONTAINER_REUSE)}")
    low, high = SCALEDOWN_WINDOW_RANGE
    window = plan.scaledown_window_seconds
    if not (isinstance(window, int) and not isinstance(window, bool) and low <= window <= high):
        raise InputError(f"scaledown window {window!r} must be a whole number of seconds from "
                         f"{low} to {high}")
    limit = plan.queue_wait_limit_seconds
    if not (isinstance(limit, (int, float)) and not isinstance(limit, bool) and math.isfinite(limit)
            and limit > 0):
        raise InputError(f"queue-wait limit {limit!r} must be a positive number of seconds")
    if plan.region is not None:
        if plan.backend != "modal":
            raise InputError("a region is for the Modal backend")
        region_multiplier(plan.region)
    times = [k.time for k in plan.keyframes]
    if times != sorted(set(times)):
        raise InputError("keyframe times must be increasing, without duplicates")
    for k in plan.keyframes:
        if k.width <= 0 or k.height <= 0 or k.x < 0 or k.y < 0:
            raise InputError(f"keyframe at {k.time} s: box {k.x},{k.y} {k.width}x{k.height} "
                             f"must have a non-negative corner and a positive size")


def clips_past_end(plan: Plan, duration: float, fps: float) -> list[str]:
    """Clips of the plan that start at or end past the end of a source of `duration` seconds at
    `fps` (half a frame of slack), one line each."""
    problems = []
    for clip in plan.clips:
        if clip.start >= duration:
            problems.append(f"clip {clip.name} starts at {clip.start:g} s, at or past the end of "
                            f"the source ({duration:.1f} s)")
        elif clip.end > duration + 0.5 / fps:
            problems.append(f"clip {clip.name} ends at {clip.end:g} s, past the end of the source "
                            f"({duration:.1f} s)")
    return problems


def parse_clips(text: str) -> tuple[ClipSpec, ...]:
    """'NAME:START:END,...' (seconds) -> clips. Raises InputError for a bad item."""
    if not text or not text.strip():
        raise InputError("no clips given; use NAME:START:END,... e.g. 6s:3.0:9.0")
    clips = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 3:
            raise InputError(f"clip {item.strip()!r} must be NAME:START:END (seconds)")
        name, start, end = (p.strip() for p in parts)
        try:
            clips.append(ClipSpec(name, float(start), float(end)))
        except ValueError:
            raise InputError(f"clip {item.strip()!r}: START and END must be numbers of seconds") from None
    return tuple(clips)


def parse_gpus(text: str | list[str] | tuple[str, ...], backend: str) -> tuple[GpuChoice, ...]:
    """'A,B,...' (or a list) -> GPU choices for `backend` (see the module docstring).

    Raises InputError for an unknown backend, GPU or device, or a repeated GPU."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    items = text.split(",") if isinstance(text, str) else list(text)
    items = [i.strip() for i in items if i and i.strip()]
    if not items:
        raise InputError("no GPUs given")
    choices = [_parse_gpu(i, backend) for i in items]
    labels = [c.label for c in choices]
    dupes = sorted({label for label in labels if labels.count(label) > 1})
    if dupes:
        raise InputError(f"GPU {', '.join(dupes)} is listed twice")
    return tuple(choices)


def _parse_gpu(item: str, backend: str) -> GpuChoice:
    if backend == "modal":
        if "=" in item:
            raise InputError(f"{item!r}: '=CARD' is for local devices; on Modal name the card itself")
        name = canonical_gpu(item)
        return GpuChoice(name, name, backend)
    device, _, card = item.partition("=")
    device = device.strip().lower()
    if device == "cuda":
        device = "cuda:0"
    if device != "cpu" and not re.fullmatch(r"cuda:(\d+|all)", device):
        raise InputError(f"unknown local device {item!r}; use cpu, cuda:N or cuda:all (every card, "
                         f"runs spread over them), optionally =CARD for its price, e.g. cuda:0=H100")
    price = canonical_gpu(card) if card.strip() else None
    return GpuChoice(device, price, backend)


PRESETS: dict[str, dict[str, Any]] = {
    "e6": dict(
        source=E6_SOURCE,
        clips=(ClipSpec("6s", 3.0, 9.0), ClipSpec("15s", 3.0, 18.0), ClipSpec("30s", 3.0, 33.0)),
        keyframes=(Keyframe(time=0.0, x=690, y=60, width=540, height=960),),
        output_width=810, output_height=1440, fps=30.0,
        model="x4plus",
        # The original worker upscaled with realesrgan.RealESRGANer frame by frame.
        engine="reference",
        gpus=("T4", "L4"), backend="modal", repeats=1,
    ),
    "demo": dict(
        source=DEMO_SOURCE,
        clips=(ClipSpec("0.3s", 0.2, 0.5), ClipSpec("0.6s", 0.2, 0.8), ClipSpec("1s", 0.2, 1.2)),
        keyframes=(Keyframe(time=0.0, x=24, y=24, width=96, height=64),
                   Keyframe(time=1.5, x=48, y=40, width=96, height=64)),
        output_width=None, output_height=None, fps=DEMO_SOURCE_FPS,
        model="animevideov3", engine="reference",
        # The original loop (the baseline) against the fast engine, on this machine's CPU.
        variants=(Variant("animevideov3", "reference"), Variant("animevideov3", "fast")),
        # Three repeats: the median sets the one cold run (the model load) apart.
        gpus=("cpu",), backend="local", repeats=3,
    ),
}
"""Preset name -> plan fields. e6 is the original experiment; demo is its shape scaled down to run
on a 2-core CPU in seconds (3 + 6 + 10 frames of a 96x64 crop, compact model, x4 scale, three
repeats) and comparing two things any machine has: the reference engine (the original RealESRGANer
loop, the baseline) and the fast engine, both on the CPU."""


SCRATCH_DEFAULTS: dict[str, Any] = dict(model="x4plus", engine="fast", fps=30.0, keyframes=(),
                                        output_width=None, output_height=None)
"""Fields a plan without a preset gets unless given: the whole frame at the model's scale."""


def build_plan(preset: str | None = None, **overrides: Any) -> Plan:
    """A Plan from a preset (or from scratch: source, clips and gpus needed, SCRATCH_DEFAULTS for
    the rest) with `overrides` (fields of Plan; None values are ignored, so CLI options can be
    passed through). 'clips' and 'gpus' may be strings as accepted
    by parse_clips/parse_gpus, 'keyframes' a list of dicts.

    Raises InputError for an unknown preset or field, a bad value, or a preset's Modal GPUs used
    with the local backend (or the reverse) without new 'gpus'."""
    if preset is not None and preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    known = {f.name for f in fields(Plan)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"unknown plan option {', '.join(unknown)}")
    values: dict[str, Any] = dict(PRESETS[preset]) if preset else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    if preset and "backend" in given and given["backend"] != values["backend"] and "gpus" not in given:
        raise InputError(f"preset {preset} runs on {_join(values['gpus'])} ({values['backend']}); "
                         f"name the GPUs for the {given['backend']} backend too "
                         f"(e.g. {'cpu or cuda:0=T4' if given['backend'] == 'local' else 'T4,L4'})")
    values.update(given)
    values["preset"] = preset
    missing = [k for k in ("source", "clips", "gpus") if k not in values]
    if missing:
        raise InputError(f"without a preset the plan needs {', '.join(missing)}")
    for key, default in SCRATCH_DEFAULTS.items():
        values.setdefault(key, default)
    _resolve_variants(values, given)
    backend = values.setdefault("backend", "local")
    values["clips"] = _clips(values["clips"])
    values["gpus"] = _gpus(values["gpus"], backend)
    values["keyframes"] = tuple(k if isinstance(k, Keyframe) else Keyframe.from_dict(k)
                                for k in values["keyframes"])
    for key in ("repeats", "batch_size", "output_width", "output_height",
                "scaledown_window_seconds"):
        if values.get(key) is not None:
            values[key] = _whole(values[key], key)
    for key in ("fps", "queue_wait_limit_seconds"):
        if key in values:
            values[key] = _number(values[key], key)
    return Plan(**values)


def _names(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(i).strip() for i in items if str(i).strip()]


def _resolve_variants(values: dict[str, Any], given: Mapping[str, Any]) -> None:
    """Set values' model, engine and variants from what was given: 'variants' (Variant, dicts or
    'MODEL/ENGINE' texts), or model and engine as lists or comma lists (every model x engine);
    a preset's compared models or engines stay unless replaced. Raises InputError for an unknown
    model or engine."""
    preset_variants = tuple(values.get("variants") or ()) if "variants" not in given else ()
    if "variants" in given:
        model, engine = str(values["model"]), str(values["engine"])
        raw = given["variants"]
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        variants = [v if isinstance(v, Variant) else
                    Variant(str(v["model"]), str(v["engine"])) if isinstance(v, Mapping) else
                    Variant.parse(str(v), model, engine) for v in items if v]
    else:
        models = _names(given["model"]) if "model" in given else \
            list(dict.fromkeys(v.model for v in preset_variants)) or _names(values["model"])
        engines = _names(given["engine"]) if "engine" in given else \
            list(dict.fromkeys(v.engine for v in preset_variants)) or _names(values["engine"])
        variants = [Variant(m, e) for m in models for e in engines]
    if not variants:
        raise InputError("give at least one model/engine variant")
    values["model"], values["engine"] = variants[0].model, variants[0].engine
    values["variants"] = tuple(variants) if len(variants) > 1 else ()


def _clips(value: Any) -> tuple[ClipSpec, ...]:
    if isinstance(value, str):
        return parse_clips(value)
    out = []
    for c in value:
        if isinstance(c, ClipSpec):
            out.append(c)
        elif isinstance(c, Mapping):
            try:
                out.append(ClipSpec(str(c["name"]), float(c["start"]), float(c["end"])))
            except (KeyError, TypeError, ValueError, OverflowError):
                raise InputError(f"clip {dict(c)!r} needs name, start and end") from None
        else:
            out.extend(parse_clips(str(c)))
    return tuple(out)


def _gpus(value: Any, backend: str) -> tuple[GpuChoice, ...]:
    if isinstance(value, str):
        return parse_gpus(value, backend)
    items = list(value)
    if items and all(isinstance(g, GpuChoice) for g in items):
        return tuple(items)
    return parse_gpus([g.label if isinstance(g, GpuChoice) else str(g) for g in items], backend)


def _whole(value: Any, name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} {value!r} must be a whole number") from None
    if not number.is_integer():
        raise InputError(f"{name} {value!r} must be a whole number")
    return int(number)


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} {value!r} must be a number") from None
    return number


def _join(items: Any) -> str:
    return ", ".join(str(i) for i in items)
