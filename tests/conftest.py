"""Shared pytest fixtures (keep generic and tiny: this machine has two shared CPU cores)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from store.objects import LocalDirectoryStore
from tests.jobs import CLIP, USER


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 64x48 H.264 MP4 at 10 fps, 2 s (20 frames) with moving detail."""
    from workers.synthetic import write_demo_clip

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


@pytest.fixture()
def storage(tmp_path: Path, tiny_clip: Path) -> LocalDirectoryStore:
    """A local object store under tmp_path/objects holding the tiny clip as USER/CLIP (tests.jobs)."""
    (tmp_path / "objects" / USER).mkdir(parents=True)
    shutil.copy(tiny_clip, tmp_path / "objects" / USER / CLIP)
    return LocalDirectoryStore(tmp_path / "objects")


@pytest.fixture
def no_modal_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Modal credentials anywhere: token variables cleared, HOME an empty directory, and
    modal.config (read once at import) reading no file. Returns that HOME."""
    from tests.modal_fakes import TOKEN_ENV, use_modal_config

    for name in TOKEN_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    use_modal_config(monkeypatch, None)
    return home


@pytest.fixture
def modal_token(monkeypatch: pytest.MonkeyPatch, no_modal_token: Path) -> None:
    """A (fake) token in the environment and nowhere else; tests using it fake or bound every
    network step."""
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
