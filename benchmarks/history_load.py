"""How fast the history and compare views' queries are with 100,000 stored runs.

Builds a database of synthetic experiments and runs (inserted from DataFrames in one go), then
times each query the dashboard's history and compare pages make, through the same short-lived
connections they use (so the times include attaching the file). Prints a table of times and exits
non-zero if any query's slowest repeat takes a second or more.

    .venv/bin/python benchmarks/history_load.py [--experiments 1000] [--runs-per-experiment 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import runs as R  # noqa: E402
from store.db import SCHEMA_VERSION, Database  # noqa: E402

GPUS = ("T4", "L4", "A10", "L40S", "A100-80GB", "H100", "H200")
RATES = {"T4": 0.000164, "L4": 0.000222, "A10": 0.000306, "L40S": 0.000542, "A100-80GB": 0.000694,
         "H100": 0.001097, "H200": 0.001261}
MODELS = ("x4plus", "general-x4v3", "animevideov3")
CLIPS = (("6s", 3.0, 9.0, 180), ("15s", 3.0, 18.0, 450), ("30s", 3.0, 33.0, 900))
LIMIT_SECONDS = 1.0


def synthetic(experiments: int, per_experiment: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Experiment and run rows shaped like real ones (mostly succeeded, some failed/interrupted)."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1)
    exp_ids = [f"{i:032x}" for i in range(experiments)]
    created = [start + timedelta(hours=i) for i in range(experiments)]
    exp_models = rng.choice(MODELS, experiments)
    plan = json.dumps({"clips": [c[0] for c in CLIPS], "gpus": list(GPUS), "repeats": 5})
    exps = pd.DataFrame({
        "id": exp_ids, "created_at": created, "name": [f"experiment {i}" for i in range(experiments)],
        "preset": "e6", "source": "modal_test/test_videos/wcfc-carlsbad-trimmed.mp4", "plan_json": plan,
        "model": exp_models, "engine": "fast", "backend": "modal", "price_table_date": "2026-06",
        "price_table_json": json.dumps(RATES), "notes": None, "origin": "run", "commit": "0" * 40,
        "schema_version": SCHEMA_VERSION,
    })
    n = experiments * per_experiment
    exp_index = np.repeat(np.arange(experiments), per_experiment)
    seq = np.tile(np.arange(per_experiment), experiments)
    clip_index = seq % len(CLIPS)
    gpu = np.array(GPUS)[(seq // len(CLIPS)) % len(GPUS)]
    frames = np.array([c[3] for c in CLIPS])[clip_index]
    status = rng.choice(["succeeded", "failed", "interrupted"], n, p=[0.9, 0.08, 0.02])
    ok = status == "succeeded"
    upscale = frames / rng.uniform(2.0, 100.0, n)
    total = upscale + rng.uniform(3.0, 20.0, n)
    rate = np.array([RATES[g] for g in gpu])
    run_created = np.array(created, dtype="datetime64[us]")[exp_index]
    nan = np.where(ok, 1.0, np.nan)
    runs = pd.DataFrame({
        "id": [f"{i:032x}" for i in range(n)], "experiment_id": np.array(exp_ids)[exp_index], "seq": seq,
        "clip": np.array([c[0] for c in CLIPS])[clip_index],
        "clip_start": np.array([c[1] for c in CLIPS])[clip_index],
        "clip_end": np.array([c[2] for c in CLIPS])[clip_index], "frames_expected": frames,
        "gpu": gpu, "price_gpu": gpu, "device_name": np.char.add("NVIDIA ", gpu.astype(str)),
        "repeat_index": (seq // (len(CLIPS) * len(GPUS))), "status": status,
        "error": np.where(ok, None, "CUDA out of memory"), "cold": seq % 10 == 0,
        "frames_in": frames, "frames_out": np.where(ok, frames, 0), "frames_done": np.where(ok, frames, 0),
        "frames_total": frames, "progress_stage": "upload",
        "fetch_seconds": 0.5 * nan, "model_load_seconds": 2.0 * nan, "decode_seconds": 1.0 * nan,
        "upscale_seconds": upscale * nan, "encode_seconds": 1.5 * nan, "upload_seconds": 0.3 * nan,
        "total_seconds": total * nan, "client_wall_seconds": (total + 3) * nan, "billed_seconds": total * nan,
        "cost_gpu": total * rate * nan, "cost_all_in": total * rate * 1.2 * nan, "fps": frames / total * nan,
        "upscale_fps": frames / upscale * nan, "psnr": rng.uniform(26, 34, n) * nan,
        "ssim": rng.uniform(0.8, 0.95, n) * nan, "bicubic_psnr": rng.uniform(24, 28, n) * nan,
        "bicubic_ssim": rng.uniform(0.7, 0.85, n) * nan,
        "model": np.array(exp_models)[exp_index], "engine": "fast", "precision": "fp16",
        "weights_provenance": "official", "torch_version": "2.14.1", "cuda_version": "13.0",
        "call_id": [f"fc-{i}" for i in range(n)],
        "created_at": run_created, "started_at": run_created, "finished_at": run_created,
        "heartbeat_at": run_created,
        "result_json": json.dumps({"status": "succeeded", "stages": {"total": 10.0}}),
    })
    return exps, runs


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, int]:
    """(median, max) seconds over repeats, and the row count of the last answer."""
    times, rows = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - started)
        if isinstance(answer, dict):  # history() -> its experiments; run_facets() -> its values
            rows = len(answer.get("experiments") or [v for vs in answer.values() for v in vs])
        elif isinstance(answer, pd.DataFrame):
            rows = len(answer)
        else:
            rows = int(answer is not None)
    return statistics.median(times), max(times), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--runs-per-experiment", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, default=None, help="database file (default: a temporary one)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "history.duckdb"
        db = Database(path)
        exps, runs = synthetic(args.experiments, args.runs_per_experiment)
        started = time.perf_counter()
        R.bulk_load(db, exps, runs)
        print(f"inserted {len(exps):,} experiments and {len(runs):,} runs in {time.perf_counter() - started:.2f} s "
              f"({path.stat().st_size / 1e6:.1f} MB)")

        middle = exps["id"].iloc[len(exps) // 2]
        picked = list(runs["id"].iloc[::max(1, len(runs) // 12)][:12])
        week = datetime(2026, 1, 1) + timedelta(days=20)
        queries: list[tuple[str, Callable[[], object]]] = [
            ("history: list_experiments(limit=50)", lambda: R.list_experiments(db, limit=50)),
            ("history: list_experiments() all", lambda: R.list_experiments(db)),
            ("history: list_runs(limit=500)", lambda: R.list_runs(db, limit=500)),
            ("history: list_runs(gpus, models, statuses, 7 days)", lambda: R.list_runs(
                db, gpus=["L4", "H100"], models=["x4plus"], statuses=["succeeded", "failed"],
                since=week, until=week + timedelta(days=7))),
            ("history: list_runs(statuses=[failed], limit=1000)", lambda: R.list_runs(db, statuses=["failed"], limit=1000)),
            ("history: list_runs(limit=1000) (page default)", lambda: R.list_runs(db, limit=1000)),
            ("history: run_facets() (filter choices)", lambda: R.run_facets(db)),
            ("history: active_runs()", lambda: R.active_runs(db)),
            ("compare: get_experiment(id)", lambda: R.get_experiment(db, middle)),
            ("compare: list_runs(experiment_id=...)", lambda: R.list_runs(db, experiment_id=middle)),
            ("compare: list_runs(run_ids=12 picked)", lambda: R.list_runs(db, run_ids=picked)),
            ("compare: get_run(id)", lambda: R.get_run(db, picked[3])),
            ("export: history(limit=20)", lambda: R.history(db, limit=20)),
        ]
        print(f"\n{'query':<52} {'median s':>9} {'max s':>9} {'rows':>7}")
        slow = []
        for name, fn in queries:
            median, worst, rows = timed(fn, args.repeats)
            flag = "" if worst < LIMIT_SECONDS else "  SLOW"
            print(f"{name:<52} {median:>9.4f} {worst:>9.4f} {rows:>7}{flag}")
            if flag:
                slow.append(name)
    if slow:
        print(f"\n{len(slow)} queries took {LIMIT_SECONDS} s or more", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
