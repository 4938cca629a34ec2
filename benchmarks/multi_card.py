"""Several cards at once through the product (issue 13; meant for a machine with 2+ GPUs).

    python benchmarks/multi_card.py [--model animevideov3] [--repeats 2] [--json-out FILE]

Runs the product's `run --backend local` twice in one call on the e6 clip shapes (1920x1080
source, 540x960 crop, 810x1440 at 30 fps, clips of 6/15/30 s, random weights): once on one card
(`--gpus cuda:0=H200`) and once on every card as one candidate (`--gpus cuda:all=H200`), while
`nvidia-smi dmon` samples each card's utilisation. Prints frames per second of wall time for both,
their ratio (the target: at least 1.8x on two cards) and each card's mean utilisation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.product_path import E6_SHAPE, write_source  # noqa: E402

CLIPS = "6s:3:9,15s:3:18,30s:3:33"
FRAMES_PER_REPEAT = 180 + 450 + 900


def utilisation(log: Path) -> dict[str, float]:
    """Mean SM utilisation per card from `nvidia-smi dmon -s u` output (busy samples only)."""
    samples: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#") or not parts[0].isdigit():
            continue
        samples.setdefault(f"cuda:{parts[0]}", []).append(float(parts[1]))
    return {card: sum(v) / len(v) for card, v in samples.items() if v}


def run(gpus: str, args: argparse.Namespace, source: Path, work: Path, env: dict) -> dict:
    log = work / f"dmon-{gpus.replace(':', '_')}.txt"
    with open(log, "w") as out:
        dmon = subprocess.Popen(["nvidia-smi", "dmon", "-s", "u", "-d", "1"], stdout=out)
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--preset", "e6", "--backend", "local",
                           "--gpus", gpus, "--source", str(source), "--clips", CLIPS, "--model",
                           args.model, "--engine", "fast", "--weights", "random", "--repeats",
                           str(args.repeats), "--db", str(work / "bench.duckdb"), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    dmon.terminate()
    frames = FRAMES_PER_REPEAT * args.repeats
    return {"gpus": gpus, "exit": done.returncode, "wall_seconds": wall, "fps": frames / wall,
            "utilisation": utilisation(log), "stderr_tail": done.stderr[-400:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="animevideov3")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--card", default="H200", help="catalog card the runs are priced as")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "source.mp4"
        write_source(source, E6_SHAPE, seconds=33.5)
        env = {**os.environ, "BENCH_OFFLINE": "1", "BENCH_DATA_DIR": str(work / "data"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        rows = [run(f"cuda:0={args.card}", args, source, work, env),
                run(f"cuda:all={args.card}", args, source, work, env)]
    for row in rows:
        print(json.dumps(row))
    print(f"aggregate speed-up, all cards over one: {rows[1]['fps'] / rows[0]['fps']:.2f}x")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
