"""How fast Stop stops: a real local experiment (x4plus on this machine's CPU, random weights) is
started as the dashboard starts it (`python -m bench execute`, detached), and once its first run is
upscaling it is cancelled with bench.manage.cancel_experiment, as `bench cancel` and the live
view's Stop do. Prints how long cancelling took (until the running run's worker was gone), how long
until the executor exited, and what is stored.

    .venv/bin/python benchmarks/cancel_latency.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.manage import cancel_experiment  # noqa: E402
from bench.orchestrator import create_experiment, prepare_source  # noqa: E402
from bench.plan import build_plan  # noqa: E402
from store import runs as store_runs  # noqa: E402
from store.db import Database  # noqa: E402
from store.objects import LocalDirectoryStore  # noqa: E402


def one(root: Path) -> dict:
    """Start an experiment, cancel it mid-upscale; the timings and stored statuses."""
    os.environ["BENCH_DATA_DIR"] = str(root / "data")
    db = Database(root / "data" / "bench.duckdb")
    storage = LocalDirectoryStore(root / "data" / "objects")
    plan = build_plan("demo", weights="random", model="x4plus", engine="fast", repeats=1,
                      clips="long:0.0:1.5,later:0.0:0.5")
    experiment_id, run_ids = create_experiment(db, plan, prepare_source(plan.source, storage))
    executor = subprocess.Popen([sys.executable, "-m", "bench", "execute", experiment_id, "--db",
                                 str(db.path)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while store_runs.get_run(db, run_ids[0]).progress_stage != "upscale":
        if time.monotonic() > deadline:
            raise SystemExit("the first run never reached the upscale stage")
        time.sleep(0.05)
    started = time.monotonic()
    report = cancel_experiment(db, experiment_id, storage)
    cancelled = time.monotonic() - started
    executor.wait(timeout=120)
    exited = time.monotonic() - started
    statuses = [store_runs.get_run(db, r).status for r in run_ids]
    return {"cancel_seconds": cancelled, "executor_exit_seconds": exited, "statuses": statuses,
            "summary": report.summary(), "problems": list(report.problems)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(one(Path(tmp)))
    print(json.dumps(results, indent=2))
    cancel = [r["cancel_seconds"] for r in results]
    exit_ = [r["executor_exit_seconds"] for r in results]
    print(f"cancel (until the worker is gone): median {statistics.median(cancel):.2f} s, "
          f"max {max(cancel):.2f} s; executor exited after: median {statistics.median(exit_):.2f} s")
    return 0 if all(set(r["statuses"]) == {"cancelled"} for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
