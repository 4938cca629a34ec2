"""Model catalog, weight resolution (user file, cache, download, offline ncnn, random) and loading.

Every model is built or loaded through spandrel; what callers get is the plain torch module that
maps [N, 3, H, W] float RGB in 0..1 to [N, 3, sH, sW].
"""

from __future__ import annotations

import hashlib
import http.client
import os
import platform
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import InputError, WeightsError
from core.paths import weights_dir
from workers.catalog import ModelSpec, get_model_spec

PROVENANCES = ("user-file", "official", "ncnn-derived", "random (timing-only)")
"""Where a model's weights came from, as recorded in results."""

RANDOM = "random (timing-only)"
DOWNLOAD_TIMEOUT_S = 10.0
"""Socket timeout for the official download: offline machines fail fast and fall through."""

@dataclass(frozen=True)
class ResolvedWeights:
    """Which weights a model will run with."""

    path: Path | None
    """The .pth file to load; None for random init."""
    provenance: str
    """One of PROVENANCES."""
    sha256: str | None
    """sha256 of the file at `path`, None for random init."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: eval mode, no gradients, on its device."""

    spec: ModelSpec
    """Catalog entry."""
    module: torch.nn.Module
    """Maps [N, 3, H, W] float RGB in 0..1 to [N, 3, H*scale, W*scale]."""
    weights: ResolvedWeights
    """Where its weights came from."""
    device: torch.device
    """Device the module lives on."""


def default_cache_dir() -> Path:
    """$BENCH_WEIGHTS_DIR, else ~/.cache/upscale-gpu-bench/weights."""
    return weights_dir()


def offline() -> bool:
    """True when $BENCH_OFFLINE is set to a true value (1/true/yes): never touch the network."""
    return os.environ.get("BENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file. Raises OSError when it cannot be read."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shuffle_factor(spec: ModelSpec) -> int | None:
    """Real-ESRGAN's x2 (x1) RRDBNet is an x4 network behind a pixel-unshuffle by 2 (4)."""
    return 4 // spec.scale if spec.arch == "RRDBNet" and spec.scale < 4 else None


def build_architecture(spec: ModelSpec, seed: int = 0) -> torch.nn.Module:
    """The spandrel network for `spec`, randomly initialised with `seed` (global RNG untouched).

    Raises nothing for catalog specs; ValueError for an unknown arch string.
    """
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.arch == "RRDBNet":
            shuffle = _shuffle_factor(spec)
            return ESRGAN(in_nc=3 * (shuffle or 1) ** 2, out_nc=3, num_filters=spec.num_feat,
                          num_blocks=spec.num_block, scale=4 if shuffle else spec.scale,
                          shuffle_factor=shuffle)
        if spec.arch == "SRVGGNetCompact":
            return Compact(num_in_ch=3, num_out_ch=3, num_feat=spec.num_feat,
                           num_conv=spec.num_conv, upscale=spec.scale)
    raise ValueError(f"unknown architecture {spec.arch!r}")


def _atomic_save(state: dict, target: Path) -> None:
    """torch.save to a temp file beside `target`, then rename (safe with parallel workers)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _download(spec: ModelSpec, target: Path) -> str:
    """Fetch the official file into `target` (sha256-checked where known); returns its sha256.

    Raises OSError (URLError, TimeoutError) or http.client.HTTPException when it cannot be
    fetched, WeightsError on a checksum mismatch.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".part", dir=target.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(spec.url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            for block in iter(lambda: resp.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        actual = digest.hexdigest()
        if spec.sha256 and actual != spec.sha256:
            raise WeightsError(f"download of {spec.url} has sha256 {actual}, expected {spec.sha256}; "
                               "not using it")
        os.replace(tmp, target)
        return actual
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _convert_ncnn(spec: ModelSpec, target: Path) -> None:
    """Convert the offline ncnn files of `spec` into a spandrel-loadable state dict at `target`.

    Raises WeightsError when the package is missing or the files do not match the architecture.
    """
    from workers import ncnn_weights

    template = build_architecture(spec).state_dict()
    _atomic_save(ncnn_weights.convert(spec.ncnn_name, template), target)


def resolve_weights(name: str, weights: str = "auto", cache_dir: Path | None = None,
                    allow_download: bool = True) -> ResolvedWeights:
    """Find the weights for model `name`.

    `weights` is 'random' (timing-only), a path to a .pth/.safetensors file, or 'auto', which tries
    in order: the official file in the cache dir (sha256-checked where known), a previously
    converted '<name>.ncnn-derived.pth' there, the official URL (only when `allow_download` and
    not $BENCH_OFFLINE; unreachable falls through fast), then the offline ncnn files converted and
    cached. Raises InputError for an unknown model, WeightsError for a missing user file, a bad
    checksum, an unwritable cache, or when nothing could be found.
    """
    spec = get_model_spec(name)
    if weights == "random":
        return ResolvedWeights(None, RANDOM, None)
    if weights != "auto":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist")
        try:
            return ResolvedWeights(path, "user-file", file_sha256(path))
        except OSError as exc:
            raise WeightsError(f"cannot read weights file {path}: {exc.strerror or exc}") from exc

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    official = cache / spec.filename
    if official.is_file():
        sha = file_sha256(official)
        if spec.sha256 and sha != spec.sha256:
            raise WeightsError(f"cached {official} has sha256 {sha}, expected {spec.sha256}; "
                               "delete it to download it again")
        return ResolvedWeights(official, "official", sha)
    derived = cache / f"{spec.name}.ncnn-derived.pth"
    if derived.is_file():
        return ResolvedWeights(derived, "ncnn-derived", file_sha256(derived))

    if not allow_download or offline():
        why_not = "downloads are off (BENCH_OFFLINE or allow_download=False)"
    else:
        try:
            return ResolvedWeights(official, "official", _download(spec, official))
        except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
            reason = getattr(exc, "reason", None) or exc
            why_not = f"{spec.url} could not be downloaded ({reason})"

    if spec.ncnn_name is not None:
        try:
            _convert_ncnn(spec, derived)
        except OSError as exc:
            raise WeightsError(f"cannot write converted weights to {derived}: "
                               f"{exc.strerror or exc}; set BENCH_WEIGHTS_DIR to a writable folder") from exc
        return ResolvedWeights(derived, "ncnn-derived", file_sha256(derived))

    raise WeightsError(
        f"no weights for model {name!r} could be found offline: {official} is not cached, {why_not}, "
        f"and no offline ncnn conversion exists for it; download {spec.url} into {cache}, pass "
        f"--weights PATH, or use --weights random for timing-only results"
    )


def _hyperparameters(spec: ModelSpec) -> dict[str, object]:
    """The spandrel hyperparameters that identify `spec`'s network."""
    if spec.arch == "RRDBNet":
        shuffle = _shuffle_factor(spec)
        return {"num_filters": spec.num_feat, "num_blocks": spec.num_block,
                "scale": 4 if shuffle else spec.scale, "shuffle_factor": shuffle}
    return {"num_feat": spec.num_feat, "num_conv": spec.num_conv, "upscale": spec.scale}


def _check_matches(spec: ModelSpec, module: torch.nn.Module, path: Path) -> None:
    """Raise WeightsError when a loaded file is not the network `spec` describes."""
    if type(module).__name__ != spec.arch:
        raise WeightsError(f"weights file {path} holds a {type(module).__name__}, "
                           f"not the {spec.arch} of model {spec.name}")
    actual = getattr(module, "hyperparameters", {})
    wrong = [f"{k}={actual.get(k)} (want {v})" for k, v in _hyperparameters(spec).items()
             if actual.get(k) != v]
    if wrong:
        raise WeightsError(f"weights file {path} is not a {spec.name} network: {', '.join(wrong)}")


def load_model(name: str, weights: str = "auto", device: str | torch.device = "cpu",
               cache_dir: Path | None = None, allow_download: bool = True) -> LoadedModel:
    """Resolve weights and load model `name` through spandrel, in eval mode on `device`.

    Raises InputError (unknown model or device), WeightsError (no weights, a file spandrel cannot
    load, or one holding a different network).
    """
    from spandrel import ImageModelDescriptor, ModelLoader

    spec = get_model_spec(name)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    resolved = resolve_weights(name, weights, cache_dir=cache_dir, allow_download=allow_download)
    if resolved.path is None:
        module = build_architecture(spec, seed=0)
    else:
        try:
            descriptor = ModelLoader(device="cpu").load_from_file(resolved.path)
        except Exception as exc:  # spandrel raises ValueError, UnsupportedModelError, pickle errors...
            raise WeightsError(f"cannot load weights file {resolved.path}: "
                               f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from exc
        if not isinstance(descriptor, ImageModelDescriptor):
            raise WeightsError(f"weights file {resolved.path} is not an image model")
        module = descriptor.model
        _check_matches(spec, module, resolved.path)
    module = module.eval().requires_grad_(False).to(dev)
    return LoadedModel(spec, module, resolved, dev)


def resolve_device(device: str) -> torch.device:
    """'auto' (first CUDA card, else CPU), 'cpu', 'cuda' or 'cuda:N' as a torch.device.

    Raises InputError for other names, for CUDA on a machine without it, or for a missing card.
    """
    text = str(device).strip().lower()
    if text == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        index_text = text.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise InputError(f"bad device {device!r}; use auto, cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} asked for, but CUDA is not available on this machine")
        index, count = int(index_text), torch.cuda.device_count()
        if index >= count:
            raise InputError(f"device {device!r} does not exist; this machine has {count} CUDA device(s)")
        return torch.device("cuda", index)
    raise InputError(f"bad device {device!r}; use auto, cpu, cuda or cuda:N")


def device_name(device: torch.device) -> str:
    """Human name of a device: the CUDA card name, or the CPU model. Raises nothing."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"
