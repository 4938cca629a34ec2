"""Export a stored experiment: E6-format JSON (plus our fields) or a markdown findings section."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.commands.common import add_db_option, db_path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id")
    parser.add_argument("--format", choices=("json", "md"), default="json")
    parser.add_argument("--output", type=Path, default=None, help="file to write (default: stdout)")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    from bench.report import export_experiment
    from store.db import Database

    document = export_experiment(Database(db_path(args)), args.experiment_id, args.format)
    text = json.dumps(document, indent=2, default=str) if args.format == "json" else document
    if args.output:
        args.output.write_text(text if text.endswith("\n") else text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0
