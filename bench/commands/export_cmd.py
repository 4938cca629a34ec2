"""Export a stored experiment: E6-format JSON (plus our fields) or a markdown findings section.

JSON exports are strict JSON (no NaN or Infinity); untrusted names in markdown are escaped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.commands.common import add_db_option, check_output_file, db_path, write_output_file


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id")
    parser.add_argument("--format", choices=("json", "md"), default="json")
    parser.add_argument("--output", type=Path, default=None, help="file to write (default: stdout)")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    """Raises InputError for an unknown experiment or an output path that cannot be written
    (a directory, a missing folder), StorageError for an unusable database."""
    from bench.report import export_experiment
    from core.jsonsafe import json_safe
    from store.db import Database

    if args.output:
        check_output_file(args.output, db=db_path(args))
    document = export_experiment(Database(db_path(args)), args.experiment_id, args.format)
    if args.format == "json":
        text = json.dumps(json_safe(document), indent=2, default=str, allow_nan=False)
    else:
        text = document
    if args.output:
        write_output_file(args.output, text if text.endswith("\n") else text + "\n", db=db_path(args))
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0
