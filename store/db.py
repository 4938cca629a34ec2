"""The DuckDB file behind the run history: schema, migrations and short-lived connections.

DuckDB lets one process at a time open a database file read-write, and a read-write holder locks
out readers in other processes too. So no process keeps the file: every operation attaches it to
the process's own in-memory DuckDB instance, works through a cursor of its own and detaches it,
which releases the file for the dashboard, a CLI run and a second CLI that share it. (Attaching to
a live instance costs a few milliseconds; opening a fresh connection costs ~20.) Processes queue
fairly on two advisory lock files beside the database (a "gate" and the lock itself, flock(2)):
readers share the lock, a writer holds it alone, and whoever waits at the gate goes next, so a
process writing in a tight loop cannot starve the others. Behind that, attaching is retried with
jittered exponential back-off in case a process that does not use these lock files holds the file.
Everything is bounded by `timeout`, after which StorageError names the file. Threads each use their
own cursor and never share one.

A full disk: a commit that cannot reach the write-ahead log fails whole (StorageError, one line;
nothing is half-written, what was stored before is intact, later writes work once there is room).
A commit that did reach the log stands even when the checkpoint on detach then finds no room: the
log is replayed the next time the file is opened, so that failure is only logged.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import duckdb
import pandas as pd

from core.errors import StorageError
from core.status import RUN_STATUSES

try:  # flock is POSIX; elsewhere operations are serialised inside the process only.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
"""Seconds an operation waits for the file before giving up with StorageError."""


ORIGINS = ("run", "import")
"""How an experiment got into the database."""


def _sql_strings(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_FIRST_STATUSES = ("queued", "running", "succeeded", "failed", "interrupted")
"""The run statuses schema version 1 allowed (later ones come with their migration)."""
_STATUS_LIST = _sql_strings(_FIRST_STATUSES)
_ORIGIN_LIST = _sql_strings(ORIGINS)


def _allow_every_status(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild the runs table (rows, indexes) with a CHECK allowing every status of
    core.status.RUN_STATUSES: DuckDB cannot alter a CHECK constraint in place."""
    ddl = con.execute("SELECT sql FROM duckdb_tables() WHERE database_name = current_database() "
                      "AND table_name = 'runs'").fetchall()[0][0]
    new_ddl, checks = re.subn(r"CHECK\(\(status IN \([^)]*\)\)\)",
                              f"CHECK((status IN ({_sql_strings(RUN_STATUSES)})))", ddl)
    if checks != 1:
        raise StorageError("cannot migrate the runs table: its status check is not the expected one")
    indexes = [row[0] for row in con.execute(
        "SELECT sql FROM duckdb_indexes() WHERE database_name = current_database() "
        "AND table_name = 'runs'").fetchall()]
    con.execute(new_ddl.replace("CREATE TABLE runs(", "CREATE TABLE runs_migrating(", 1))
    con.execute("INSERT INTO runs_migrating BY NAME SELECT * FROM runs")
    for name, in con.execute("SELECT index_name FROM duckdb_indexes() WHERE database_name = "
                             "current_database() AND table_name = 'runs'").fetchall():
        con.execute(f"DROP INDEX {name}")
    con.execute("DROP TABLE runs")
    con.execute("ALTER TABLE runs_migrating RENAME TO runs")
    for sql in indexes:
        con.execute(sql)


MIGRATIONS: tuple[tuple[str | Callable[[duckdb.DuckDBPyConnection], None], ...], ...] = (
    # 1: experiments and their runs.
    (
        f"""
        CREATE TABLE experiments (
            id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            name VARCHAR NOT NULL,
            preset VARCHAR,
            source VARCHAR,
            plan_json VARCHAR,
            model VARCHAR,
            engine VARCHAR,
            backend VARCHAR,
            price_table_date VARCHAR,
            price_table_json VARCHAR,
            notes VARCHAR,
            origin VARCHAR NOT NULL CHECK (origin IN ({_ORIGIN_LIST})),
            "commit" VARCHAR,
            schema_version INTEGER NOT NULL
        )
        """,
        f"""
        CREATE TABLE runs (
            id VARCHAR PRIMARY KEY,
            experiment_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            clip VARCHAR NOT NULL,
            clip_start DOUBLE,
            clip_end DOUBLE,
            frames_expected INTEGER,
            gpu VARCHAR NOT NULL,
            price_gpu VARCHAR,
            device_name VARCHAR,
            repeat_index INTEGER NOT NULL,
            status VARCHAR NOT NULL CHECK (status IN ({_STATUS_LIST})),
            error VARCHAR,
            cold BOOLEAN,
            frames_in INTEGER,
            frames_out INTEGER,
            frames_done INTEGER,
            frames_total INTEGER,
            progress_stage VARCHAR,
            output_width INTEGER,
            output_height INTEGER,
            output_key VARCHAR,
            output_bytes BIGINT,
            fetch_seconds DOUBLE,
            model_load_seconds DOUBLE,
            decode_seconds DOUBLE,
            upscale_seconds DOUBLE,
            encode_seconds DOUBLE,
            upload_seconds DOUBLE,
            total_seconds DOUBLE,
            client_wall_seconds DOUBLE,
            billed_seconds DOUBLE,
            cost_gpu DOUBLE,
            cost_all_in DOUBLE,
            fps DOUBLE,
            upscale_fps DOUBLE,
            psnr DOUBLE,
            ssim DOUBLE,
            bicubic_psnr DOUBLE,
            bicubic_ssim DOUBLE,
            fidelity_frames INTEGER,
            model VARCHAR,
            engine VARCHAR,
            "precision" VARCHAR,
            weights_provenance VARCHAR,
            weights_sha256 VARCHAR,
            torch_version VARCHAR,
            cuda_version VARCHAR,
            call_id VARCHAR,
            worker_pid INTEGER,
            worker_host VARCHAR,
            created_at TIMESTAMP NOT NULL,
            started_at TIMESTAMP,
            finished_at TIMESTAMP,
            heartbeat_at TIMESTAMP,
            result_json VARCHAR
        )
        """,
        # Compare and history views select one experiment's runs; ids are looked up one at a time.
        "CREATE INDEX runs_experiment_idx ON runs (experiment_id)",
        "CREATE INDEX experiments_created_idx ON experiments (created_at)",
    ),
    # 2: the compile and queue-wait stages, the encoder and container of each run.
    (
        "ALTER TABLE runs ADD COLUMN queue_wait_seconds DOUBLE",
        "ALTER TABLE runs ADD COLUMN compile_seconds DOUBLE",
        "ALTER TABLE runs ADD COLUMN compile_choice VARCHAR",
        "ALTER TABLE runs ADD COLUMN encoder VARCHAR",
        "ALTER TABLE runs ADD COLUMN encode_preset VARCHAR",
        "ALTER TABLE runs ADD COLUMN encode_psnr DOUBLE",
        "ALTER TABLE runs ADD COLUMN cpu_cores DOUBLE",
        "ALTER TABLE runs ADD COLUMN container_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN container_started_at DOUBLE",
    ),
    # 3: what the bill needs per run: the job's span on the worker's clock, its steady-state
    # seconds, and the CPU and memory it used against what its container requested.
    (
        "ALTER TABLE runs ADD COLUMN job_started_at DOUBLE",
        "ALTER TABLE runs ADD COLUMN job_finished_at DOUBLE",
        "ALTER TABLE runs ADD COLUMN steady_seconds DOUBLE",
        "ALTER TABLE runs ADD COLUMN cpu_used_cores DOUBLE",
        "ALTER TABLE runs ADD COLUMN peak_memory_gib DOUBLE",
        "ALTER TABLE runs ADD COLUMN memory_gib DOUBLE",
    ),
    # 4: one definition of a run's seconds (core.stages): job seconds (fetch to the end of the
    # upload, less model load and compile) replace the span-based steady seconds; start-up is
    # stored on its own; the measurement-only fidelity stage gets its column; fps and billed
    # seconds follow the definitions.
    (
        "ALTER TABLE runs ADD COLUMN job_seconds DOUBLE",
        "ALTER TABLE runs ADD COLUMN startup_seconds DOUBLE",
        "ALTER TABLE runs ADD COLUMN fidelity_seconds DOUBLE",
        """UPDATE runs SET job_seconds = CASE
               WHEN total_seconds IS NOT NULL THEN greatest(0.0, total_seconds
                   - coalesce(model_load_seconds, 0.0) - coalesce(compile_seconds, 0.0))
               ELSE coalesce(billed_seconds, client_wall_seconds) END""",
        """UPDATE runs SET startup_seconds = coalesce(model_load_seconds, 0.0)
               + coalesce(compile_seconds, 0.0)
               + CASE WHEN cold AND billed_seconds IS NOT NULL AND total_seconds IS NOT NULL
                      THEN greatest(0.0, billed_seconds - total_seconds) ELSE 0.0 END
           WHERE job_seconds IS NOT NULL""",
        """UPDATE runs SET fps = CASE WHEN job_seconds > 0 AND frames_out > 0
               THEN frames_out / job_seconds END""",
        "UPDATE runs SET billed_seconds = job_seconds + startup_seconds WHERE job_seconds IS NOT NULL",
        # DuckDB drops a column only from a table no index depends on.
        "DROP INDEX runs_experiment_idx",
        "ALTER TABLE runs DROP COLUMN steady_seconds",
        "CREATE INDEX runs_experiment_idx ON runs (experiment_id)",
    ),
    # 5: runs the user cancelled; an experiment's tags (its notes were there from the start).
    (
        _allow_every_status,
        "ALTER TABLE experiments ADD COLUMN tags VARCHAR[]",
    ),
)
"""Forward migrations: step N (1-based) takes the schema from version N-1 to N, each statement SQL
or a function of the connection (for what SQL alone cannot say). Append only."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes and reads."""


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Every table of the current database and its column names."""
    rows = con.execute("SELECT table_name, column_name FROM duckdb_columns() "
                       "WHERE database_name = current_database()").fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def _apply(con: duckdb.DuckDBPyConnection,
           statement: str | Callable[[duckdb.DuckDBPyConnection], None]) -> None:
    """Run one migration statement: SQL text, or a function of the connection."""
    if callable(statement):
        statement(con)
    else:
        con.execute(statement)


@functools.cache
def _expected_columns() -> dict[str, frozenset[str]]:
    """The tables and columns MIGRATIONS create (applied once to a throwaway in-memory database)."""
    con = duckdb.connect(":memory:")
    try:
        for step in MIGRATIONS:
            for statement in step:
                _apply(con, statement)
        return {table: frozenset(columns) for table, columns in _columns(con).items()}
    finally:
        con.close()


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


_DISK_FULL = ("No space left on device", "Disk quota exceeded", "disk is full")
_FILE_SYSTEM = _DISK_FULL + ("Read-only file system", "Permission denied", "Could not write file")


def _is_file_system_error(exc: BaseException) -> bool:
    """Whether a DuckDB error comes from the file system (full, read-only, not writable)."""
    return isinstance(exc, duckdb.IOException) or any(t in str(exc) for t in _FILE_SYSTEM)


class _Waiter:
    """Jittered exponential back-off until a deadline."""

    def __init__(self, deadline: float, cap: float):
        self.deadline = deadline
        self.delay = 0.001
        self.cap = cap

    def wait(self) -> bool:
        """Sleep a little; False when the deadline has passed (nothing slept then)."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, random.uniform(0.5, 1.0) * self.delay))
        self.delay = min(self.delay * 2, self.cap)
        return True


@dataclass
class _Attachment:
    read_only: bool
    users: int


class _Host:
    """This process's in-memory DuckDB instance, to which database files are attached while used."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.serial = threading.RLock()  # without flock: one operation at a time in this process
        self.pid: int | None = None
        self.con: duckdb.DuckDBPyConnection | None = None
        self.attached: dict[str, _Attachment] = {}

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor of the instance (created after a fork, never shared). Call under mutex."""
        if self.con is None or self.pid != os.getpid():
            self.con, self.pid, self.attached = duckdb.connect(":memory:"), os.getpid(), {}
        return self.con.cursor()

    def attach(self, path: Path, alias: str, read_only: bool) -> bool:
        """Attach the file (or count one more user of it); False if another process holds it.
        Raises duckdb.Error for anything but a lock conflict."""
        with self.mutex:
            current = self.attached.get(alias)
            if current is not None:
                if current.read_only != read_only:
                    raise RuntimeError(f"{path} is attached {'read-only' if current.read_only else 'read-write'}")
                current.users += 1
                return True
            cur = self.cursor()
            try:
                quoted = str(path).replace("'", "''")
                cur.execute(f"ATTACH '{quoted}' AS {alias}{' (READ_ONLY)' if read_only else ''}")
            except duckdb.Error as exc:
                if _is_lock_error(exc):
                    return False
                raise
            finally:
                cur.close()
            self.attached[alias] = _Attachment(read_only, 1)
            return True

    def detach(self, alias: str) -> None:
        """One user fewer; the last one detaches (checkpointing and releasing the file)."""
        with self.mutex:
            current = self.attached[alias]
            current.users -= 1
            if current.users:
                return
            del self.attached[alias]
            cur = self.cursor()
            try:
                cur.execute(f"DETACH {alias}")
            except duckdb.Error as exc:
                if not _is_file_system_error(exc):
                    raise
                # Committed work is in the write-ahead log, which the next attach replays; only
                # folding it into the file failed (a full disk). Nothing is lost: say so and go on.
                log.warning("checkpoint of %s on detach failed (%s); its write-ahead log keeps "
                            "the data", alias, " ".join(str(exc).split())[:300])
            finally:
                cur.close()


_HOST = _Host()


@dataclass
class _InUse:
    """What this thread holds of one database file (so nested use reuses it, never deadlocks)."""

    con: duckdb.DuckDBPyConnection
    read_only: bool
    in_transaction: bool = False


_THREAD = threading.local()


def _in_use() -> dict[str, _InUse]:
    if not hasattr(_THREAD, "files"):
        _THREAD.files = {}
    return _THREAD.files


class Database:
    """A DuckDB file shared by several processes through short-lived connections."""

    def __init__(self, path: Path | str, *, timeout: float = DEFAULT_TIMEOUT, migrate: bool = True):
        """Open (creating it and its directory if needed) and migrate the database at path.

        Raises StorageError if the directory cannot be created, the file is not a DuckDB database,
        is another application's (tables but no schema version) or damaged (a schema version that
        is no number, tables or columns missing), its schema is newer than this code, or the file
        stays locked for `timeout` seconds. A refused file is never written to.
        """
        self.path = Path(path).resolve()
        self.timeout = timeout
        self._alias = "bench_" + hashlib.sha1(str(self.path).encode()).hexdigest()[:16]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the database directory {self.path.parent}: {exc.strerror}") from exc
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------------

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of this thread's own on the database; the file is released on exit.

        Nested use on one thread reuses the outer cursor; a write inside a read is a bug and
        raises RuntimeError. Raises StorageError when the file stays locked past the timeout or
        cannot be opened.
        """
        held = _in_use()
        outer = held.get(self._alias)
        if outer is not None:
            if not read_only and outer.read_only:
                raise RuntimeError("a write connection was asked for inside a read-only one")
            yield outer.con
            return
        deadline = time.monotonic() + self.timeout
        with self._file_lock(shared=read_only, deadline=deadline):
            self._attach(read_only, deadline)
            try:
                with _HOST.mutex:
                    con = _HOST.cursor()
                try:
                    con.execute(f"USE {self._alias}")
                    held[self._alias] = _InUse(con, read_only)
                    yield con
                except duckdb.Error as exc:
                    if _is_file_system_error(exc):
                        raise self._file_system_error(exc) from exc
                    raise
                finally:
                    held.pop(self._alias, None)
                    con.close()
            finally:
                _HOST.detach(self._alias)

    def read(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run one query on a read-only connection and return all rows. Raises StorageError."""
        with self.connect(read_only=True) as con:
            return con.execute(sql, params).df()

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Call fn(connection) inside one transaction, committed if fn returns, rolled back if it
        raises (the exception propagates). Raises StorageError as connect() does."""
        with self.connect() as con:
            state = _in_use()[self._alias]
            if state.in_transaction:
                return fn(con)
            con.execute("BEGIN TRANSACTION")
            state.in_transaction = True
            try:
                value = fn(con)
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:  # the transaction is already gone (a failed statement)
                    pass
                raise
            finally:
                state.in_transaction = False
            con.execute("COMMIT")
            return value

    # -- schema --------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The version the file is at (0 for a new file). Raises StorageError."""
        with self.connect(read_only=not self._is_empty()) as con:
            return self._version(con)

    def migrate(self) -> int:
        """Apply the missing forward migrations in one transaction; return the schema version.

        Idempotent, and safe when several processes open a new file at once. Raises StorageError
        when the file's schema is newer than this code's, or the file is another application's or
        damaged (see __init__).
        """
        if not self._is_empty():
            with self.connect(read_only=True) as con:
                current = self._version(con)
                self._check_not_newer(current)
                if current == SCHEMA_VERSION:
                    self._check_complete(con)
                    return current

        def apply(con: duckdb.DuckDBPyConnection) -> int:
            con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
            current = self._version(con)
            self._check_not_newer(current)
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    _apply(con, statement)
            con.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )
            return SCHEMA_VERSION

        return self.write(apply)

    def _check_not_newer(self, current: int) -> None:
        if current > SCHEMA_VERSION:
            raise StorageError(
                f"database {self.path} has schema version {current}, newer than this program's "
                f"{SCHEMA_VERSION}: update the program or use another --db"
            )

    def _version(self, con: duckdb.DuckDBPyConnection) -> int:
        """The stored schema version, 0 for a file without tables. Raises StorageError for
        another application's database (tables but no schema version: it is never written to)
        and for a version that is not a whole number."""
        tables = set(_columns(con))
        if "meta" not in tables:
            if tables:
                raise StorageError(
                    f"database {self.path} is not this program's history (it holds other tables: "
                    f"{', '.join(sorted(tables)[:5])}); it was left untouched: use another --db")
            return 0
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        try:
            return int(rows[0][0]) if rows else 0
        except (TypeError, ValueError):
            raise StorageError(f"database {self.path} has schema version {str(rows[0][0])[:40]!r}, "
                               f"not a number: it is damaged; restore a backup or use another "
                               f"--db") from None

    def _check_complete(self, con: duckdb.DuckDBPyConnection) -> None:
        """Raises StorageError naming the tables or columns missing from a file at this code's
        schema version (dropped by hand or by another program)."""
        present = _columns(con)
        missing = [f"{table}.{column}" if table in present else table
                   for table, columns in _expected_columns().items()
                   for column in (sorted(columns - present[table]) if table in present else [""])]
        if missing:
            shown = ", ".join(m.rstrip(".") for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise StorageError(f"database {self.path} is damaged: {shown} missing; restore a backup "
                               f"or use another --db")

    def _is_empty(self) -> bool:
        try:
            return self.path.stat().st_size == 0
        except FileNotFoundError:
            return True

    # -- locking -------------------------------------------------------------------------------

    @contextmanager
    def _file_lock(self, *, shared: bool, deadline: float) -> Iterator[None]:
        """Hold the advisory lock (shared for readers) for the duration, queuing at the gate."""
        if fcntl is None:
            with _HOST.serial:
                yield
            return
        gate = self._lock_fd(".gate")
        lock = None
        try:
            self._flock(gate, fcntl.LOCK_EX, deadline, cap=0.02)
            try:
                lock = self._lock_fd(".lock")
                # First in line: poll often, the holder is about to let go.
                self._flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, deadline, cap=0.004)
            finally:
                os.close(gate)  # releases the gate: the next in line may now wait for the lock
                gate = None
            yield
        finally:
            if gate is not None:
                os.close(gate)
            if lock is not None:
                os.close(lock)

    def _lock_fd(self, suffix: str) -> int:
        path = f"{self.path}{suffix}"
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise StorageError(f"cannot open the lock file {path}: {exc.strerror}") from exc

    def _flock(self, fd: int, mode: int, deadline: float, cap: float) -> None:
        waiter = _Waiter(deadline, cap)
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if not waiter.wait():
                    raise self._busy() from None

    def _attach(self, read_only: bool, deadline: float) -> None:
        waiter = _Waiter(deadline, cap=0.05)
        while True:
            try:
                if _HOST.attach(self.path, self._alias, read_only):
                    return
            except duckdb.Error as exc:
                if any(t in str(exc) for t in _DISK_FULL):
                    raise self._file_system_error(exc) from exc
                raise StorageError(f"cannot open database {self.path}: {' '.join(str(exc).split())}") from exc
            if not waiter.wait():
                raise self._busy()

    def _file_system_error(self, exc: BaseException) -> StorageError:
        if any(t in str(exc) for t in _DISK_FULL):
            return StorageError(f"the disk holding {self.path} is full, so nothing was stored; free "
                                f"some space and try again (what was stored before is intact)")
        return StorageError(f"cannot write database {self.path}: {' '.join(str(exc).split())[:300]}")

    def _busy(self) -> StorageError:
        return StorageError(
            f"database {self.path} stayed locked by another process for {self.timeout:g} s; try again"
        )
