"""Is the process behind a run still there? The store asks through a callable; the answer is the
bench layer's business (it knows about local worker pids and Modal calls)."""

from __future__ import annotations

import os
import socket

from store.db import Database
from store.runs import RunRow, recover_interrupted


def pid_exists(pid: int) -> bool:
    """Whether a process with this id runs on this machine; a zombie (dead, waiting for a parent
    that may never reap it, as under a container's minimal init) does not. Raises nothing."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):  # no /proc (not Linux) or the process just went
        return False


def worker_is_alive(run: RunRow, *, host: str | None = None) -> bool:
    """The default liveness check: a Modal run (call id set) is the Modal poller's business and
    counts as alive; a local run is alive while its worker pid exists on this host (a worker on
    another host cannot be checked and counts as alive); a running run with neither a pid nor a
    call id has nothing to check and counts as gone. Raises nothing."""
    if run.call_id:
        return True
    if run.worker_pid is None:
        return False
    if run.worker_host and run.worker_host != (host or socket.gethostname()):
        return True
    return pid_exists(run.worker_pid)


def recover_gone_runs(db: Database) -> int:
    """Mark runs whose worker is gone as interrupted (store.runs.recover_interrupted with
    worker_is_alive); returns how many. Raises StorageError."""
    return recover_interrupted(db, lambda run: worker_is_alive(run))
