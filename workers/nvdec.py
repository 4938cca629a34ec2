"""NVDEC decode through PyNvVideoCodec, and the choice between it and the CPU decoder.

Frames from NVDEC stay in GPU memory as NV12; each frame's crop is converted to RGB there (BT.601
limited range, chroma taken from the nearest sample, as libswscale converts yuv420p by default), so
the CPU neither decodes nor converts. The segment is decode_segment's: the same source frames for
[start, end), picked by the demuxer's presentation times, resampled by the same rule.

PyNvVideoCodec is imported only when a job may use NVDEC; where it is missing or does not load (no
CUDA driver, no NVDEC), `auto` falls back to the CPU decoder and records why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from core.errors import InputError, MediaError
from workers.video import (
    DecodedFrame,
    StreamIndex,
    VideoInfo,
    decode_segment,
    in_window,
    resample,
    segment_window,
    stream_index,
)

NVDEC_PIXEL_FORMATS = ("yuv420p",)
"""Source pixel formats this path converts: 8-bit 4:2:0 in limited range (NVDEC's NV12)."""
BATCH_FRAMES = 16
"""Frames asked of NVDEC per call (it decodes them in one go)."""


class NvdecUnavailable(Exception):
    """NVDEC cannot decode this job's source here; the message says why, in a few words."""


@dataclass(frozen=True)
class GpuFrame:
    """One decoded frame of a segment, in GPU memory."""

    index: int
    """0-based position of the frame within the decoded segment."""
    time: float
    """Presentation time in seconds from the start of the video (for a resampled segment, the
    output frame's time)."""
    nv12: torch.Tensor
    """[H * 3 / 2, W] uint8 on the device: H rows of luma, then H / 2 rows of interleaved U, V."""
    stream: "torch.cuda.Stream | None" = None
    """The decoder's own CUDA stream (None off CUDA), so decoding never waits for the model."""

    def crop(self, x: int, y: int, width: int, height: int) -> torch.Tensor:
        """The box as [height, width, 3] uint8 RGB on the device, ready for any stream."""
        if self.stream is None:
            return nv12_to_rgb(self.nv12, x, y, width, height)
        with torch.cuda.stream(self.stream):
            rgb = nv12_to_rgb(self.nv12, x, y, width, height)
        consumer = torch.cuda.default_stream(rgb.device)
        consumer.wait_stream(self.stream)  # the model's later work waits on the card, nobody here
        rgb.record_stream(consumer)
        return rgb


def nv12_to_rgb(nv12: torch.Tensor, x: int, y: int, width: int, height: int) -> torch.Tensor:
    """RGB of the box [y:y+height, x:x+width] of an NV12 frame: BT.601 limited range, each pixel
    taking the chroma sample of its 2x2 block, rounded down (libswscale's default for yuv420p ->
    rgb24, whose fixed-point arithmetic it matches to within 2 levels, under 1 on average)."""
    rows = nv12.shape[0] * 2 // 3
    luma = nv12[y:y + height, x:x + width].float().sub_(16.0).mul_(255.0 / 219.0)
    chroma = nv12[rows:].view(rows // 2, -1, 2)
    down = torch.arange(y, y + height, device=nv12.device) // 2
    across = torch.arange(x, x + width, device=nv12.device) // 2
    uv = chroma.index_select(0, down).index_select(1, across).float().sub_(128.0)
    u, v = uv.unbind(-1)
    rgb = torch.stack((luma + 1.596027 * v,
                       luma - 0.391762 * u - 0.812968 * v,
                       luma + 2.017232 * u), dim=-1)
    return rgb.floor_().clamp_(0, 255).to(torch.uint8)


class NvdecSource:
    """A source video opened in NVDEC, with the demuxer's frame times."""

    def __init__(self, decoder: Any, index: StreamIndex, info: VideoInfo,
                 stream: "torch.cuda.Stream | None" = None) -> None:
        self._decoder, self._index, self._info, self._stream = decoder, index, info, stream

    def frames(self, start: float, end: float, fps: float | None) -> Iterator[GpuFrame]:
        """decode_segment's frames of [start, end) (resampled to fps when given), on the GPU.
        Raises MediaError when NVDEC returns fewer frames than asked for."""
        window = segment_window(start, end, fps, self._info.fps)
        positions = [i for i, t in enumerate(self._index.times) if in_window(t, window)]
        frames = self._decode(positions)
        return frames if fps is None else resample(frames, start, end, fps, self._info.fps)

    def _decode(self, positions: Sequence[int]) -> Iterator[GpuFrame]:
        for offset in range(0, len(positions), BATCH_FRAMES):
            chunk = list(positions[offset:offset + BATCH_FRAMES])
            decoded = self._decoder.get_batch_frames_by_index(chunk)
            if len(decoded) != len(chunk):
                raise MediaError(f"NVDEC returned {len(decoded)} of {len(chunk)} frames from "
                                 f"frame {chunk[0]} on")
            with _on(self._stream):  # the decoder reuses its surfaces: keep a copy of each frame
                copies = [torch.from_dlpack(frame).clone() for frame in decoded]
            for n, (position, nv12) in enumerate(zip(chunk, copies)):
                yield GpuFrame(offset + n, self._index.times[position], nv12, self._stream)


def _on(stream: "torch.cuda.Stream | None") -> Any:
    """Work queued on this CUDA stream (nothing changes for None)."""
    return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()


@dataclass(frozen=True)
class DecoderChoice:
    """Which decoder reads a job's source, and why."""

    decoder: str
    """'cpu' or 'nvdec'."""
    reason: str
    """What JobResult.decoder_choice records: 'cpu', 'nvdec', 'auto: nvdec' or 'auto: cpu (why)'."""
    source: NvdecSource | None = None
    """The opened source when NVDEC reads it."""

    def frames(self, path: Path, start: float, end: float,
               fps: float | None) -> Iterator[DecodedFrame] | Iterator[GpuFrame]:
        """The segment's frames from the chosen decoder (see decode_segment)."""
        if self.source is None:
            return decode_segment(path, start, end, fps=fps)
        return self.source.frames(start, end, fps)


def choose_decoder(setting: str, path: Path, info: VideoInfo, device: torch.device,
                   engine: str) -> DecoderChoice:
    """The decoder for a job: setting 'cpu' -> the CPU; 'nvdec' -> NVDEC, InputError (one line)
    where it cannot decode this source here; 'auto' -> NVDEC where it can, else the CPU with the
    reason recorded."""
    if setting == "cpu":
        return DecoderChoice("cpu", "cpu")
    try:
        source = open_nvdec(path, info, device, engine)
    except NvdecUnavailable as exc:
        if setting == "nvdec":
            raise InputError(f"NVDEC cannot decode {path.name} here: {exc}; use decoder cpu or "
                             f"auto") from None
        return DecoderChoice("cpu", f"auto: cpu ({exc})")
    return DecoderChoice("nvdec", "nvdec" if setting == "nvdec" else "auto: nvdec", source)


def nvdec_refusal(device: torch.device | str, engine: str) -> str | None:
    """Why NVDEC cannot feed this device and engine whatever the source (None when it can:
    a CUDA device, the fast engine, PyNvVideoCodec loading)."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"the job runs on {device.type}, not a CUDA card"
    if engine != "fast":
        return f"the {engine} engine takes its frames from the CPU"
    return _import_failure()


def nvdec_preflight(device: str) -> str | None:
    """Why a local device cannot decode with NVDEC, checked without loading anything (None when
    it may: a CUDA device and PyNvVideoCodec installed); the job itself finds out the rest."""
    if not device.strip().lower().startswith("cuda"):
        return f"NVDEC needs a CUDA card, not {device}"
    if importlib.util.find_spec("PyNvVideoCodec") is None:
        return "NVDEC needs PyNvVideoCodec, which is not installed"
    return None


def open_nvdec(path: Path, info: VideoInfo, device: torch.device, engine: str) -> NvdecSource:
    """Open a source in NVDEC. Raises NvdecUnavailable naming what stands in the way: the device
    or engine (nvdec_refusal), a rotated source, a pixel format other than 8-bit 4:2:0, NVDEC
    failing to open it, or NVDEC counting other frames than the demuxer; MediaError for a file
    that cannot be read."""
    reason = nvdec_refusal(device, engine)
    if reason:
        raise NvdecUnavailable(reason)
    if info.rotation:
        raise NvdecUnavailable(f"the source is displayed rotated {info.rotation} degrees")
    index = stream_index(path)
    if index.pixel_format not in NVDEC_PIXEL_FORMATS:
        raise NvdecUnavailable(f"its pixel format {index.pixel_format or 'unknown'} is not "
                               f"{' or '.join(NVDEC_PIXEL_FORMATS)}")
    nvc = _module()
    try:
        stream = torch.cuda.Stream(device)
        decoder = nvc.SimpleDecoder(str(path), gpu_id=torch.device(device).index or 0,
                                    cuda_stream=stream.cuda_stream, use_device_memory=True,
                                    output_color_type=nvc.OutputColorType.NATIVE)
        frames = len(decoder)
    except Exception as exc:  # noqa: BLE001 - whatever PyNvVideoCodec raises means "not here"
        raise NvdecUnavailable(f"NVDEC does not open it ({_first_line(exc)})") from exc
    if frames != len(index.times):
        raise NvdecUnavailable(f"NVDEC counts {frames} frames where the demuxer counts "
                               f"{len(index.times)}")
    return NvdecSource(decoder, index, info, stream)


_LOADED: dict[str, Any] = {}


def _import_failure() -> str | None:
    """Why PyNvVideoCodec does not load in this process (None when it does); tried once."""
    if "module" not in _LOADED and "failure" not in _LOADED:
        # it logs its own troubleshooting text when it fails to load: the reason is kept instead
        logging.getLogger("PyNvVideoCodec").addFilter(lambda record: False)
        try:
            import PyNvVideoCodec
        except ImportError:
            _LOADED["failure"] = "PyNvVideoCodec is not installed"
        except Exception as exc:  # noqa: BLE001 - it raises RuntimeError without a CUDA driver
            _LOADED["failure"] = f"PyNvVideoCodec does not load ({_first_line(exc)})"
        else:
            _LOADED["module"] = PyNvVideoCodec
    return _LOADED.get("failure")


def _module() -> Any:
    failure = _import_failure()
    if failure:
        raise NvdecUnavailable(failure)
    return _LOADED["module"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(text[0].split())[:200] if text else type(exc).__name__
