"""import -> history -> export -> verdict through the CLI, on the original experiment's numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e6_samples import E6_SAMPLE

ROOT = Path(__file__).resolve().parents[1]

def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_DB": str(cwd / "h.duckdb")}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_imported_experiment_exports_as_e6_and_markdown(tmp_path):
    (tmp_path / "e6.json").write_text(json.dumps(E6_SAMPLE))
    imported = bench("import", "e6.json", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    history = json.loads(bench("history", "--json", cwd=tmp_path).stdout)
    experiment = history["experiments"][0]
    experiment_id = experiment["id"]
    assert experiment_id in imported.stdout
    failed = [r for r in experiment["runs"] if r["status"] == "failed"]
    assert len(failed) == 1 and "out of memory" in failed[0]["error"]

    exported = bench("export", experiment_id, "--output", "out.json", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    e6 = json.loads((tmp_path / "out.json").read_text())
    assert {"timestamp", "config", "pricing", "results", "comparisons"} <= e6.keys()
    assert len(e6["results"]) == len(E6_SAMPLE["results"])
    assert e6["pricing"] == {"T4": 0.000164, "L4": 0.000222}

    verdict = json.loads(bench("verdict", "out.json", "--json", cwd=tmp_path).stdout)
    # L4 at 120.4 s is under the break-even 0.739 x 185.2 s = 136.9 s, and likewise on 15s and 30s.
    assert verdict["rule"] == "single_winner" and verdict["choice"] == "L4"
    assert len(verdict["failed"]) == 1

    markdown = bench("export", experiment_id, "--format", "md", cwd=tmp_path)
    assert markdown.returncode == 0, markdown.stderr
    assert "single_winner" in markdown.stdout and "| " in markdown.stdout


def test_export_of_unknown_experiment_is_one_line(tmp_path):
    proc = bench("export", "nope", cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "nope" in proc.stderr
