"""How long each dashboard page takes to render with 100,000 stored runs.

Builds the same synthetic database as history_load.py, then renders every page through
Streamlit's AppTest (the script run server-side, without a browser) a few times and prints the
median and slowest render per page. The Compare page shows one experiment of 100 runs.

    .venv/bin/python benchmarks/dashboard_load.py [--experiments 1000] [--runs-per-experiment 100]

(AppTest's "missing ScriptRunContext" warnings go to stderr; the table goes to stdout.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from history_load import synthetic  # noqa: E402

PAGES = ("ui/run_page.py", "ui/history_page.py", "ui/compare_page.py", "ui/settings_page.py")


def render_seconds(page: str, query: dict[str, str], repeats: int) -> list[float]:
    """Wall seconds of `repeats` fresh renders of a page (each a new AppTest session)."""
    from streamlit.testing.v1 import AppTest

    times = []
    for _ in range(repeats):
        at = AppTest.from_file(str(ROOT / page), default_timeout=120)
        for key, value in query.items():
            at.query_params[key] = value
        began = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - began)
        if at.exception:
            raise SystemExit(f"{page} raised: {[e.value for e in at.exception]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--runs-per-experiment", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_DATA_DIR"] = tmp
        os.environ["BENCH_DB"] = str(Path(tmp) / "bench.duckdb")
        from store import runs as store_runs
        from store.db import Database

        db = Database(os.environ["BENCH_DB"])
        experiments, runs = synthetic(args.experiments, args.runs_per_experiment)
        store_runs.bulk_load(db, experiments, runs)
        middle = experiments["id"].iloc[len(experiments) // 2]
        print(f"{len(experiments):,} experiments, {len(runs):,} runs\n")
        print(f"{'page':<24} {'median s':>9} {'max s':>9}")
        for page in PAGES:
            query = {"experiment": middle} if "compare" in page else {}
            times = render_seconds(page, query, args.repeats)
            print(f"{page:<24} {statistics.median(times):>9.2f} {max(times):>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
