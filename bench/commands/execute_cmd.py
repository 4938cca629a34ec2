"""Run the queued runs of a stored experiment (what the dashboard launches in the background).

Prints one line per run event ('cpu · fast · 0.3s · repeat 1 [1a2b3c4d]  upscale (4/10 frames)'):
the dashboard shows them as the background process's log, and a run's lines on its detail page."""

from __future__ import annotations

import argparse

from bench.commands.common import add_db_option, db_path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id", help="experiment whose queued runs to execute")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    import sys

    from bench.experiments import run_titles, short_id
    from bench.orchestrator import execute_experiment
    from bench.progress_display import ProgressDisplay
    from store.db import Database
    from store.runs import list_runs

    db = Database(db_path(args))
    runs = list_runs(db, experiment_id=args.experiment_id, statuses=["queued", "running"])
    labels = {run_id: f"{title} [{short_id(run_id)}]" for run_id, title in run_titles(runs).items()}
    print(f"experiment {args.experiment_id}: {len(labels)} run(s) to execute", flush=True)
    execute_experiment(db, args.experiment_id,
                       listener=ProgressDisplay(labels, stream=sys.stdout, tty=False))
    print(f"experiment {args.experiment_id}: done", flush=True)
    return 0
