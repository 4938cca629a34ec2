"""Fixtures of the reliability suite: an isolated product environment, the CLI run in-process (fast:
imports are paid once) or as a real process, and the tiny media every case needs.

The suite's figures (bad inputs tried, faults injected, runs under load) are counted from its own
case tables by tests/reliability/figures.py; test_figures.py checks that the README states them.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ui_helpers import isolate_env

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    """What one CLI invocation did."""

    code: int
    stdout: str
    stderr: str

    def one_line_error(self) -> str:
        """The single 'error: ...' line; fails the test if stderr is anything else."""
        lines = self.stderr.strip().splitlines()
        assert "Traceback" not in self.stderr + self.stdout, self.stderr
        assert len(lines) == 1 and lines[0].startswith("error: "), self.stderr
        return lines[0]


def cli(*argv: str) -> Outcome:
    """`python -m bench ARGV` in this process (the environment as the test set it)."""
    from bench.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return Outcome(code, out.getvalue(), err.getvalue())


def cli_process(*argv: str, env: dict[str, str] | None = None, timeout: float = 120,
                cwd: Path | None = None) -> Outcome:
    """`python -m bench ARGV` as a real process (exit status and streams as a shell sees them)."""
    proc = subprocess.run([sys.executable, "-m", "bench", *map(str, argv)], cwd=cwd or ROOT,
                          env=env or process_env(), capture_output=True, text=True, timeout=timeout)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def process_env(**extra: str) -> dict[str, str]:
    """This process's environment (as the test isolated it) for a child, with the repository on
    its path and the weights offline."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "BENCH_OFFLINE": "1", **extra}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty product environment under tmp_path (no Modal token, no R2); returns the database
    path. The CLI's log goes to tmp_path/data/logs."""
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return isolate_env(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of tiny inputs: clip.mp4 (32x32, 10 fps, 1 s), long.mp4 (64x48, 10 fps, 12 s),
    image.png, wide.png (9000x10), a corrupt mp4, a text file named .mp4."""
    from PIL import Image

    from workers.synthetic import write_demo_clip

    folder = tmp_path_factory.mktemp("media")
    write_demo_clip(folder / "clip.mp4", seconds=1.0, width=32, height=32, fps=10.0)
    write_demo_clip(folder / "long.mp4", seconds=12.0, width=64, height=48, fps=10.0)
    Image.new("RGB", (16, 16), (200, 40, 40)).save(folder / "image.png")
    Image.new("RGB", (9000, 10), (40, 200, 40)).save(folder / "wide.png")  # x4: 36000x40
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (folder / "text.mp4").write_text("just some text, not a video\n")
    return folder
