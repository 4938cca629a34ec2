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
import time
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import InputError
from workers.models import LoadedModel

ENGINE_KINDS = ("fast", "reference")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
COMPILE_MODE = os.environ.get("BENCH_COMPILE_MODE") or None
"""torch.compile mode of the fast engine (None: inductor's default); BENCH_COMPILE_MODE picks
another for benchmarks/product_path.py, which compares them on an H200 (benchmarks/RESULTS.md)."""


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
    yuv_output: bool
    """Whether upscale(..., pixel_format='yuv420p') converts on the device (else only rgb24)."""

    def upscale(self, frames: np.ndarray, out_size: tuple[int, int] | None = None,
                pixel_format: str = "rgb24") -> np.ndarray:
        """[N, H, W, 3] uint8 RGB -> [N, OH, OW, 3] uint8 RGB; out_size=(width, height), None =
        the model's scale. pixel_format 'yuv420p' (where yuv_output) returns [N, OH * 3 / 2, OW]
        planes instead. Raises InputError on a badly shaped array, size or format."""
        ...

    def prepare(self, height: int, width: int, out_size: tuple[int, int], compile: bool) -> float:
        """Get ready for frames of this input size and output size (width, height): warm up, and
        with compile, torch.compile for exactly these shapes. Returns the seconds spent compiling
        (0.0 when not compiling or already compiled for them). Raises InputError when the engine
        cannot compile."""
        ...

    def seconds_per_frame(self, height: int, width: int, out_size: tuple[int, int]) -> float:
        """Measured eager seconds per frame at this size (after prepare)."""
        ...


def _mod_pad(scale: int) -> int | None:
    """RealESRGANer pads the input (reflect, bottom/right) to a multiple of this for x2 and x1."""
    return {2: 2, 1: 4}.get(scale)


def _check_frames(frames: np.ndarray | torch.Tensor, tensors: bool = False) -> None:
    """Raises InputError unless frames is a non-empty [N, H, W, 3] uint8 array (or, where the
    engine takes them, a tensor)."""
    kinds = (np.ndarray, torch.Tensor) if tensors else (np.ndarray,)
    if not isinstance(frames, kinds) or frames.dtype not in (np.uint8, torch.uint8) \
            or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
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
    yuv_output = False

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

    def upscale(self, frames: np.ndarray, out_size: tuple[int, int] | None = None,
                pixel_format: str = "rgb24") -> np.ndarray:
        """See Engine.upscale: rgb24 only, as RealESRGANer returns. Raises InputError on bad
        frames, size or format."""
        import cv2

        _check_frames(frames)
        if pixel_format != "rgb24":
            raise InputError(f"the reference engine returns rgb24, not {pixel_format!r}")
        ow, oh = _target_size(frames, self.scale, out_size)
        out = np.empty((frames.shape[0], oh, ow, 3), dtype=np.uint8)
        for i, frame in enumerate(frames):
            bgr = np.ascontiguousarray(frame[:, :, ::-1])
            result, _mode = self._upsampler.enhance(bgr, outscale=self.scale)
            if result.shape[:2] != (oh, ow):
                result = cv2.resize(result, (ow, oh), interpolation=cv2.INTER_LANCZOS4)
            out[i] = result[:, :, ::-1]
        return out

    def prepare(self, height: int, width: int, out_size: tuple[int, int], compile: bool) -> float:
        """See Engine.prepare: RealESRGANer has nothing to compile. Raises InputError for compile."""
        if compile:
            raise InputError("torch.compile applies to the fast engine only, not the reference engine")
        return 0.0

    def seconds_per_frame(self, height: int, width: int, out_size: tuple[int, int]) -> float:
        """One timed frame."""
        frames = np.zeros((1, height, width, 3), dtype=np.uint8)
        began = time.perf_counter()
        self.upscale(frames, out_size)
        return time.perf_counter() - began


class FastEngine:
    """Batched upscale on the device: pinned upload, channels_last, fp16/bf16 on CUDA, clamp,
    resize (bicubic, antialiased when shrinking) and uint8 rounding on the device."""

    name = "fast"

    def __init__(self, model: LoadedModel, precision: str = "auto", batch_size: int = 4) -> None:
        """Raises InputError for a bad precision or batch size."""
        if batch_size < 1:
            raise InputError(f"batch size {batch_size} must be at least 1")
        self.scale = model.spec.scale
        self.device = model.device
        self.precision = resolve_precision(self.name, precision, self.device)
        self.batch_size = batch_size
        self._dtype = _DTYPES[self.precision]
        self._cuda = self.device.type == "cuda"
        if self._cuda:
            # Frame sizes are fixed within a job: let cuDNN time its algorithms once per shape.
            torch.backends.cudnn.benchmark = True
        module = copy.deepcopy(model.module).to(self.device, self._dtype).eval()
        self._memory_format = torch.channels_last if self._cuda else torch.contiguous_format
        self._eager = module.to(memory_format=self._memory_format)
        self._compiled: torch.nn.Module | None = None
        self._compiled_shapes: set[tuple[int, int, int, int]] = set()
        """(height, width, out width, out height) the compiled module has been traced for."""
        self._seconds_per_frame: dict[tuple[int, int, int, int], float] = {}
        self._pinned: torch.Tensor | None = None

    @property
    def yuv_output(self) -> bool:
        """Whether upscale(..., pixel_format='yuv420p') converts on the device (CUDA): the encoder
        then gets planes it can take as they are, and half the bytes cross the bus."""
        return self._cuda

    def prepare(self, height: int, width: int, out_size: tuple[int, int], compile: bool) -> float:
        """See Engine.prepare. The first compile for a shape traces and builds kernels (the
        persistent cache in workers.compile_cache makes that quick in a later process); after it,
        only frames of exactly these shapes use the compiled module, so other shapes (fidelity
        samples) never trigger a recompile."""
        key = (height, width, *out_size)
        frames = np.zeros((self.batch_size, height, width, 3), dtype=np.uint8)
        if key not in self._seconds_per_frame:
            self.upscale(frames, out_size)  # cuDNN picks its algorithms for this shape
            self._sync()
            began = time.perf_counter()
            self.upscale(frames, out_size)
            self._sync()
            self._seconds_per_frame[key] = (time.perf_counter() - began) / self.batch_size
        if not compile or key in self._compiled_shapes:
            return 0.0
        began = time.perf_counter()
        if self._compiled is None:
            self._compiled = torch.compile(self._eager, dynamic=False, mode=COMPILE_MODE)
        self._compiled_shapes.add(key)
        self.upscale(frames, out_size)  # traces and compiles at the job's own shapes
        self.upscale(frames, out_size)  # CUDA graphs record on the second call
        self._sync()
        return time.perf_counter() - began

    def seconds_per_frame(self, height: int, width: int, out_size: tuple[int, int]) -> float:
        """See Engine.seconds_per_frame (measured by prepare, eager)."""
        key = (height, width, *out_size)
        if key not in self._seconds_per_frame:
            self.prepare(height, width, out_size, compile=False)
        return self._seconds_per_frame[key]

    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize(self.device)

    def _upload(self, chunk: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 NHWC host array -> uint8 NHWC tensor on the device (via reused pinned memory; safe
        to reuse because each chunk ends with a synchronising download before the next upload);
        a tensor (frames decoded on the card) is only moved to the device if elsewhere."""
        if isinstance(chunk, torch.Tensor):
            return chunk.to(self.device, non_blocking=True)
        host = torch.from_numpy(chunk)
        if not self._cuda:
            return host
        if self._pinned is None or self._pinned.numel() < host.numel():
            self._pinned = torch.empty(host.numel(), dtype=torch.uint8, pin_memory=True)
        staged = self._pinned[:host.numel()].view(host.shape)
        staged.copy_(host)
        return staged.to(self.device, non_blocking=True)

    def _run(self, chunk: np.ndarray | torch.Tensor, size: tuple[int, int],
             pixel_format: str) -> np.ndarray:
        n, h, w, _ = chunk.shape
        ow, oh = size
        compiled = (h, w, ow, oh) in self._compiled_shapes
        if compiled and n < self.batch_size:
            # a short last batch would make torch.compile recompile mid-run: pad it with copies
            fill = self.batch_size - n
            padded = (torch.cat([chunk, chunk[-1:].expand(fill, -1, -1, -1)])
                      if isinstance(chunk, torch.Tensor)
                      else np.concatenate([chunk, np.repeat(chunk[-1:], fill, axis=0)]))
            return self._run(padded, size, pixel_format)[:n]
        module = self._compiled if compiled else self._eager
        x = self._upload(chunk).permute(0, 3, 1, 2).float() / 255.0
        x = x.to(self._dtype)
        mod = _mod_pad(self.scale)
        if mod:
            x = F.pad(x, (0, (mod - w % mod) % mod, 0, (mod - h % mod) % mod), mode="reflect")
        # channels_last on CUDA (faster); plain NCHW on the CPU, where RealESRGANer's input is NCHW
        # too and oneDNN's channels_last kernels would round differently.
        x = x.contiguous(memory_format=self._memory_format)
        y = module(x)[:, :, :h * self.scale, :w * self.scale].float().clamp_(0, 1)
        if (oh, ow) != tuple(y.shape[2:]):
            shrinking = oh < y.shape[2] or ow < y.shape[3]
            y = F.interpolate(y, size=(oh, ow), mode="bicubic", align_corners=False,
                              antialias=shrinking).clamp_(0, 1)
        y = (y * 255.0).round_()
        if pixel_format == "yuv420p":
            return rgb_to_yuv420p(y).cpu().numpy()
        return y.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()

    @torch.inference_mode()
    def upscale(self, frames: np.ndarray | torch.Tensor, out_size: tuple[int, int] | None = None,
                pixel_format: str = "rgb24") -> np.ndarray:
        """See Engine.upscale; frames go through the model `batch_size` at a time, and may be a
        uint8 tensor already on the device (frames NVDEC decoded).
        pixel_format 'yuv420p' returns [N, OH * 3 / 2, OW] planes (Y, then U, then V; BT.601
        limited range, as libswscale converts) computed on the device; it needs an even size.
        Raises InputError on bad frames, size or format."""
        _check_frames(frames, tensors=True)
        size = _target_size(frames, self.scale, out_size)
        if pixel_format not in ("rgb24", "yuv420p"):
            raise InputError(f"pixel format {pixel_format!r} must be rgb24 or yuv420p")
        if pixel_format == "yuv420p" and (size[0] % 2 or size[1] % 2):
            raise InputError(f"yuv420p needs an even output size, not {size[0]}x{size[1]}")
        parts = [self._run(frames[i:i + self.batch_size], size, pixel_format)
                 for i in range(0, frames.shape[0], self.batch_size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def rgb_to_yuv420p(rgb: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] RGB in 0..255 (float) -> [N, H * 3 / 2, W] uint8 yuv420p planes: BT.601
    limited range (what libswscale produces from rgb24 by default), chroma averaged over 2x2."""
    r, g, b = rgb.unbind(1)
    n, h, w = r.shape
    y = 16.0 + 0.256788 * r + 0.504129 * g + 0.097906 * b
    u = 128.0 - 0.148223 * r - 0.290993 * g + 0.439216 * b
    v = 128.0 + 0.439216 * r - 0.367788 * g - 0.071427 * b
    u = F.avg_pool2d(u[:, None], 2)[:, 0]
    v = F.avg_pool2d(v[:, None], 2)[:, 0]
    planes = torch.cat([y.reshape(n, -1), u.reshape(n, -1), v.reshape(n, -1)], dim=1)
    return planes.round_().clamp_(0, 255).to(torch.uint8).view(n, h * 3 // 2, w)


def create_engine(kind: str, model: LoadedModel, precision: str = "auto",
                  batch_size: int = 4) -> Engine:
    """Build the engine `kind` ('fast' or 'reference') around a loaded model (whether it compiles
    is decided per job, by Engine.prepare).

    Raises InputError for an unknown kind, a precision the device or engine cannot run, or a bad
    batch size; BackendError when realesrgan is missing.
    """
    if kind == "fast":
        return FastEngine(model, precision=precision, batch_size=batch_size)
    if kind == "reference":
        return ReferenceEngine(model, precision=precision)
    raise InputError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINE_KINDS)}")
