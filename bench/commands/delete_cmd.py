"""Delete an experiment: its row, its runs and their outputs in the object store (nothing of any
other experiment). Needs --yes; an experiment still running must be cancelled first."""

from __future__ import annotations

import argparse

from bench.commands.common import add_db_option, existing_db
from core.errors import InputError


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id")
    parser.add_argument("--yes", action="store_true", help="really delete (there is no undo)")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    """Raises InputError without --yes, for an unknown experiment or database, or one still
    running; StorageError."""
    from bench.manage import delete_experiment
    from store.config import load_storage_config
    from store.objects import open_object_store

    db = existing_db(args)
    if not args.yes:
        from bench.experiments import load_experiment

        load_experiment(db, args.experiment_id)  # an unknown id says so first
        raise InputError(f"deleting {args.experiment_id} cannot be undone: add --yes to delete it")
    report = delete_experiment(db, args.experiment_id, open_object_store(load_storage_config()))
    print(f"deleted {args.experiment_id}: {report.runs} run(s), {report.objects} output object(s)")
    return 0
