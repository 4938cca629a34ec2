"""Rename a stored experiment (the name is one line, at most 200 characters)."""

from __future__ import annotations

import argparse

from bench.commands.common import add_db_option, existing_db
from bench.escape import one_line_text


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id")
    parser.add_argument("name")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    """Raises InputError for an unknown experiment or database or a bad name, StorageError."""
    from store.manage import rename_experiment

    name = rename_experiment(existing_db(args), args.experiment_id, args.name)
    print(f"renamed {args.experiment_id} to {one_line_text(name)}")
    return 0
