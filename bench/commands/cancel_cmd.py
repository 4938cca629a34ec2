"""Cancel an experiment: its queued runs never start, its running ones stop (local workers are ended
by their executor, Modal calls are cancelled), all are stored as cancelled and whatever they wrote
is removed. Runs that already ended are kept as they are. Exit 1 when something could not be
stopped (each reason is printed; the runs are cancelled in the store all the same)."""

from __future__ import annotations

import argparse
import sys

from bench.commands import exits
from bench.commands.common import add_db_option, existing_db
from bench.escape import one_line_text


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    """Raises InputError for an unknown experiment or database, StorageError."""
    from bench.manage import cancel_experiment
    from store.config import load_storage_config
    from store.objects import open_object_store

    db = existing_db(args)
    report = cancel_experiment(db, args.experiment_id, open_object_store(load_storage_config()))
    print(report.summary())
    for problem in report.problems:
        print(f"warning: {one_line_text(problem)}", file=sys.stderr)
    return exits.RUNS_FAILED if report.problems else exits.OK
