"""Turns a plan into stored runs on a backend and writes everything that happens back to the store.

    plan -> create_experiment (experiment row + one queued run per clip x GPU x repeat)
         -> execute_experiment (jobs to the backend; StoreSink records progress, results, cost)

The dashboard launches execute_experiment in a detached process (`python -m bench execute ID`) so
nothing runs on its script thread and a page reload loses nothing; the CLI runs it in-process.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from bench.backends.base import Backend, EventSink, Finished, Submission
from bench.estimate import PLAN_KEY, PlanEstimate
from bench.experiments import load_experiment, plan_of, prices_of
from bench.figures import figures_of
from bench.liveness import worker_is_alive
from bench.manage import discard_outputs
from bench.plan import (
    DEMO_SOURCE,
    DEMO_SOURCE_FPS,
    DEMO_SOURCE_SECONDS,
    DEMO_SOURCE_SIZE,
    Plan,
    clips_past_end,
)
from bench.pricing import DEFAULT_PRICES, PriceTable
from core.errors import BackendError, InputError, StorageError, UserError, one_line
from core.job import Job, Progress
from core.paths import run_log_path
from core.status import ACTIVE_STATUSES
from store import runs as store_runs
from store.config import StorageConfig, load_storage_config
from store.db import Database
from store.keys import output_key, source_content_key, source_object_key, split_user_key
from store.manage import cancelled_among
from store.objects import ObjectStore, open_object_store

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL = 0.5
"""Seconds between stored progress updates of one run (stage changes are stored at once)."""


@dataclass(frozen=True)
class RunEvent:
    """Something that happened to a run, for live displays (CLI progress bars)."""

    run_id: str
    """Run the event is about."""
    kind: str
    """'submitted', 'progress', 'succeeded' or 'failed'."""
    stage: str = ""
    """Stage running now (progress events)."""
    frames_done: int = 0
    """Frames done so far."""
    frames_total: int = 0
    """Frames the run will produce."""
    error: str | None = None
    """One-line reason for 'failed'."""


Listener = Callable[[RunEvent], None]


def git_commit() -> str | None:
    """The checkout's commit sha, when the code runs from a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def prepare_source(source: str, storage: ObjectStore) -> str:
    """Make the plan's source available in storage and return its full object key.

    'demo' generates the demo clip (once); an existing local file is uploaded under
    'bench/sources/{sha256}/' (store.keys.source_content_key: one key per content); anything
    else must already be an object key. Raises InputError/StorageError."""
    if source == DEMO_SOURCE:
        from workers.synthetic import write_demo_clip

        width, height = DEMO_SOURCE_SIZE
        key = source_object_key(f"demo-{width}x{height}-{DEMO_SOURCE_FPS:g}fps-{DEMO_SOURCE_SECONDS:g}s.mp4")
        if not storage.exists(key):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "demo.mp4"
                write_demo_clip(path, seconds=DEMO_SOURCE_SECONDS, width=width, height=height,
                                fps=DEMO_SOURCE_FPS)
                storage.put(path, key)
        return key
    path = Path(source).expanduser()
    if path.is_file():
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        key = source_content_key(digest, path.name)
        if not storage.exists(key):  # concurrent first uploads each write a private copy
            storage.put(path, key)
        return key
    if path.is_dir():
        raise InputError(f"source {source!r} is a directory, not a video file")
    if path.exists() or path.is_absolute() or source.startswith(("~", "./", "../")):
        raise InputError(f"source file {source!r} does not exist")
    try:
        split_user_key(source)
    except StorageError:
        raise InputError(f"source file {source!r} does not exist (nor is it an object key "
                         f"USER/PATH)") from None
    if not storage.exists(source):
        raise InputError(f"source {source!r} is neither a local file nor an object in "
                         f"{storage.describe()}")
    return source


def run_specs(plan: Plan) -> list[store_runs.RunSpec]:
    """One queued run per clip x GPU x variant x repeat, repeats interleaved so a slow device
    drift touches every candidate alike. A run's variant is its model and engine."""
    return [store_runs.RunSpec(clip=clip.name, gpu=gpu.label, clip_start=clip.start,
                               clip_end=clip.end, frames_expected=clip.frames(plan.fps),
                               price_gpu=gpu.price_gpu, repeat_index=repeat,
                               model=variant.model, engine=variant.engine)
            for repeat in range(plan.repeats) for clip in plan.clips for gpu in plan.gpus
            for variant in plan.variant_list()]


def check_clips_in_source(plan: Plan, source_key: str, storage: ObjectStore) -> None:
    """Check on this machine, before any worker or container starts, that every clip lies inside
    the prepared source (fetched into the object cache once and probed). Raises InputError naming
    the first clip past its end, MediaError for a source that is not a video, StorageError."""
    from workers.video import probe

    info = probe(storage.get(source_key))
    problems = clips_past_end(plan, info.duration, info.fps)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(f"{problems[0]}{more}; choose clips inside the source")


def create_experiment(db: Database, plan: Plan, source_key: str, prices: PriceTable = DEFAULT_PRICES,
                      name: str | None = None, estimate: PlanEstimate | None = None
                      ) -> tuple[str, list[str]]:
    """Store the experiment (with the plan's estimate, when given, under the plan's
    bench.estimate.PLAN_KEY) and its queued runs in one transaction (this process answers for
    them until an executor claims them); returns (experiment id, run ids). Raises InputError,
    StorageError."""
    prices = prices.for_placement(plan.region)  # what Modal bills a container placed so
    plan_json = plan.to_dict()
    if estimate is not None:
        plan_json[PLAN_KEY] = estimate.to_dict()
    record = store_runs.ExperimentRecord(
        name=name or f"{plan.preset or 'custom'}: {plan.model} on {', '.join(g.label for g in plan.gpus)}",
        preset=plan.preset, source=source_key, plan_json=plan_json, model=plan.model,
        engine=plan.engine, backend=plan.backend, price_table_date=prices.date,
        price_table_json=prices.to_dict(), commit=git_commit())
    specs = run_specs(plan)

    def store(_con: object) -> tuple[str, list[str]]:  # nested writes share this transaction
        experiment_id = store_runs.create_experiment(db, record)
        return experiment_id, store_runs.add_runs(db, experiment_id, specs)

    return db.write(store)


def job_for_run(plan: Plan, run: store_runs.RunRow, source_key: str) -> Job:
    """The worker job of one stored run."""
    user_id, input_key = split_user_key(source_key)
    device = run.gpu if plan.backend == "local" else "auto"
    return Job(job_id=run.id, user_id=user_id, input_key=input_key,
               output_key=output_key(run.experiment_id, run.id), keyframes=plan.keyframes,
               output_width=plan.output_width, output_height=plan.output_height, fps=plan.fps,
               trim_start=run.clip_start, trim_end=run.clip_end, model=run.model or plan.model,
               engine=run.engine or plan.engine, precision=plan.precision,
               batch_size=plan.batch_size, device=device, weights=plan.weights,
               compile=plan.compile, encoder=plan.encoder,
               encode_preset=plan.encode_preset, crf=plan.crf, decoder=plan.decoder)


class StoreSink(EventSink):
    """Writes backend events to the store (progress, results, cost) and tells a listener."""

    def __init__(self, db: Database, prices: PriceTable, listener: Listener | None = None,
                 discard_output: Callable[[str], None] | None = None):
        """discard_output(run_id) removes the output a cancelled run's worker uploaded anyway."""
        self.db, self.prices = db, prices
        self.listener = listener or (lambda event: None)
        self.discard_output = discard_output
        self._last_progress: dict[str, tuple[float, str]] = {}

    def submitted(self, run_id: str, call_id: str | None, worker: str | None) -> None:
        pid, _, host = (worker or "").partition("@")
        store_runs.mark_running(self.db, run_id, call_id=call_id,
                                worker_pid=int(pid) if pid.isdigit() else None,
                                worker_host=host or None)
        self.listener(RunEvent(run_id, "submitted"))

    def progress(self, run_id: str, progress: Progress) -> None:
        # Each write briefly locks the database file other processes read: store a run's progress
        # at most every PROGRESS_WRITE_INTERVAL seconds, and at once when its stage changes.
        now = time.monotonic()
        last_at, last_stage = self._last_progress.get(run_id, (float("-inf"), ""))
        if progress.stage != last_stage or now - last_at >= PROGRESS_WRITE_INTERVAL:
            store_runs.update_progress(self.db, run_id, progress.frames_done,
                                       progress.frames_total, progress.stage)
            self._last_progress[run_id] = (now, progress.stage)
        self.listener(RunEvent(run_id, "progress", progress.stage, progress.frames_done,
                               progress.frames_total))

    def finished(self, outcome: Finished) -> None:
        result = outcome.result
        planned = store_runs.get_run(self.db, outcome.run_id)
        cost = figures_of({
            "gpu": planned.gpu if planned else "", "price_gpu": planned.price_gpu if planned else None,
            "device_name": result.device_name, "status": result.status,
            "frames_out": result.frames_out, "job_seconds": result.job_seconds,
            "cpu_cores": result.cpu_cores, "cpu_used_cores": outcome.cpu_used_cores,
            "memory_gib": outcome.memory_gib, "peak_memory_gib": outcome.peak_memory_gib,
        }, "", self.prices)
        stored = store_runs.finish_run(self.db, outcome.run_id, store_runs.RunOutcome(
            status=result.status, error=result.error, result=result, cold=outcome.cold,
            client_wall_seconds=outcome.client_wall_seconds,
            startup_seconds=outcome.startup_seconds, cost_gpu=cost.cost,
            cost_all_in=cost.cost_all_in, cpu_used_cores=outcome.cpu_used_cores,
            peak_memory_gib=outcome.peak_memory_gib, memory_gib=outcome.memory_gib))
        if not stored:  # cancelled while it ran: keep nothing of it
            if self.discard_output is not None:
                self.discard_output(outcome.run_id)
            return
        self.listener(RunEvent(outcome.run_id, result.status, frames_done=result.frames_out,
                               frames_total=result.frames_out, error=result.error))

    def failed(self, run_id: str, reason: str) -> None:
        store_runs.fail_run(self.db, run_id, reason)
        self.listener(RunEvent(run_id, "failed", error=reason))

    def cancelled(self, run_ids: Sequence[str]) -> set[str]:
        return cancelled_among(self.db, run_ids)


def make_backend(name: str, storage_config: StorageConfig, plan: Plan | None = None) -> Backend:
    """The backend called name (Modal with the plan's container reuse, scaledown window and
    queue-wait limit). Raises InputError for an unknown one."""
    if name == "local":
        from bench.backends.local import LocalBackend

        return LocalBackend(functools.partial(open_object_store, storage_config))
    if name == "modal":
        from bench.backends.modal_backend import ContainerPolicy, ModalBackend

        return ModalBackend(policy=ContainerPolicy.of(plan) if plan is not None else None)
    raise InputError(f"unknown backend {name!r}; choose local or modal")


def preflight(plan: Plan, storage_config: StorageConfig, backend: Backend | None = None) -> None:
    """Everything that can be known to fail before launch: a weights file that does not exist,
    unknown GPUs or devices, no Modal token, Modal without R2 storage. Raises UserError
    subclasses with one line."""
    check_weights(plan)
    if plan.backend == "modal" and storage_config.kind != "r2":
        raise BackendError("Modal workers read and write Cloudflare R2: set R2_ENDPOINT_URL, "
                           "R2_BUCKET, R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY (or [r2] in "
                           ".streamlit/secrets.toml)")
    backend = backend or make_backend(plan.backend, storage_config, plan)
    backend.preflight([g.label for g in plan.gpus])


def check_weights(plan: Plan) -> None:
    """A weights path of a local plan must be a file on this machine (a Modal worker's path is
    its container's). Raises InputError naming the path."""
    if plan.backend != "local" or plan.weights in ("auto", "random"):
        return
    path = Path(plan.weights).expanduser()
    if not path.is_file():
        raise InputError(f"weights file {plan.weights} does not exist"
                         f"{' (it is a directory)' if path.is_dir() else ''}; give a .pth file, "
                         "'auto' or 'random'")


def unavailable_gpus(plan: Plan, storage_config: StorageConfig,
                     backend: Backend | None = None) -> dict[str, str]:
    """GPU label -> why it cannot run here, for the plan's GPUs that fail preflight one by one
    (a device this machine lacks); the others can run. Raises UserError for what stops every
    GPU alike (weights, storage, token)."""
    check_weights(plan)
    if plan.backend == "modal" and storage_config.kind != "r2":
        preflight(plan, storage_config, backend)
    backend = backend or make_backend(plan.backend, storage_config)
    reasons = {}
    for gpu in plan.gpus:
        try:
            backend.preflight([gpu.label])
        except UserError as exc:
            reasons[gpu.label] = one_line(exc)
    if plan.decoder == "nvdec" and plan.backend == "local":
        from workers.nvdec import nvdec_preflight

        for gpu in plan.gpus:
            reason = reasons.get(gpu.label) or nvdec_preflight(gpu.label)
            if reason:
                reasons[gpu.label] = reason
    if len(reasons) == len(plan.gpus) and len(set(reasons.values())) == 1:
        backend.preflight([g.label for g in plan.gpus])  # one cause for all: raise it as it is
        raise InputError(next(iter(reasons.values())))  # (the decoder's, where no device's)
    return reasons


def owner_lets_go(run: store_runs.RunRow) -> bool:
    """Whether this process may take a queued run: nobody answers for it, this process or the one
    that started it does (the creator handing over), or its owner is gone."""
    if run.worker_pid is None or run.worker_pid in (os.getpid(), os.getppid()):
        return True
    return not worker_is_alive(run)


@dataclass(frozen=True)
class Execution:
    """What one execute_experiment call took on."""

    claimed: tuple[str, ...]
    """Ids of the runs this process ran."""
    held: dict[str, str]
    """Queued or running runs another live process answers for (left to it): run id ->
    'pid@host' of that process."""


def execute_experiment(db: Database, experiment_id: str, storage_config: StorageConfig | None = None,
                       backend: Backend | None = None, listener: Listener | None = None) -> Execution:
    """Run every queued run of an experiment to the end, recording everything in the store.
    A run that cannot start fails with its reason; the others go on. Runs another live process
    answers for are left to it, and named in the Execution returned."""
    storage_config = storage_config or load_storage_config()
    experiment = load_experiment(db, experiment_id)
    plan, prices = plan_of(experiment), prices_of(experiment)
    backend = backend or make_backend(plan.backend, storage_config, plan)
    # Only runs this process claimed run here: one recovered as interrupted meanwhile (the process
    # that queued it died first) stays interrupted instead of running under that label, and one
    # another live executor answers for is left to it (claimed only if its owner is unchanged).
    queued = [run for rid in store_runs.list_runs(db, experiment_id=experiment_id,
                                                  statuses=["queued"])["id"]
              if (run := store_runs.get_run(db, rid)) is not None]
    owners = {run.id: run.worker_pid for run in queued}
    taken = set(store_runs.claim_run_ids(db, [run.id for run in queued if owner_lets_go(run)],
                                         owners=owners))
    claimed = [run for run in queued if run.id in taken]  # what a job needs of a run is unchanged
    running = [run for rid in store_runs.list_runs(db, experiment_id=experiment_id,
                                                   statuses=["running"])["id"]
               if (run := store_runs.get_run(db, rid)) is not None and not run.call_id]
    held = {run.id: f"{run.worker_pid}@{run.worker_host or '?'}"
            for run in [*queued, *running] if run.id not in taken and worker_is_alive(run)}
    discard = functools.partial(_discard_output, storage_config, experiment.source, experiment_id)
    sink = StoreSink(db, prices, listener, discard)
    submissions = [Submission(run_id=r.id, job=job_for_run(plan, r, experiment.source), gpu=r.gpu)
                   for r in claimed]
    resumer = _resume_in_background(db, experiment_id, backend, sink)
    try:
        backend.execute(submissions, sink)
        if resumer is not None:
            resumer.join()
    except StorageError as exc:  # the history became unwritable mid-run (a full disk)
        raise StorageError(_kept_after(db, experiment_id, [s.run_id for s in submissions],
                                       one_line(exc))) from exc
    except BaseException as exc:
        store_runs.interrupt_runs(db, [s.run_id for s in submissions],
                                  f"the orchestrator stopped: {type(exc).__name__}: {exc}".strip())
        raise
    return Execution(tuple(r.id for r in claimed), held)


def _kept_after(db: Database, experiment_id: str, run_ids: list[str], reason: str) -> str:
    """After the store failed mid-run: fail this process's unfinished runs with the reason where
    the store still takes it (best effort), and say truthfully what is kept. Raises nothing."""
    reason = reason.replace(", so nothing was stored", "")
    try:
        runs = store_runs.list_runs(db, experiment_id=experiment_id)  # reads work on a full disk
        for run_id in runs[runs["id"].isin(run_ids) & runs["status"].isin(ACTIVE_STATUSES)]["id"]:
            store_runs.fail_run(db, run_id, f"stopped: {reason}")
    except UserError:
        log.warning("could not store why the runs of %s stopped", experiment_id, exc_info=True)
    try:
        runs = store_runs.list_runs(db, experiment_id=experiment_id)
    except UserError:
        return f"{reason}; experiment {experiment_id} was stored before this"
    counts = runs["status"].value_counts()
    kept = ", ".join(f"{n} {status}" for status, n in counts.items())
    stale = int(runs["status"].isin(ACTIVE_STATUSES).sum())
    return (f"{reason}; experiment {experiment_id} is kept with its {len(runs)} run(s) ({kept})"
            + (f"; {stale} could not be marked failed and will read as interrupted" if stale
               else ", the unfinished ones stored failed with this reason"))


def _discard_output(storage_config: StorageConfig, source_key: str | None, experiment_id: str,
                    run_id: str) -> None:
    discard_outputs(open_object_store(storage_config), source_key, experiment_id, [run_id])


def _resume_in_background(db: Database, experiment_id: str, backend: Backend,
                          sink: EventSink) -> threading.Thread | None:
    """Reattach to runs another process already handed to Modal (status running, call id stored),
    so a dashboard reload or a second process picks them up again."""
    running = store_runs.list_runs(db, experiment_id=experiment_id, statuses=["running"])
    running = running[running["call_id"].notna()]
    if running.empty:
        return None
    call_ids = dict(zip(running["id"], running["call_id"]))
    store_runs.claim_runs(db, list(call_ids), status="running")
    started = {rid: ts.timestamp() for rid, ts in zip(running["id"], running["started_at"])
               if ts is not None and ts == ts}
    thread = threading.Thread(target=backend.resume, args=(call_ids, sink, started), daemon=True,
                              name="modal-resume")
    thread.start()
    return thread



def launch_detached(db_path: Path, experiment_id: str) -> int:
    """Start `python -m bench execute EXPERIMENT_ID` in its own process session (it outlives a
    dashboard rerun or restart) and hand it the experiment's queued runs; returns its pid. Its
    output goes to core.paths.run_log_path. Raises StorageError."""
    log_path = run_log_path(db_path, experiment_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    project_root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (project_root, os.environ.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", "execute", experiment_id, "--db", str(Path(db_path).resolve())],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path})
    log.close()
    # The new process answers for the queued runs from now on, so a dashboard restarted before it
    # claims them does not take them for orphans of the dashboard's old process.
    db = Database(db_path)
    queued = store_runs.list_runs(db, experiment_id=experiment_id, statuses=["queued"])["id"]
    store_runs.claim_runs(db, list(queued), worker_pid=process.pid)
    return process.pid
