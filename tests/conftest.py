"""Shared pytest fixtures (keep generic and tiny: this machine has two shared CPU cores)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 64x48 H.264 MP4 at 10 fps, 2 s (20 frames) with moving detail."""
    from workers.video import write_demo_clip

    path = tmp_path_factory.mktemp("clips") / "tiny.mp4"
    write_demo_clip(path, seconds=2.0, width=64, height=48, fps=10.0)
    return path


@pytest.fixture(scope="session")
def ncnn_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights cache holding the three offline ncnn conversions (converted once per session)."""
    import torch

    from workers.models import resolve_weights

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("weights")
    for name in ("x4plus", "x4plus_anime_6B", "animevideov3"):
        resolve_weights(name, cache_dir=cache, allow_download=False)
    torch.set_num_threads(threads)
    return cache
