"""Run the queued runs of a stored experiment (what the dashboard launches in the background).

Prints one line per run event ('cpu · fast · 0.3s · repeat 1 [1a2b3c4d]  upscale (4/10 frames)'):
the dashboard shows them as the background process's log, and a run's lines on its detail page."""

from __future__ import annotations

import argparse

from bench.commands import exits
from bench.commands.common import add_db_option, db_path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id", help="experiment whose queued runs to execute")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    """Exit 0 when every run of the experiment succeeded (those another live process holds
    aside), 1 when some failed or were interrupted (bench.commands.exits). Raises InputError for
    an unknown experiment or when another live process holds every unfinished run, StorageError."""
    import sys

    from bench.experiments import run_titles, short_id
    from bench.orchestrator import execute_experiment
    from bench.progress_display import ProgressDisplay
    from core.errors import InputError
    from core.status import ACTIVE_STATUSES, SUCCEEDED
    from store import runs as store_runs
    from store.db import Database

    db = Database(db_path(args))
    runs = store_runs.list_runs(db, experiment_id=args.experiment_id, statuses=list(ACTIVE_STATUSES))
    labels = {run_id: f"{title} [{short_id(run_id)}]" for run_id, title in run_titles(runs).items()}
    print(f"experiment {args.experiment_id}: {len(labels)} run(s) to execute", flush=True)
    execution = execute_experiment(db, args.experiment_id,
                                   listener=ProgressDisplay(labels, stream=sys.stdout, tty=False))
    if execution.held:
        holders = ", ".join(sorted(set(execution.held.values())))
        note = (f"{len(execution.held)} run(s) are held by another live process ({holders}), "
                f"which executes them")
        if not execution.claimed:
            raise InputError(f"experiment {args.experiment_id}: nothing executed here: {note}; "
                             f"wait for it or stop it first")
        print(f"experiment {args.experiment_id}: {note}; left to it", flush=True)
    print(f"experiment {args.experiment_id}: done", flush=True)
    runs = store_runs.list_runs(db, experiment_id=args.experiment_id)
    statuses = set(runs[~runs["id"].isin(list(execution.held))]["status"])
    return exits.OK if statuses <= {SUCCEEDED} else exits.RUNS_FAILED
