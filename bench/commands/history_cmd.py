"""List stored experiments and their runs, newest first (--json: {"experiments": [{..., "runs": [...]}]})."""

from __future__ import annotations

import argparse
import json
import logging
import math
from typing import Any

from bench.commands.common import add_db_option, db_path, int_in
from bench.escape import one_line_text, terminal_text
from bench.experiments import history_with_figures
from bench.formatting import format_cost, repeat_label
from core.errors import StorageError
from store.db import Database

log = logging.getLogger(__name__)

MAX_LIMIT = 1_000_000_000
"""Largest --limit (more experiments than any history holds)."""

RUN_COLUMNS = (
    ("clip", "clip", "{}"), ("candidate", "candidate", "{}"), ("repeat_index", "repeat", repeat_label),
    ("status", "status", "{}"), ("device_name", "device", "{}"), ("job_seconds", "job s", "{:.2f}"),
    ("fps", "fps", "{:.2f}"), ("cost", "cost", format_cost), ("error", "error", "{}"),
)
"""(field, heading, format) of each column of the runs table."""


def register(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    parser.add_argument("--limit", type=int_in(0, MAX_LIMIT), default=None,
                        help="only the newest N experiments")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def main(args: argparse.Namespace) -> int:
    """Raises StorageError for an unusable database. A database file that does not exist yet has
    no experiments (and is not created). Runs whose process is gone are marked interrupted first."""
    path = db_path(args)
    if not path.exists():
        data: dict[str, Any] = {"experiments": []}
    else:
        db = Database(path)
        _recover(db)
        data = history_with_figures(db, limit=args.limit)
    if args.json:
        print(json.dumps(data, indent=2, allow_nan=False))
    else:
        print(terminal_text(render(data)) if data["experiments"] else f"no experiments in {path}")
    return 0


def _recover(db: Database) -> None:
    """Show runs whose process is gone as interrupted, not queued or running forever; a database
    that cannot be written now (a full disk) is still listed as it is."""
    from bench.liveness import recover_gone_runs

    try:
        recover_gone_runs(db)
    except StorageError as exc:
        log.warning("could not mark gone runs interrupted: %s", exc)


def render(data: dict[str, Any]) -> str:
    """The history as plain-text blocks: one header line per experiment, then its runs' table.
    Raises nothing."""
    blocks = []
    for e in data["experiments"]:
        counts: dict[str, int] = {}
        for run in e["runs"]:
            counts[run["status"]] = counts.get(run["status"], 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no runs"
        what = " ".join(one_line_text(x) for x in (e["model"], e["engine"], e["backend"]) if x)
        header = f"{e['id']}  {e['created_at'][:19]}  {one_line_text(e['name'])}  [{e['origin']}{', ' + what if what else ''}]  {summary}"
        blocks.append(header + ("\n" + _table(e["runs"]) if e["runs"] else ""))
    return "\n\n".join(blocks)


def _cell(value: Any, fmt: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    try:
        return one_line_text(fmt(value) if callable(fmt) else fmt.format(value))
    except (ValueError, TypeError):
        return one_line_text(value)


def _table(runs: list[dict[str, Any]]) -> str:
    rows = [[h for _, h, _ in RUN_COLUMNS]]
    rows += [[_cell(run.get(field), fmt) for field, _, fmt in RUN_COLUMNS] for run in runs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(RUN_COLUMNS))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
