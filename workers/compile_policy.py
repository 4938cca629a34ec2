"""Whether a job compiles its model, and the compiled artifacts kept between processes.

torch.compile costs tens of seconds once per process and shape, then runs every frame faster.
'auto' compiles when the frames of the job repay it: frames x eager seconds per frame x
(1 - 1 / speedup) > the compile time expected here. Both the compile time and the speedup are
what this machine measured last time for the same model, precision, shape and card (a small JSON
beside the inductor cache), else conservative defaults. The inductor cache lives in the weights
cache directory (the Modal weights Volume in a container), so a later process reuses the kernels.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import InputError
from core.paths import weights_dir

DEFAULT_COMPILE_SECONDS = 90.0
"""Compile time assumed before one was measured here (x4plus, cold cache, H200: ~70-100 s)."""
DEFAULT_SPEEDUP = 1.5
"""Compiled over eager throughput assumed before one was measured (x4plus on an H200: 1.59)."""
STATS_FILE = "compile-stats.json"


@dataclass(frozen=True)
class CompileDecision:
    """What the engine does for one job, and why (stored with the run)."""

    compile: bool
    """Whether the job runs the compiled module."""
    reason: str
    """'on', 'off', or 'auto: on (...)' / 'auto: off (...)' with the arithmetic."""


@dataclass(frozen=True)
class CompileStats:
    """What was measured last time for one model/precision/shape/card."""

    compile_seconds: float
    """Seconds the compile took (a warm cache makes this small)."""
    speedup: float | None = None
    """Compiled over eager frames per second, once a compiled job has run."""


def decide(mode: str, *, cuda: bool, frames: int, eager_seconds_per_frame: float,
           stats: CompileStats | None) -> CompileDecision:
    """The decision for mode 'on', 'off' or 'auto'. Raises InputError for another mode."""
    if mode in ("on", "off"):
        return CompileDecision(mode == "on", mode)
    if mode != "auto":
        raise InputError(f"unknown compile mode {mode!r}; choose on, off or auto")
    if not cuda:
        return CompileDecision(False, "auto: off (no CUDA device)")
    expected = stats.compile_seconds if stats else DEFAULT_COMPILE_SECONDS
    speedup = (stats.speedup if stats and stats.speedup else None) or DEFAULT_SPEEDUP
    saved = frames * eager_seconds_per_frame * (1.0 - 1.0 / speedup)
    verdict = "on" if saved > expected else "off"
    return CompileDecision(verdict == "on", f"auto: {verdict} ({frames} frames x "
                           f"{eager_seconds_per_frame:.3f} s x (1 - 1/{speedup:.2f}) = {saved:.1f} s "
                           f"saved vs {expected:.1f} s to compile)")


def cache_dir() -> Path:
    """Where compiled artifacts and the stats live: torch-compile/ in the weights cache."""
    return weights_dir() / "torch-compile"


def use_persistent_cache() -> Path:
    """Point inductor's on-disk caches (FX graphs, autotuning, AOT autograd) at cache_dir(),
    unless the user set TORCHINDUCTOR_CACHE_DIR. Call before the first compile."""
    path = cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(path / "inductor"))
    return path


def stats_key(model: str, precision: str, shape: tuple[int, ...], batch_size: int, device_name: str,
              torch_version: str) -> str:
    """The stats entry of one compiled configuration."""
    return "|".join([model, precision, "x".join(map(str, shape)), str(batch_size), device_name,
                     torch_version])


def _read_all(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_stats(key: str) -> CompileStats | None:
    """The stats measured here for key, if any (an unreadable file counts as none)."""
    entry = _read_all(cache_dir() / STATS_FILE).get(key)
    try:
        return CompileStats(**entry) if isinstance(entry, dict) else None
    except TypeError:
        return None


def save_stats(key: str, stats: CompileStats) -> None:
    """Record stats for key (atomically; concurrent writers may lose an update, never the file).
    Raises nothing: the stats only inform a later decision."""
    path = cache_dir() / STATS_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_all(path)
        data[key] = asdict(stats)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stats-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass
