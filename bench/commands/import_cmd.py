"""Import a results file in the original experiment's (E6) JSON format as a new experiment.

Every result becomes a finished run (failed ones keep their reason); costs use the file's pricing.
Prints the new experiment's id.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.common import add_db_option, db_path
from bench.e6 import load_e6
from bench.e6_import import import_e6
from core.errors import InputError
from store.db import Database


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="E6-format results JSON")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    """Raises InputError for a bad file, StorageError for an unusable database."""
    e6 = load_e6(args.file)
    try:
        experiment_id = import_e6(Database(db_path(args)), e6, args.file.name)
    except InputError as exc:
        raise InputError(f"{args.file}: {exc}") from None
    print(experiment_id)
    return 0
