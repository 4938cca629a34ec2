"""Show an experiment's computed bill beside what Modal's own billing report says for the app in
the same hours, with the difference. Needs a Modal token whose workspace may read billing; says in
one line why when it may not.
"""

from __future__ import annotations

import argparse
import json

from bench.commands.common import add_db_option, db_path


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments. Raises nothing."""
    parser.add_argument("experiment_id")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds the billing report may take (default 60)")
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="print the reconciliation as JSON")


def main(args: argparse.Namespace) -> int:
    """Raises InputError (exit 2, one line) for an unknown experiment, StorageError. Exits 1
    when Modal's side is unavailable."""
    from bench.reconcile import reconcile, render
    from store.db import Database

    rec = reconcile(Database(db_path(args)), args.experiment_id, timeout=args.timeout)
    print(json.dumps(rec.to_dict(), indent=2) if args.json else render(rec))
    return 0 if rec.modal_cost is not None else 1
