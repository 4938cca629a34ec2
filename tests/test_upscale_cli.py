"""`python -m bench upscale` as a user runs it: one line per bad input, non-zero exit, no output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_upscale_json_result(tiny_clip, tmp_path):
    proc = bench("upscale", str(tiny_clip), "out.mp4", "--model", "animevideov3", "--weights",
                 "random", "--start", "0.5", "--end", "1.0", "--crop", "8,8,24,16", "--size",
                 "48x32", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "succeeded" and result["frames_out"] == 5
    assert (result["output_width"], result["output_height"]) == (48, 32)
    assert result["weights_provenance"] == "random (timing-only)"
    assert (tmp_path / "out.mp4").is_file()


@pytest.mark.parametrize("extra", [
    ["--model", "nope"],
    ["--start", "5", "--end", "6"],
    ["--start", "1.5", "--end", "1.0"],
    ["--crop", "0,0,100,16"],
    ["--crop", "0,0,0,16"],
    ["--crop", "200,200,8,8"],
    ["--size", "3x"],
    ["--device", "cuda:7"],
    ["--weights", "/no/such/weights.pth"],
])
def test_bad_input_gives_one_line_and_no_output(tiny_clip, tmp_path, extra):
    proc = bench("upscale", str(tiny_clip), "out.mp4", "--model", "animevideov3",
                 "--weights", "random", *extra, cwd=tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_corrupt_video_and_unsorted_keyframes(tiny_clip, tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    proc = bench("upscale", "bad.mp4", "out.mp4", "--weights", "random", cwd=tmp_path)
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and "bad.mp4" in proc.stderr
    (tmp_path / "kf.json").write_text(json.dumps([
        {"time": 1.0, "x": 0, "y": 0, "width": 8, "height": 8},
        {"time": 0.5, "x": 0, "y": 0, "width": 8, "height": 8}]))
    proc = bench("upscale", str(tiny_clip), "out.mp4", "--keyframes", "kf.json",
                 "--model", "animevideov3", "--weights", "random", cwd=tmp_path)
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1
    assert not (tmp_path / "out.mp4").exists()
