"""Run the queued runs of a stored experiment (what the dashboard launches in the background)."""

from __future__ import annotations

import argparse

from bench.commands.common import add_db_option, db_path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id", help="experiment whose queued runs to execute")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    from bench.orchestrator import execute_experiment
    from store.db import Database

    execute_experiment(Database(db_path(args)), args.experiment_id)
    return 0
