"""The wire format between a client and a worker: Job in, JobResult out, progress events between.

Field names keep the original Modal worker's signature (job_id, user_id, input_key, output_key,
keyframes, output_width, output_height, fps, segment_data) so its callers can move over. Both
records serialise to plain JSON dicts carrying SCHEMA_VERSION.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

from core.errors import InputError
from core.stages import fps as frames_per_second
from core.stages import job_seconds
from core.status import SUCCEEDED

SCHEMA_VERSION = 1

ENGINES = ("fast", "reference")
COMPILE_MODES = ("off", "on", "auto")
"""torch.compile in the fast engine: never, always, or when the job is long enough to repay it."""
ENCODERS = ("libx264", "nvenc", "auto")
"""H.264 encoders: libx264 on the CPU, NVENC on cards that have it, or NVENC falling back to
libx264 where it does not open."""
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")
"""Presets libx264 accepts (NVENC gets the one of the same intent)."""
DEFAULT_ENCODE_PRESET = "veryfast"
"""libx264 preset of a job unless told otherwise (benchmarks/RESULTS.md: keeps up with the fast
engine on a Modal container's 4 cores; its quality is measured per run as encode PSNR)."""
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DECODERS = ("cpu", "nvdec", "auto")
"""Video decoders: FFmpeg's on the CPU, NVDEC on the card (PyNvVideoCodec: the frames, their crop
and RGB conversion stay in GPU memory), or NVDEC where it opens for the job and the CPU otherwise
(the reason recorded per run)."""


def output_frame_count(start: float, end: float, fps: float) -> int:
    """Frames a segment [start, end) has when written at `fps`: one every 1/fps seconds from start,
    (end - start) x fps rounded up (6 s at 30 fps = 180, whatever the source's own rate). Plans,
    progress and costs count frames this way, and the worker writes exactly this many."""
    return max(0, math.ceil((end - start) * fps - 1e-6))


def check_engine_settings(engine: str, compile: str, encoder: str, encode_preset: str, crf: int) -> None:
    """Check how a job (or every job of a plan) compiles and encodes. Raises InputError naming the
    first bad value: an unknown compile mode, encoder or preset, compile 'on' with an engine other
    than fast, or a crf that is not a whole number in 0..51."""
    if compile not in COMPILE_MODES:
        raise InputError(f"unknown compile mode {compile!r}; choose one of {', '.join(COMPILE_MODES)}")
    if compile == "on" and engine != "fast":
        raise InputError("torch.compile applies to the fast engine only, not the reference engine")
    if encoder not in ENCODERS:
        raise InputError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    if encode_preset not in X264_PRESETS:
        raise InputError(f"unknown encoder preset {encode_preset!r}; choose one of "
                         f"{', '.join(X264_PRESETS)}")
    if not (isinstance(crf, int) and not isinstance(crf, bool) and 0 <= crf <= 51):
        raise InputError(f"crf {crf!r} must be a whole number between 0 and 51")


MAX_OUTPUT_SIDE = 8192
"""Widest and tallest output in pixels, asked for or implied by the model's scale (H.264's largest
level, 6.2, tops out at 8192 wide; an 8K source at x4 would need a 25 GB frame batch)."""


def check_output_size(width: int, height: int, *, video: bool) -> None:
    """Raises InputError unless 1 <= width, height <= MAX_OUTPUT_SIDE and, for a video, both are
    even (H.264's 4:2:0 needs even sides; an odd size is refused, never rounded)."""
    if not (0 < width <= MAX_OUTPUT_SIDE and 0 < height <= MAX_OUTPUT_SIDE):
        raise InputError(f"output size {width}x{height} must be positive and at most "
                         f"{MAX_OUTPUT_SIDE} pixels each way")
    if video and (width % 2 or height % 2):
        raise InputError(f"output size {width}x{height} of a video must be even both ways "
                         f"(H.264 4:2:0); odd sizes are refused, not rounded")


def check_decoder(decoder: str) -> None:
    """Raises InputError for a decoder setting that is not one of DECODERS."""
    if decoder not in DECODERS:
        raise InputError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")


@dataclass(frozen=True)
class Keyframe:
    """A crop box that holds at one moment of the source; boxes between keyframes are interpolated."""

    time: float
    """Seconds from the start of the source video (not of the trimmed segment)."""
    x: int
    """Left edge in source pixels."""
    y: int
    """Top edge in source pixels."""
    width: int
    """Box width in source pixels."""
    height: int
    """Box height in source pixels."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Keyframe":
        try:
            return cls(
                time=float(data["time"]),
                x=int(round(float(data["x"]))),
                y=int(round(float(data["y"]))),
                width=int(round(float(data["width"]))),
                height=int(round(float(data["height"]))),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise InputError(f"keyframe {data!r} needs numeric time, x, y, width, height") from exc


@dataclass(frozen=True)
class Job:
    """One upscale request: which object, which part of it, which crop, what output, how."""

    job_id: str
    """Unique id of the job (the run id when launched by the orchestrator)."""
    user_id: str
    """Owner; objects live at '{user_id}/{key}' in storage."""
    input_key: str
    """Key of the source video or image, relative to the user's prefix."""
    output_key: str
    """Key the result is uploaded to, relative to the user's prefix."""
    keyframes: tuple[Keyframe, ...] = ()
    """Crop boxes over time; empty means the whole frame."""
    output_width: int | None = 810
    """Output width in pixels; None (with output_height None) keeps the model's own scale."""
    output_height: int | None = 1440
    """Output height in pixels; None (with output_width None) keeps the model's own scale."""
    fps: float = 30.0
    """Frame rate written into the output video."""
    trim_start: float | None = None
    """Start of the segment in seconds (inclusive); None means the start of the video."""
    trim_end: float | None = None
    """End of the segment in seconds (exclusive); None means the end of the video."""
    model: str = "x4plus"
    """Model name from workers.catalog.MODELS."""
    engine: str = "fast"
    """'fast' (batched, our own) or 'reference' (realesrgan.RealESRGANer, frame by frame)."""
    precision: str = "auto"
    """'auto' (fp16 on CUDA, fp32 on CPU), 'fp32', 'fp16' or 'bf16'."""
    batch_size: int = 4
    """Frames per model call in the fast engine."""
    device: str = "auto"
    """'auto' (first CUDA card, else CPU), 'cpu' or 'cuda:N'."""
    weights: str = "auto"
    """'auto' (resolve official/cache/offline), 'random' (timing-only) or a path to a .pth file."""
    compile: str = "off"
    """torch.compile in the fast engine: 'off', 'on' or 'auto' (COMPILE_MODES)."""
    fidelity_samples: int = 3
    """How many frames to score for fidelity (0 turns it off)."""
    encoder: str = "libx264"
    """H.264 encoder (ENCODERS)."""
    encode_preset: str = DEFAULT_ENCODE_PRESET
    """libx264 preset ('ultrafast' ... 'veryslow'); NVENC maps it to its own speed presets."""
    crf: int = 18
    """Constant rate factor of libx264 (the quality NVENC's constant-quality mode aims at too)."""
    decoder: str = "auto"
    """Video decoder (DECODERS)."""

    def __post_init__(self) -> None:
        if isinstance(self.compile, bool):  # wire format of schema 1: compile was a bool
            object.__setattr__(self, "compile", "on" if self.compile else "off")
        check_engine_settings(self.engine, self.compile, self.encoder, self.encode_preset, self.crf)
        if self.engine not in ENGINES:
            raise InputError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        check_decoder(self.decoder)
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if (self.output_width is None) != (self.output_height is None):
            raise InputError("give both output width and height, or neither")
        if self.output_width is not None and (self.output_width <= 0 or self.output_height <= 0):
            raise InputError(f"output size {self.output_width}x{self.output_height} must be positive")
        if self.fps <= 0:
            raise InputError(f"fps {self.fps} must be positive")
        if self.batch_size < 1:
            raise InputError(f"batch size {self.batch_size} must be at least 1")
        if self.trim_start is not None and self.trim_start < 0:
            raise InputError(f"trim start {self.trim_start} s is before the start of the video")
        if self.trim_start is not None and self.trim_end is not None and self.trim_end <= self.trim_start:
            raise InputError(f"trim end {self.trim_end} s must be after trim start {self.trim_start} s")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict in the original worker's shape (segment_data.trimRange)."""
        data = asdict(self)
        data["keyframes"] = [asdict(k) for k in self.keyframes]
        start, end = data.pop("trim_start"), data.pop("trim_end")
        data["segment_data"] = {"trimRange": {"start": start, "end": end}}
        data["schema_version"] = SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Job":
        """Inverse of to_dict; also accepts the original worker's payload (no schema_version)."""
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise InputError(f"job schema version {version} is newer than this worker's {SCHEMA_VERSION}")
        trim = (data.pop("segment_data", None) or {}).get("trimRange") or {}
        data.setdefault("trim_start", trim.get("start"))
        data.setdefault("trim_end", trim.get("end"))
        data["keyframes"] = tuple(Keyframe.from_dict(k) for k in data.get("keyframes") or ())
        known = {f.name for f in fields(cls)}
        missing = {"job_id", "user_id", "input_key", "output_key"} - data.keys()
        if missing:
            raise InputError(f"job is missing {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Fidelity:
    """Known-ground-truth score on sampled frames: the crop is area-downscaled by the model's scale,
    upscaled back by the model and by bicubic, and both are compared with the crop itself."""

    frames: int
    """How many frames were scored."""
    psnr: float
    """Mean PSNR (dB) of the model's reconstruction."""
    ssim: float
    """Mean SSIM of the model's reconstruction."""
    bicubic_psnr: float
    """Mean PSNR (dB) of bicubic on the same frames."""
    bicubic_ssim: float
    """Mean SSIM of bicubic on the same frames."""


@dataclass(frozen=True)
class JobResult:
    """What a worker reports for one job, successful or not."""

    job_id: str
    """Id of the job this answers."""
    status: str
    """'succeeded' or 'failed'."""
    error: str | None = None
    """One-line reason when failed."""
    stages: dict[str, float] = field(default_factory=dict)
    """Wall seconds per stage (core.stages.STAGES) plus 'total' (fetch to the end of the upload)."""
    frames_in: int = 0
    """Frames decoded from the trimmed segment."""
    frames_out: int = 0
    """Frames written to the output."""
    output_width: int = 0
    """Width of the output in pixels."""
    output_height: int = 0
    """Height of the output in pixels."""
    output_key: str | None = None
    """Key (relative to the user's prefix) the output was uploaded to."""
    output_bytes: int = 0
    """Size of the uploaded output file."""
    device_name: str = ""
    """The device the job actually ran on, e.g. 'NVIDIA H100 80GB HBM3' or the CPU model."""
    torch_version: str = ""
    """torch.__version__ in the worker."""
    cuda_version: str | None = None
    """torch.version.cuda, None for a CPU build."""
    model: str = ""
    """Model name."""
    engine: str = ""
    """Engine name."""
    precision: str = ""
    """Precision actually used (fp32/fp16/bf16)."""
    weights_provenance: str = ""
    """'official' (sha256 verified), 'ncnn-derived', 'user-file' or 'random (timing-only)'."""
    weights_sha256: str | None = None
    """sha256 of the weights file used, when there was one."""
    fidelity: Fidelity | None = None
    """Fidelity on sampled frames, when measured."""
    compile_choice: str = ""
    """'on', 'off', or 'auto: on|off (reason)' (what the engine decided and why)."""
    encoder: str = ""
    """Encoder that wrote the output ('libx264' or 'h264_nvenc')."""
    encode_preset: str = ""
    """Preset it ran with."""
    encode_psnr: float | None = None
    """PSNR (dB) of the encoded output against the frames fed to the encoder, on sampled frames."""
    decoder: str = ""
    """Decoder that read the source ('cpu' or 'nvdec'; '' for an image)."""
    decoder_choice: str = ""
    """The job's decoder setting as decided: 'cpu', 'nvdec', 'auto: nvdec' or 'auto: cpu (why)'."""
    cpu_cores: float | None = None
    """CPU cores the worker could use (its affinity)."""
    container_id: str = ""
    """Id of the container (Modal task id) or worker process ('host:pid') that ran the job."""
    worker_started_at: float | None = None
    """Unix time the worker process/container started (for cold-start accounting)."""
    started_at: float | None = None
    """Unix time the job started in the worker."""
    finished_at: float | None = None
    """Unix time the job finished in the worker."""
    schema_version: int = SCHEMA_VERSION
    """Version of this record's shape."""

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED

    @property
    def job_seconds(self) -> float | None:
        """The job's seconds (core.stages.job_seconds): fetch to the end of the upload, less the
        model load and compile a worker pays once."""
        return job_seconds(self.stages)

    @property
    def fps_end_to_end(self) -> float | None:
        """Frames out per job second (core.stages.fps)."""
        return frames_per_second(self.frames_out, self.job_seconds)

    @property
    def fps_upscale(self) -> float | None:
        up = self.stages.get("upscale")
        return self.frames_out / up if up and self.frames_out else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fps"] = self.fps_end_to_end
        data["upscale_fps"] = self.fps_upscale
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobResult":
        data = dict(data)
        fid = data.get("fidelity")
        data["fidelity"] = Fidelity(**fid) if isinstance(fid, dict) else None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class WarmShape:
    """The shapes a container's jobs will have, so it can compile for them before the first.

    Its text (a Modal class parameter, so part of which container pool a job goes to) holds only
    what compiles, crop and output size: jobs of every clip length share a pool, one cold boot and
    one tail."""

    crop: tuple[int, int]
    """Crop width, height (the model's input)."""
    output: tuple[int, int]
    """Output width, height."""
    frames: int | None = None
    """Frames of the job it was taken from (for compile: auto); None once read from text."""

    def to_text(self) -> str:
        """'540x960>810x1440' (what a Modal class parameter carries)."""
        return f"{self.crop[0]}x{self.crop[1]}>{self.output[0]}x{self.output[1]}"

    @classmethod
    def from_text(cls, text: str) -> "WarmShape | None":
        """Inverse of to_text, also reading the older '540x960>810x1440@180' (with frames); None
        for '' or anything malformed."""
        match = re.fullmatch(r"(\d+)x(\d+)>(\d+)x(\d+)(?:@(\d+))?", text or "")
        if not match:
            return None
        cw, ch, ow, oh = (int(g) for g in match.groups()[:4])
        frames = match.group(5)
        return cls((cw, ch), (ow, oh), int(frames) if frames else None)

    @classmethod
    def of(cls, job: Job) -> "WarmShape | None":
        """The shapes of a job whose crop and output size it states itself (None otherwise)."""
        if not job.keyframes or job.output_width is None or job.trim_start is None \
                or job.trim_end is None:
            return None
        first = job.keyframes[0]
        return cls((first.width, first.height), (job.output_width, job.output_height),
                   output_frame_count(job.trim_start, job.trim_end, job.fps))


@dataclass(frozen=True)
class Progress:
    """A progress event sent while a job runs."""

    job_id: str
    """Job the event is about."""
    stage: str
    """Stage now running (one of STAGES)."""
    frames_done: int
    """Frames fully upscaled so far."""
    frames_total: int
    """Frames the job will produce (0 while unknown)."""


ProgressCallback = Callable[[Progress], None]
