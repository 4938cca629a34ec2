"""Run the queued runs of a stored experiment (what the dashboard launches in the background)."""

from __future__ import annotations

import argparse

from bench.commands import exits
from bench.commands.common import add_db_option, db_path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id", help="experiment whose queued runs to execute")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    """Exit 0 when every run of the experiment succeeded, 1 when some failed or were interrupted
    (bench.commands.exits). Raises InputError for an unknown experiment, StorageError."""
    from bench.orchestrator import execute_experiment
    from core.status import SUCCEEDED
    from store import runs as store_runs
    from store.db import Database

    db = Database(db_path(args))
    execute_experiment(db, args.experiment_id)
    statuses = set(store_runs.list_runs(db, experiment_id=args.experiment_id)["status"])
    return exits.OK if statuses <= {SUCCEEDED} else exits.RUNS_FAILED
