"""`python -m bench verdict FILE.json`, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

E6_FILE = {
    "timestamp": "2025-08-14T10:22:31",
    "config": {"gpus": ["T4", "L4"], "fps": 30},
    "pricing": {"T4": 0.000164, "L4": 0.000222},
    "results": [
        # T4: 20 s overhead + 1.0 fps; L4: 40 s overhead + 1.6 fps -> T4 short, L4 long.
        {"gpu": "T4", "clip": "6s", "frames": 180, "elapsed": 200.0, "status": "success"},
        {"gpu": "L4", "clip": "6s", "frames": 180, "elapsed": 152.5, "status": "success"},
        {"gpu": "T4", "clip": "15s", "frames": 450, "elapsed": 470.0, "status": "ok"},
        {"gpu": "L4", "clip": "15s", "frames": 450, "elapsed": 321.25, "status": "completed"},
        {"gpu": "T4", "clip": "30s", "frames": 900, "elapsed": 920.0, "status": "success"},
        {"gpu": "L4", "clip": "30s", "frames": 900, "elapsed": 602.5, "status": "success"},
        {"gpu": "L4", "clip": "30s", "frames": 900, "elapsed": None, "status": "failed",
         "error": "CUDA out of memory"},
    ],
    "comparisons": {},
}


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture()
def results_file(tmp_path: Path) -> Path:
    path = tmp_path / "e6.json"
    path.write_text(json.dumps(E6_FILE))
    return path


def test_json(results_file):
    proc = bench("verdict", str(results_file), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["rule"] == "threshold"
    assert out["choice"]["below"] == "T4" and out["choice"]["above"] == "L4"
    assert out["choice"]["threshold_frames"] == 222
    assert out["settled"] is True and out["reason"]
    clips = {c["clip"]: c for c in out["per_clip"]}
    assert list(clips) == ["6s", "15s", "30s"]
    assert clips["6s"]["frames"] == 180 and clips["6s"]["winner"] == "T4"
    assert clips["30s"]["winner"] == "L4"
    assert clips["6s"]["costs"]["T4"] == pytest.approx(200.0 * 0.000164)
    assert clips["30s"]["times"] == {"T4": 920.0, "L4": 602.5}
    assert out["failed"] == [{"gpu": "L4", "clip": "30s", "repeat": 0, "status": "failed",
                              "error": "CUDA out of memory"}]
    assert out["fits"]["T4"]["overhead_s"] == pytest.approx(20.0)
    assert out["fits"]["L4"]["throughput_fps"] == pytest.approx(1.6)
    assert out["crossovers"][0]["from"] == "T4" and out["crossovers"][0]["to"] == "L4"


def test_text_and_tolerance(results_file):
    proc = bench("verdict", str(results_file))
    assert proc.returncode == 0, proc.stderr
    assert "verdict: threshold: T4 for clips under 7.4 s, L4 above 7.4 s" in proc.stdout
    assert "L4 on 30s (repeat 1): CUDA out of memory" in proc.stdout  # repeats count from 1
    lines = [line for line in proc.stdout.splitlines() if line.startswith("6s ")]
    assert len(lines) == 2 and lines[0].split()[2] == "T4"
    # With a 20% tolerance the costs tie on every clip and the faster L4 is chosen.
    wide = json.loads(bench("verdict", str(results_file), "--tolerance", "0.2", "--json").stdout)
    assert (wide["rule"], wide["choice"]) == ("within_tolerance", "L4")


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ('{"results": [{"gpu": "T4"}]}', "has no 'clip' name"),
    ('{"results": [{"gpu": "T4", "clip": "6s", "frames": 180, "status": "failed"}]}',
     "every run failed"),
])
def test_bad_file_is_one_stderr_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    proc = bench("verdict", str(path))
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_missing_file_and_bad_tolerance(results_file, tmp_path):
    proc = bench("verdict", str(tmp_path / "nope.json"))
    assert proc.returncode != 0 and "no such file" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = bench("verdict", str(results_file), "--tolerance", "1.5")
    assert proc.returncode != 0 and "tolerance" in proc.stderr
