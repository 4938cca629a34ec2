"""run_job: the one upscale job used by every backend.

fetch input -> model load -> decode trimmed segment -> crop by keyframes -> upscale -> resize ->
encode H.264 -> upload, each stage timed. The fast engine overlaps decode and encode with the model
(a decoder thread and an encoder thread around the model loop); the reference engine runs frame by
frame in sequence, as the original worker did. Fidelity is scored after the upload on a few sampled
frames and timed as its own stage; `total` covers the job up to the end of the upload.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from core.errors import BackendError, MediaError, UserError, one_line
from core.job import (
    Fidelity,
    Job,
    JobResult,
    Progress,
    ProgressCallback,
    WarmShape,
    check_output_size,
    output_frame_count,
)
from core.resources import cpu_cores
from core.status import FAILED, SUCCEEDED
from store.keys import user_key
from store.objects import ObjectStore
from workers.compile_policy import CompileDecision
from workers.crop import CropBox, crop_box_at, validate_keyframes
from workers.overlap import BackgroundWriter, StageClock, batched, prefetch
from workers.video import (
    NVENC_PRESETS,
    DecodedFrame,
    VideoWriter,
    as_yuv420p,
    check_trim,
    decoded_planes,
    is_image_path,
    probe,
    read_image,
    resolve_encoder,
    write_image,
)

if TYPE_CHECKING:  # torch loads only where a job runs
    import torch

    from workers.engines import Engine
    from workers.models import LoadedModel
    from workers.nvdec import GpuFrame

log = logging.getLogger(__name__)

_PROCESS_STARTED_AT = time.time()

MISSING_FRAMES_TOLERATED = 1
"""Frames a segment may fall short of its expected count (rounding of container durations)
before the source counts as truncated."""


@dataclass(frozen=True)
class EngineKey:
    """What makes two jobs able to share a loaded engine."""

    model: str
    weights: str
    device: str
    engine: str
    precision: str
    batch_size: int

    @classmethod
    def of(cls, job: Job) -> "EngineKey":
        return cls(job.model, job.weights, job.device, job.engine, job.precision, job.batch_size)


@dataclass(frozen=True)
class WarmEngine:
    """A loaded model wrapped in an engine, kept between jobs."""

    engine: Engine
    """The engine running the model."""
    model: LoadedModel
    """The loaded model (its weights' provenance goes into the result)."""
    device_name: str
    """Name of the device it runs on."""


class ModelCache:
    """Keeps engines loaded between jobs in one process/container (load once, serve many)."""

    def __init__(self) -> None:
        self._engines: dict[EngineKey, WarmEngine] = {}
        self._lock = threading.Lock()

    def get(self, key: EngineKey) -> tuple[WarmEngine, float]:
        """The warm engine for key and the seconds spent loading it now (0.0 when already warm).
        Raises InputError/WeightsError for unknown models, devices or unusable weights."""
        with self._lock:
            warm = self._engines.get(key)
            if warm is not None:
                return warm, 0.0
            began = time.perf_counter()
            warm = _load_engine(key)
            self._engines[key] = warm
            return warm, time.perf_counter() - began

    def precompile(self, key: EngineKey, mode: str, shape: "WarmShape") -> float:
        """Ahead of the first job (a container's start): compile the loaded engine for the jobs'
        shapes per mode. Returns seconds spent in the compile stage (0.0 when nothing was done:
        'auto' without the jobs' frames leaves the decision to each job)."""
        if mode == "auto" and shape.frames is None:
            return 0.0
        warm, _ = self.get(key)
        clock = StageClock()
        prepare_engine(mode, key.model, key.batch_size, warm, shape.crop, shape.output,
                       shape.frames or 0, clock)
        return clock.seconds.get("compile", 0.0)


def _load_engine(key: EngineKey) -> WarmEngine:
    from workers.engines import create_engine
    from workers.models import device_name, load_model, resolve_device

    device = resolve_device(key.device)
    loaded = load_model(key.model, weights=key.weights, device=str(device))
    engine = create_engine(key.engine, loaded, precision=key.precision, batch_size=key.batch_size)
    return WarmEngine(engine=engine, model=loaded, device_name=device_name(device))


def _fit_crop(image: "np.ndarray | DecodedFrame | GpuFrame", box: CropBox,
              size: tuple[int, int]) -> "np.ndarray | torch.Tensor":
    """Cut box out of an image or a decoded frame (converting only the box; a frame NVDEC
    decoded gives a tensor on its card); boxes that change size over keyframes are area-resized
    to size (w, h), on the CPU, so every frame of a job reaches the model at one size."""
    if isinstance(image, np.ndarray):
        crop = image[box.y:box.y + box.height, box.x:box.x + box.width]
    else:
        crop = image.crop(box.x, box.y, box.width, box.height)
    if (box.width, box.height) != size:
        import cv2
        resized = cv2.resize(_on_host(crop), size, interpolation=cv2.INTER_AREA)
        return resized if isinstance(crop, np.ndarray) else _like(resized, crop)
    return np.ascontiguousarray(crop) if isinstance(crop, np.ndarray) else crop


def _on_host(crop: "np.ndarray | torch.Tensor") -> np.ndarray:
    """A crop as a host array (fidelity samples, CPU resizing)."""
    return crop if isinstance(crop, np.ndarray) else crop.cpu().numpy()


def _like(array: np.ndarray, tensor: "torch.Tensor") -> "torch.Tensor":
    import torch

    return torch.from_numpy(np.ascontiguousarray(array)).to(tensor.device)


def _stack(crops: list) -> "np.ndarray | torch.Tensor":
    """One batch of crops: an array, or a tensor on the card for frames NVDEC decoded."""
    if isinstance(crops[0], np.ndarray):
        return np.stack(crops)
    import torch

    return torch.stack(crops)


def _sample_indices(total: int, count: int) -> set[int]:
    if total <= 0 or count <= 0:
        return set()
    return {int(round(i)) for i in np.linspace(0, total - 1, min(count, total))}


@dataclass
class _Outcome:
    frames_in: int = 0
    frames_out: int = 0
    width: int = 0
    height: int = 0
    samples: list[np.ndarray] = field(default_factory=list)
    """Crops kept for fidelity scoring after the upload."""
    compile_choice: str = ""
    """CompileDecision.reason of the job ('' when nothing was decided, as for an image)."""
    encoder: str = ""
    """Encoder that wrote the output."""
    encoded: dict[int, np.ndarray] = field(default_factory=dict)
    """Frame position -> the yuv420p planes fed to the encoder, for encode PSNR."""
    decoder: str = ""
    """Decoder that read the source ('' for an image)."""
    decoder_choice: str = ""
    """DecoderChoice.reason of the job."""


def _compile_stats_key(model: str, batch_size: int, warm: WarmEngine, crop_size: tuple[int, int],
                       out_size: tuple[int, int]) -> str:
    """The compile_policy stats entry of a model at these shapes on this card and torch."""
    import torch

    from workers import compile_policy

    width, height = crop_size
    return compile_policy.stats_key(model, warm.engine.precision, (height, width, *out_size),
                                    batch_size, warm.device_name, torch.__version__)


def prepare_engine(mode: str, model: str, batch_size: int, warm: WarmEngine,
                   crop_size: tuple[int, int], out_size: tuple[int, int], frames: int,
                   clock: StageClock) -> CompileDecision:
    """Decide whether a job compiles (mode: on/off/auto) and compile for its shapes (crop and
    output, width x height) when it does, timed as the 'compile' stage; a process compiles each
    shape once, so a later job of the same shapes finds it done. Raises InputError for compile
    with an engine that cannot."""
    from workers import compile_policy

    engine = warm.engine
    width, height = crop_size
    if mode == "off" or engine.name != "fast":
        return compile_policy.CompileDecision(False, "off")
    with clock.time("compile"):
        key = _compile_stats_key(model, batch_size, warm, crop_size, out_size)
        cuda = engine.device.type == "cuda"
        measure = mode == "auto" and cuda
        eager = engine.seconds_per_frame(height, width, out_size) if measure else 0.0
        stats = compile_policy.load_stats(key)
        decision = compile_policy.decide(mode, cuda=cuda,
                                         frames=frames, eager_seconds_per_frame=eager, stats=stats)
        if decision.compile:
            compile_policy.use_persistent_cache()
            seconds = engine.prepare(height, width, out_size, compile=True)
            if seconds > 0:
                compile_policy.save_stats(key, compile_policy.CompileStats(
                    seconds, stats.speedup if stats else None))
    return decision


def run_job(job: Job, storage: ObjectStore, on_progress: ProgressCallback | None = None,
            cache: ModelCache | None = None,
            still_wanted: Callable[[], bool] | None = None) -> JobResult:
    """Run one job end to end. Never raises for the job's own failure: a failed JobResult carries
    the one-line reason, and nothing is uploaded. still_wanted, asked just before the upload,
    False when whoever asked for the job is gone (its run is or will be marked interrupted)."""
    cache = cache or ModelCache()
    clock = StageClock()
    started_at = time.time()
    began = time.perf_counter()
    notify = _progress_notifier(job, on_progress)
    warm: WarmEngine | None = None
    outcome = _Outcome()
    fidelity: Fidelity | None = None
    encode_psnr: float | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="upscale-") as workdir:
            notify("fetch", 0, 0)
            with clock.time("fetch"):
                source = storage.get(user_key(job.user_id, job.input_key))
            notify("model_load", 0, 0)
            warm, load_seconds = cache.get(EngineKey.of(job))
            clock.add("model_load", load_seconds)
            suffix = Path(job.output_key).suffix or (".png" if is_image_path(source) else ".mp4")
            output = Path(workdir) / f"output{suffix}"
            if is_image_path(source):
                outcome = _upscale_image(job, source, output, warm, clock)
            else:
                outcome = _upscale_video(job, source, output, warm, clock, notify)
            notify("upload", outcome.frames_out, outcome.frames_out)
            if still_wanted is not None and not still_wanted():
                raise BackendError("interrupted before the upload: nothing was uploaded")
            with clock.time("upload"):
                storage.put(output, user_key(job.user_id, job.output_key))
            output_bytes = output.stat().st_size
            total = time.perf_counter() - began
            fidelity = _score_fidelity(job, warm, clock, outcome.samples)
            if outcome.encoded:
                with clock.time("fidelity"):
                    encode_psnr = _encode_psnr(output, outcome.encoded)
        status, error = SUCCEEDED, None
    except UserError as exc:
        status, error, total, output_bytes = FAILED, one_line(exc), time.perf_counter() - began, 0
    except Exception as exc:  # a bug or a device failure: fail this run with its reason
        log.exception("job %s failed", job.job_id)
        status, error, total, output_bytes = FAILED, one_line(exc), time.perf_counter() - began, 0
    stages = dict(clock.seconds)
    stages["total"] = total
    return _result(job, warm, status, error, stages, outcome, fidelity, encode_psnr, output_bytes,
                   started_at)


def _progress_notifier(job: Job, on_progress: ProgressCallback | None) -> Callable[[str, int, int], None]:
    def notify(stage: str, done: int, total: int) -> None:
        if on_progress is None:
            return
        try:
            on_progress(Progress(job.job_id, stage, done, total))
        except Exception:  # progress is advisory; it never fails a job
            log.warning("progress callback failed for job %s", job.job_id, exc_info=True)
    return notify


def _output_size(job: Job, crop_size: tuple[int, int], scale: int, *, video: bool) -> tuple[int, int]:
    """The output size asked for, else the model's scale of the crop; either is bounded
    (core.job.check_output_size) before any frame is allocated. Raises InputError."""
    if job.output_width is None:
        size = crop_size[0] * scale, crop_size[1] * scale
    else:
        size = job.output_width, job.output_height
    check_output_size(*size, video=video)
    return size


def _upscale_image(job: Job, source: Path, output: Path, warm: WarmEngine,
                   clock: StageClock) -> _Outcome:
    with clock.time("decode"):
        image = read_image(source)
    height, width = image.shape[:2]
    validate_keyframes(job.keyframes, width, height)
    box = crop_box_at(job.keyframes, 0.0, width, height)
    crop = _fit_crop(image, box, (box.width, box.height))
    size = _output_size(job, (box.width, box.height), warm.engine.scale, video=False)
    with clock.time("upscale"):
        upscaled = warm.engine.upscale(crop[None], size)[0]
    with clock.time("encode"):
        write_image(output, upscaled)
    return _Outcome(frames_in=1, frames_out=1, width=size[0], height=size[1], samples=[crop])


def _upscale_video(job: Job, source: Path, output: Path, warm: WarmEngine, clock: StageClock,
                   notify: Callable[[str, int, int], None]) -> _Outcome:
    info = probe(source)
    start, end = check_trim(info, job.trim_start, job.trim_end)
    validate_keyframes(job.keyframes, info.width, info.height)
    expected = output_frame_count(start, end, job.fps)
    first_box = crop_box_at(job.keyframes, start, info.width, info.height)
    crop_size = (first_box.width, first_box.height)
    size = _output_size(job, crop_size, warm.engine.scale, video=True)
    engine = warm.engine
    overlap = engine.name != "reference"
    batch_size = job.batch_size if overlap else 1
    samples = _sample_indices(expected, job.fidelity_samples)
    sampled: list[np.ndarray] = []
    if job.compile != "off" and engine.name == "fast":
        notify("compile", 0, expected)
    decision = prepare_engine(job.compile, job.model, job.batch_size, warm, crop_size, size,
                              expected, clock)
    encoder = resolve_encoder(job.encoder, size[0], size[1])
    yuv = engine.yuv_output and not (size[0] % 2 or size[1] % 2)
    encoded: dict[int, np.ndarray] = {}
    from workers.nvdec import choose_decoder

    decoder = choose_decoder(job.decoder, source, info, engine.device, engine.name)

    def crops() -> Iterator[np.ndarray]:
        for frame in decoder.frames(source, start, end, job.fps):
            box = crop_box_at(job.keyframes, frame.time, info.width, info.height)
            crop = _fit_crop(frame, box, crop_size)
            if frame.index in samples:
                sampled.append(_on_host(crop))
            yield crop

    batches = (_stack(b) for b in batched(clock.timed_iter("decode", crops()), batch_size))
    if overlap:
        batches = prefetch(batches, depth=3)
    frames_done = 0
    notify("decode", 0, expected)
    with VideoWriter(output, size[0], size[1], job.fps, crf=job.crf, preset=job.encode_preset,
                     encoder=encoder) as writer:
        sink = BackgroundWriter(writer, clock) if overlap else None
        try:
            for batch in batches:
                with clock.time("upscale"):
                    upscaled = (engine.upscale(batch, size, pixel_format="yuv420p") if yuv
                                else engine.upscale(batch, size))
                for offset, frame in enumerate(upscaled):
                    if frames_done + offset in samples:
                        encoded[frames_done + offset] = as_yuv420p(frame)
                if sink is not None:
                    sink.write_batch(upscaled)
                else:
                    with clock.time("encode"):
                        for frame in upscaled:
                            writer.write(frame)
                frames_done += len(upscaled)
                notify("upscale", frames_done, max(expected, frames_done))
        finally:
            if sink is not None:
                sink.finish()
        notify("encode", frames_done, frames_done)
    if frames_done == 0:
        raise MediaError(f"no frames decoded in [{start:.3f}, {end:.3f}) s of the source")
    if frames_done < expected - MISSING_FRAMES_TOLERATED:
        raise MediaError(f"the source ended after {frames_done} of {expected} frames in "
                         f"[{start:.3f}, {end:.3f}) s: it is truncated or corrupt")
    if decision.compile and decision.reason.startswith("auto"):
        _record_speedup(job, warm, crop_size, size, clock.seconds.get("upscale"), frames_done)
    return _Outcome(frames_in=frames_done, frames_out=frames_done, width=size[0], height=size[1],
                    samples=sampled, compile_choice=decision.reason, encoder=encoder, encoded=encoded,
                    decoder=decoder.decoder, decoder_choice=decoder.reason)


def _record_speedup(job: Job, warm: WarmEngine, crop_size: tuple[int, int],
                    out_size: tuple[int, int], upscale_seconds: float | None, frames: int) -> None:
    """After a compiled 'auto' job: remember compiled vs eager speed for the next decision."""
    from workers import compile_policy

    if not upscale_seconds or not frames:
        return
    width, height = crop_size
    key = _compile_stats_key(job.model, job.batch_size, warm, crop_size, out_size)
    stats = compile_policy.load_stats(key)
    eager = warm.engine.seconds_per_frame(height, width, out_size)
    compiled = upscale_seconds / frames
    if stats and compiled > 0:
        compile_policy.save_stats(key, compile_policy.CompileStats(stats.compile_seconds, eager / compiled))


def _encode_psnr(output: Path, encoded: dict[int, np.ndarray]) -> float | None:
    """Mean PSNR (dB) of the written video against the planes fed to the encoder, on the sampled
    frames; None when nothing was sampled. Raises MediaError for an unreadable output."""
    from workers.fidelity import psnr

    if not encoded:
        return None
    decoded = decoded_planes(output, set(encoded))
    scores = [psnr(encoded[i], decoded[i]) for i in sorted(encoded) if i in decoded]
    finite = [s for s in scores if np.isfinite(s)]
    if not scores:
        return None
    return float(np.mean(finite)) if finite else float("inf")


def _score_fidelity(job: Job, warm: WarmEngine, clock: StageClock,
                    samples: list[np.ndarray]) -> Fidelity | None:
    from workers.fidelity import can_score, measure_fidelity

    scale = warm.engine.scale
    samples = [c for c in samples if can_score(c.shape[1], c.shape[0], scale)]
    if job.fidelity_samples <= 0 or not samples:  # off, or crops too small to score
        return None
    with clock.time("fidelity"):
        return measure_fidelity(warm.engine, samples, scale)


def container_id() -> str:
    """Who ran the job: the Modal task id inside a Modal container, else 'host:pid'."""
    return os.environ.get("MODAL_TASK_ID") or f"{socket.gethostname()}:{os.getpid()}"


def _result(job: Job, warm: WarmEngine | None, status: str, error: str | None,
            stages: dict[str, float], outcome: _Outcome, fidelity: Fidelity | None,
            encode_psnr: float | None, output_bytes: int, started_at: float) -> JobResult:
    import torch

    weights = warm.model.weights if warm else None
    return JobResult(
        job_id=job.job_id,
        status=status,
        error=error,
        stages=stages,
        frames_in=outcome.frames_in,
        frames_out=outcome.frames_out if status == SUCCEEDED else 0,
        output_width=outcome.width,
        output_height=outcome.height,
        output_key=job.output_key if status == SUCCEEDED else None,
        output_bytes=output_bytes,
        device_name=warm.device_name if warm else "",
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda,
        model=job.model,
        engine=job.engine,
        precision=warm.engine.precision if warm else "",
        weights_provenance=weights.provenance if weights else "",
        weights_sha256=weights.sha256 if weights else None,
        fidelity=fidelity if status == SUCCEEDED else None,
        compile_choice=outcome.compile_choice,
        encoder=outcome.encoder,
        encode_preset=job.encode_preset if outcome.encoder == "libx264" else (
            NVENC_PRESETS.get(job.encode_preset, "") if outcome.encoder else ""),
        encode_psnr=encode_psnr if status == SUCCEEDED else None,
        decoder=outcome.decoder,
        decoder_choice=outcome.decoder_choice,
        cpu_cores=cpu_cores(),
        container_id=container_id(),
        worker_started_at=_PROCESS_STARTED_AT,
        started_at=started_at,
        finished_at=time.time(),
    )
