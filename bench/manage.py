"""Stopping and removing stored experiments (the CLI's cancel and delete, the dashboard's Stop and
Delete): the store changes in one transaction each, the workers stop, and what the runs wrote to
the object store goes with them, so nothing half-written is left behind.

Cancelling marks the active runs cancelled first, so whatever their workers report afterwards is
not stored (store.runs keeps a cancelled run as it is). Queued runs then never start; a running
local run is stopped by the executor that owns it (it polls the store and ends that worker at
once); a running Modal run's call is cancelled here by its id (the executor, if alive, does the
same). Deleting refuses an experiment with active runs and removes its objects before its rows, so
a failure part-way leaves something that can be deleted again.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any, Sequence

from bench.experiments import load_experiment
from bench.liveness import pid_exists
from store import manage as store_manage
from store.db import Database
from store.keys import output_key, output_object_key
from store.objects import ObjectStore

STOP_WAIT_SECONDS = 15.0
"""How long cancelling waits for the local workers of running runs to end."""
CANCEL_REASON = "cancelled by the user"
"""The reason stored on each cancelled run."""


@dataclass(frozen=True)
class CancelReport:
    """What cancelling an experiment did."""

    queued: int
    """Queued runs cancelled (they never start)."""
    running: int
    """Running runs cancelled and stopped."""
    outputs_removed: int
    """Output objects of those runs removed from the object store."""
    problems: tuple[str, ...] = ()
    """One line per thing that could not be stopped (a Modal call unreachable, a worker still
    ending): the runs are cancelled in the store all the same."""

    def summary(self) -> str:
        """One line for the terminal or the page."""
        if not self.queued and not self.running:
            return "nothing to cancel: every run had already ended"
        return (f"cancelled {self.queued + self.running} run(s): {self.queued} queued, "
                f"{self.running} running (stopped)")


@dataclass(frozen=True)
class DeleteReport:
    """What deleting an experiment removed."""

    runs: int
    """Run rows deleted."""
    objects: int
    """Output objects deleted from the object store."""


def discard_outputs(storage: ObjectStore, source_key: str | None, experiment_id: str,
                    run_ids: Sequence[str]) -> int:
    """Remove the output objects of these runs (those present); returns how many there were.
    Raises StorageError."""
    removed = 0
    for run_id in run_ids:
        key = output_object_key(source_key, output_key(experiment_id, run_id))
        if storage.exists(key):
            storage.delete(key)
            removed += 1
    return removed


def cancel_experiment(db: Database, experiment_id: str, storage: ObjectStore, *,
                      modal_backend: Any = None,
                      stop_wait: float = STOP_WAIT_SECONDS) -> CancelReport:
    """Cancel every queued or running run of the experiment and stop its workers (see the module
    docstring); modal_backend (a ModalBackend, made when needed) cancels Modal calls. Raises
    InputError for an unknown experiment, StorageError."""
    experiment = load_experiment(db, experiment_id)
    runs = store_manage.cancel_active_runs(db, experiment_id, CANCEL_REASON)
    running = [r for r in runs if r.status != "queued"]
    problems: list[str] = []
    calls = {r.id: r.call_id for r in running if r.call_id}
    if calls:
        if modal_backend is None:
            from bench.backends.modal_backend import ModalBackend

            modal_backend = ModalBackend()
        problems += modal_backend.cancel_calls(calls).values()
    local = [r for r in running if not r.call_id and r.worker_pid is not None]
    deadline = time.monotonic() + stop_wait
    while any(_on_this_host(r) and pid_exists(r.worker_pid) for r in local) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    problems += [f"run {r.id}: its worker process {r.worker_pid} is still ending" for r in local
                 if _on_this_host(r) and pid_exists(r.worker_pid)]
    removed = discard_outputs(storage, experiment.source, experiment_id, [r.id for r in runs])
    return CancelReport(queued=len(runs) - len(running), running=len(running),
                        outputs_removed=removed, problems=tuple(problems))


def _on_this_host(run: Any) -> bool:
    return not run.worker_host or run.worker_host == socket.gethostname()


def delete_experiment(db: Database, experiment_id: str, storage: ObjectStore) -> DeleteReport:
    """Delete the experiment, its runs and their output objects (nothing of any other experiment).
    Raises InputError for an unknown experiment or one still running (cancel it first),
    StorageError (then nothing or only some objects are gone; the rows stay, so deleting again
    finishes the job)."""
    experiment = load_experiment(db, experiment_id)
    run_ids = store_manage.deletable_run_ids(db, experiment_id)
    objects = 0
    if experiment.origin == "run":  # an import's outputs were never in this store
        objects = discard_outputs(storage, experiment.source, experiment_id, run_ids)
    return DeleteReport(runs=store_manage.delete_experiment(db, experiment_id), objects=objects)
