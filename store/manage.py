"""Changing and removing stored experiments: rename, notes and tags, cancelling their active runs,
deleting them with their runs. Each is one transaction on the shared file (store.db); objects in
the object store are the caller's business (the bench layer deletes them before the rows)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

import duckdb

from core.errors import InputError
from core.status import ACTIVE_STATUSES, CANCELLED
from store.db import Database
from store.runs import RUN_COLUMNS, RunRow

NAME_LIMIT = 200
"""Longest experiment name accepted (characters)."""
NOTES_LIMIT = 10_000
"""Longest notes accepted (characters)."""
TAG_LIMIT = 40
"""Longest tag accepted (characters); a tag is one word-like label without commas."""

_ACTIVE = ", ".join(f"'{s}'" for s in ACTIVE_STATUSES)
_RUN_SELECT = ", ".join(f'"{c}"' for c in RUN_COLUMNS)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _require_experiment(con: duckdb.DuckDBPyConnection, experiment_id: str) -> None:
    if not con.execute("SELECT count(*) FROM experiments WHERE id = ?", [experiment_id]).fetchall()[0][0]:
        raise InputError(f"no experiment {experiment_id!r} in the database")


def clean_name(name: str) -> str:
    """The name on one line, trimmed. Raises InputError when empty or longer than NAME_LIMIT."""
    text = " ".join(str(name).split())
    if not text:
        raise InputError("an experiment needs a name (it is empty)")
    if len(text) > NAME_LIMIT:
        raise InputError(f"an experiment name is at most {NAME_LIMIT} characters, not {len(text)}")
    return text


def clean_tags(tags: Sequence[str]) -> list[str]:
    """Tags trimmed, in order, without repeats. Raises InputError for an empty, too long or
    comma-holding tag."""
    out: list[str] = []
    for tag in tags:
        text = " ".join(str(tag).split())
        if not text or "," in text or len(text) > TAG_LIMIT:
            raise InputError(f"a tag is 1 to {TAG_LIMIT} characters without commas, not {tag!r}")
        if text not in out:
            out.append(text)
    return out


def rename_experiment(db: Database, experiment_id: str, name: str) -> str:
    """Give the experiment a new name; returns it as stored (one line, trimmed). Raises InputError
    for an unknown experiment or a bad name, StorageError."""
    text = clean_name(name)

    def apply(con: duckdb.DuckDBPyConnection) -> str:
        _require_experiment(con, experiment_id)
        con.execute("UPDATE experiments SET name = ? WHERE id = ?", [text, experiment_id])
        return text

    return db.write(apply)


def annotate_experiment(db: Database, experiment_id: str, notes: str | None = None,
                        add_tags: Sequence[str] = (), remove_tags: Sequence[str] = ()) -> tuple[str | None, list[str]]:
    """Replace the experiment's notes (None keeps them, '' clears them) and add/remove tags;
    returns (notes, tags) as stored. Raises InputError for an unknown experiment, notes longer
    than NOTES_LIMIT or a bad tag, StorageError."""
    if notes is not None and len(notes) > NOTES_LIMIT:
        raise InputError(f"notes are at most {NOTES_LIMIT} characters, not {len(notes)}")
    added, removed = clean_tags(add_tags), set(clean_tags(remove_tags))

    def apply(con: duckdb.DuckDBPyConnection) -> tuple[str | None, list[str]]:
        _require_experiment(con, experiment_id)
        current_notes, current_tags = con.execute(
            "SELECT notes, tags FROM experiments WHERE id = ?", [experiment_id]).fetchall()[0]
        tags = [t for t in clean_tags([*(current_tags or []), *added]) if t not in removed]
        text = current_notes if notes is None else (notes.strip() or None)
        con.execute("UPDATE experiments SET notes = ?, tags = ? WHERE id = ?",
                    [text, tags or None, experiment_id])
        return text, tags

    return db.write(apply)


def cancel_active_runs(db: Database, experiment_id: str, reason: str) -> list[RunRow]:
    """Mark every queued or running run of the experiment cancelled (with the reason), in one
    transaction; returns those runs as they were just before (their worker pid and Modal call id
    say who has to stop). Runs that already ended are untouched. Raises InputError for an unknown
    experiment, StorageError."""
    reason = " ".join(str(reason).split()) or "cancelled"

    def apply(con: duckdb.DuckDBPyConnection) -> list[RunRow]:
        _require_experiment(con, experiment_id)
        con.execute(f"SELECT {_RUN_SELECT} FROM runs WHERE experiment_id = ? AND status IN ({_ACTIVE}) "
                    f"ORDER BY seq", [experiment_id])
        names = [d[0] for d in con.description]
        active = [RunRow(**dict(zip(names, row))) for row in con.fetchall()]
        changed = {row[0] for row in con.execute(
            f"UPDATE runs SET status = ?, error = ?, finished_at = ? "
            f"WHERE experiment_id = ? AND status IN ({_ACTIVE}) RETURNING id",
            [CANCELLED, reason, _now(), experiment_id]).fetchall()}
        return [run for run in active if run.id in changed]

    return db.write(apply)


def cancelled_among(db: Database, run_ids: Sequence[str]) -> set[str]:
    """Those of these runs that were cancelled (one narrow read; executors poll it). Raises
    StorageError."""
    if not run_ids:
        return set()
    frame = db.read("SELECT id FROM runs WHERE status = ? AND id IN (SELECT unnest(?::VARCHAR[]))",
                    [CANCELLED, list(run_ids)])
    return set(frame["id"])


def deletable_run_ids(db: Database, experiment_id: str) -> list[str]:
    """The ids of the experiment's runs, when it may be deleted. Raises InputError for an unknown
    experiment or one with runs still queued or running (cancel it first), StorageError."""
    with db.connect(read_only=True) as con:
        return _deletable(con, experiment_id)


def _deletable(con: duckdb.DuckDBPyConnection, experiment_id: str) -> list[str]:
    _require_experiment(con, experiment_id)
    rows = con.execute("SELECT id, status FROM runs WHERE experiment_id = ? ORDER BY seq",
                       [experiment_id]).fetchall()
    active = sum(status in ACTIVE_STATUSES for _, status in rows)
    if active:
        raise InputError(f"experiment {experiment_id} still has {active} queued or running "
                         f"run(s): cancel it first (bench cancel {experiment_id})")
    return [run_id for run_id, _ in rows]


def delete_experiment(db: Database, experiment_id: str) -> int:
    """Remove the experiment and its runs (no other rows), in one transaction; returns how many
    runs went. Raises InputError as deletable_run_ids does, StorageError."""
    def apply(con: duckdb.DuckDBPyConnection) -> int:
        _deletable(con, experiment_id)
        runs = len(con.execute("DELETE FROM runs WHERE experiment_id = ? RETURNING id",
                               [experiment_id]).fetchall())
        con.execute("DELETE FROM experiments WHERE id = ?", [experiment_id])
        return runs

    return db.write(apply)
