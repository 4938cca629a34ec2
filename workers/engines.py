"""Upscale engines: `reference` (realesrgan.RealESRGANer, frame by frame, as its users run it) and
`fast` (ours: batched on the device, fp16/bf16, channels_last, resize and uint8 on the device).

Both take [N, H, W, 3] uint8 RGB and return [N, OH, OW, 3] uint8 RGB, and both follow
RealESRGANer's arithmetic (uint8 -> float32 / 255 -> model -> float -> clamp 0..1 -> x255 -> round),
so in fp32 at the model's own scale their outputs are bit-identical.
"""

from __future__ import annotations

import copy
import os
import tempfile
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from bench.errors import InputError
from workers.models import LoadedModel

ENGINE_KINDS = ("fast", "reference")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Engine(Protocol):
    """What the pipeline needs from an engine."""

    name: str
    """'fast' or 'reference'."""
    scale: int
    """The model's own upscale factor."""
    device: torch.device
    """Where the model runs."""
    precision: str
    """Precision actually used: 'fp32', 'fp16' or 'bf16'."""

    def upscale(self, frames: np.ndarray, out_size: tuple[int, int] | None = None) -> np.ndarray:
        """[N, H, W, 3] uint8 RGB -> [N, OH, OW, 3] uint8 RGB; out_size=(width, height), None =
        the model's scale. Raises InputError on a badly shaped array or size."""
        ...

    def warmup(self, height: int, width: int) -> None:
        """Run the model once at this input size (allocations, cuDNN choice, compilation)."""
        ...


def _mod_pad(scale: int) -> int | None:
    """RealESRGANer pads the input (reflect, bottom/right) to a multiple of this for x2 and x1."""
    return {2: 2, 1: 4}.get(scale)


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 \
            or frames.shape[-1] != 3 or 0 in frames.shape:
        shape = getattr(frames, "shape", None)
        dtype = getattr(frames, "dtype", type(frames).__name__)
        raise InputError(f"frames must be a non-empty [N, H, W, 3] uint8 array, got {shape} {dtype}")


def _target_size(frames: np.ndarray, scale: int, out_size: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) of the output."""
    height, width = frames.shape[1:3]
    if out_size is None:
        return width * scale, height * scale
    ow, oh = (int(v) for v in out_size)
    if ow <= 0 or oh <= 0:
        raise InputError(f"output size {ow}x{oh} must be positive")
    return ow, oh


def resolve_precision(kind: str, precision: str, device: torch.device) -> str:
    """The precision an engine will use: 'auto' is fp16 on CUDA and fp32 on the CPU.

    Raises InputError for an unknown precision, fp16/bf16 on the CPU, bf16 on a card without it,
    or bf16 with the reference engine (RealESRGANer only knows half=True/False).
    """
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision != "fp32" and device.type != "cuda":
        raise InputError(f"precision {precision} needs a CUDA device; use fp32 on {device.type}")
    if precision == "bf16":
        if kind == "reference":
            raise InputError("the reference engine (RealESRGANer) runs fp32 or fp16 only, not bf16")
        if not torch.cuda.is_bf16_supported():
            raise InputError(f"{torch.cuda.get_device_name(device)} does not support bf16; use fp16")
    return precision


class ReferenceEngine:
    """realesrgan.RealESRGANer(tile=0, pre_pad=0) frame by frame, resized to the output size the
    way RealESRGANer does for `outscale` (cv2.INTER_LANCZOS4 on the uint8 result).

    RealESRGANer (0.3.0) always torch.loads `model_path` and calls
    `model.load_state_dict(loaded['params_ema' or 'params'], strict=True)`. We hand it a private
    copy of our loaded network as `model=` (it moves it and calls .half() in place) and, as
    model_path, a temporary file holding {'params': that network's own state dict}: the strict load
    then copies identical tensors, so the reference runs exactly the weights the fast engine runs,
    whatever their source (official, ncnn-derived, random). The file is deleted at once.
    """

    name = "reference"

    def __init__(self, model: LoadedModel, precision: str = "auto") -> None:
        """Raises InputError for a precision the reference engine cannot run; BackendError when
        realesrgan cannot be imported."""
        from workers.compat import import_realesrganer

        realesrganer = import_realesrganer()
        self.scale = model.spec.scale
        self.device = model.device
        self.precision = resolve_precision(self.name, precision, self.device)
        module = copy.deepcopy(model.module)
        with tempfile.TemporaryDirectory(prefix="bench-ref-") as tmp:
            own_weights = os.path.join(tmp, "params.pth")
            torch.save({"params": module.state_dict()}, own_weights)
            self._upsampler = realesrganer(
                scale=self.scale, model_path=own_weights, model=module, tile=0, pre_pad=0,
                half=self.precision == "fp16", device=self.device)

    def upscale(self, frames: np.ndarray, out_size: tuple[int, int] | None = None) -> np.ndarray:
        """See Engine.upscale. Raises InputError on bad frames or size."""
        import cv2

        _check_frames(frames)
        ow, oh = _target_size(frames, self.scale, out_size)
        out = np.empty((frames.shape[0], oh, ow, 3), dtype=np.uint8)
        for i, frame in enumerate(frames):
            bgr = np.ascontiguousarray(frame[:, :, ::-1])
            result, _mode = self._upsampler.enhance(bgr, outscale=self.scale)
            if result.shape[:2] != (oh, ow):
                result = cv2.resize(result, (ow, oh), interpolation=cv2.INTER_LANCZOS4)
            out[i] = result[:, :, ::-1]
        return out

    def warmup(self, height: int, width: int) -> None:
        """One frame of zeros through RealESRGANer."""
        self.upscale(np.zeros((1, height, width, 3), dtype=np.uint8))


class FastEngine:
    """Batched upscale on the device: pinned upload, channels_last, fp16/bf16 on CUDA, clamp,
    resize (bicubic, antialiased when shrinking) and uint8 rounding on the device."""

    name = "fast"

    def __init__(self, model: LoadedModel, precision: str = "auto", batch_size: int = 4,
                 compile: bool = False) -> None:
        """Raises InputError for a bad precision or batch size."""
        if batch_size < 1:
            raise InputError(f"batch size {batch_size} must be at least 1")
        self.scale = model.spec.scale
        self.device = model.device
        self.precision = resolve_precision(self.name, precision, self.device)
        self.batch_size = batch_size
        self.compiled = compile
        self._dtype = _DTYPES[self.precision]
        self._cuda = self.device.type == "cuda"
        if self._cuda:
            # Frame sizes are fixed within a job: let cuDNN time its algorithms once per shape.
            torch.backends.cudnn.benchmark = True
        module = copy.deepcopy(model.module).to(self.device, self._dtype).eval()
        self._memory_format = torch.channels_last if self._cuda else torch.contiguous_format
        module = module.to(memory_format=self._memory_format)
        self._module = torch.compile(module) if compile else module
        self._pinned: torch.Tensor | None = None

    def _upload(self, chunk: np.ndarray) -> torch.Tensor:
        """uint8 NHWC host array -> uint8 NHWC tensor on the device (via reused pinned memory; safe
        to reuse because each chunk ends with a synchronising download before the next upload)."""
        host = torch.from_numpy(chunk)
        if not self._cuda:
            return host
        if self._pinned is None or self._pinned.numel() < host.numel():
            self._pinned = torch.empty(host.numel(), dtype=torch.uint8, pin_memory=True)
        staged = self._pinned[:host.numel()].view(host.shape)
        staged.copy_(host)
        return staged.to(self.device, non_blocking=True)

    def _run(self, chunk: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        n, h, w, _ = chunk.shape
        ow, oh = size
        if self.compiled and n < self.batch_size:
            # a short last batch would make torch.compile recompile mid-run: pad it with copies
            filler = np.repeat(chunk[-1:], self.batch_size - n, axis=0)
            return self._run(np.concatenate([chunk, filler]), size)[:n]
        x = self._upload(chunk).permute(0, 3, 1, 2).float() / 255.0
        x = x.to(self._dtype)
        mod = _mod_pad(self.scale)
        if mod:
            x = F.pad(x, (0, (mod - w % mod) % mod, 0, (mod - h % mod) % mod), mode="reflect")
        # channels_last on CUDA (faster); plain NCHW on the CPU, where RealESRGANer's input is NCHW
        # too and oneDNN's channels_last kernels would round differently.
        x = x.contiguous(memory_format=self._memory_format)
        y = self._module(x)[:, :, :h * self.scale, :w * self.scale].float().clamp_(0, 1)
        if (oh, ow) != tuple(y.shape[2:]):
            shrinking = oh < y.shape[2] or ow < y.shape[3]
            y = F.interpolate(y, size=(oh, ow), mode="bicubic", align_corners=False,
                              antialias=shrinking).clamp_(0, 1)
        y = (y * 255.0).round_().to(torch.uint8)
        return y.permute(0, 2, 3, 1).contiguous().cpu().numpy()

    @torch.inference_mode()
    def upscale(self, frames: np.ndarray, out_size: tuple[int, int] | None = None) -> np.ndarray:
        """See Engine.upscale; frames go through the model `batch_size` at a time.
        Raises InputError on bad frames or size."""
        _check_frames(frames)
        size = _target_size(frames, self.scale, out_size)
        parts = [self._run(frames[i:i + self.batch_size], size)
                 for i in range(0, frames.shape[0], self.batch_size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def warmup(self, height: int, width: int) -> None:
        """One full batch of zeros through the model (triggers compilation when compiled)."""
        self.upscale(np.zeros((self.batch_size, height, width, 3), dtype=np.uint8))
        if self._cuda:
            torch.cuda.synchronize(self.device)


def create_engine(kind: str, model: LoadedModel, precision: str = "auto", batch_size: int = 4,
                  compile: bool = False) -> Engine:
    """Build the engine `kind` ('fast' or 'reference') around a loaded model.

    Raises InputError for an unknown kind, a precision the device or engine cannot run, a bad
    batch size, or compile with the reference engine; BackendError when realesrgan is missing.
    """
    if kind == "fast":
        return FastEngine(model, precision=precision, batch_size=batch_size, compile=compile)
    if kind == "reference":
        if compile:
            raise InputError("torch.compile applies to the fast engine only, not the reference engine")
        return ReferenceEngine(model, precision=precision)
    raise InputError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINE_KINDS)}")
