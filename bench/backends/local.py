"""The local backend: one warm worker process per device of this machine ('cpu', 'cuda:0', ...).

Each worker process loads a model once (workers.pipeline.ModelCache) and runs the jobs sent to it
one at a time; different devices run in parallel. The parent hands out one job per worker at a
time, so when a worker dies it knows which run died with it: that run fails with the exit code as
its reason and a fresh worker takes the device's remaining runs. Runs for 'cuda:all' go to
whichever card is free (bench.backends.scheduling), so every card stays busy; each records the
card it ran on, and a card that faults leaves the pool while the others carry on.

A worker never outlives its parent (the executor): a watchdog thread polls the parent every
PARENT_POLL_SECONDS, mid-job too, and ends the process at once when the parent is gone (even by
SIGKILL), so it neither holds a GPU for nothing nor uploads the output of a run that recovery
has already marked interrupted; the job itself checks the parent again just before its upload.
(PR_SET_PDEATHSIG would do the first part on Linux only, and fires when the parent *thread* ends.)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

from bench.backends.base import EventSink, Finished, Submission
from bench.backends.scheduling import POOL, RunQueue
from bench.logsetup import debug_enabled, logging_to_file
from core.errors import InputError
from core.job import Job, JobResult, Progress
from core.stages import startup_seconds
from store.objects import ObjectStore

StorageFactory = Callable[[], ObjectStore]
"""Picklable callable that opens the object store inside a worker process."""

_POLL_SECONDS = 0.2
CANCEL_POLL_SECONDS = 0.5
"""How often the parent asks the sink whether running runs were cancelled (it then ends their
worker at once, so a cancelled job neither finishes nor uploads)."""
PARENT_POLL_SECONDS = 0.1
"""How often a worker checks that its parent is alive (it stops within about this long)."""
ORPHANED_EXIT_CODE = 75
"""Exit status of a worker that ended because its parent died."""


def local_devices() -> list[str]:
    """Devices this machine offers: 'cuda:N' for each visible card, then 'cpu'."""
    import torch

    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] + ["cpu"]


def validate_device(device: str, available: Sequence[str] | None = None) -> str:
    """Normalise a local device name ('cuda:all' = every card, as one pool); raises InputError for
    devices this machine (or `available`) lacks."""
    name = device.strip().lower()
    if name == "cuda":
        name = "cuda:0"
    available = list(local_devices() if available is None else available)
    if name == POOL and any(d.startswith("cuda:") for d in available):
        return name
    if name not in available:
        raise InputError(f"no local device {device!r}; this machine has {', '.join(available)}")
    return name


def _worker_main(device: str, storage_factory: StorageFactory, jobs: Any, events: Any,
                 parent: int) -> None:
    """Worker process: run jobs from `jobs` on `device` until a None arrives, or until its parent
    (pid `parent`, the executor) is gone. Tracebacks of failed jobs go to the CLI log."""
    def parent_alive() -> bool:
        return os.getppid() == parent

    scratch = tempfile.mkdtemp(prefix=f"upscale-worker-{os.getpid()}-")
    tempfile.tempdir = scratch  # the job's temporary files, removed if the watchdog ends us
    threading.Thread(target=_watch_parent, args=(parent_alive, scratch), daemon=True,
                     name="parent-watchdog").start()
    with logging_to_file(debug_enabled()):
        _serve(storage_factory(), jobs, events, parent_alive)
    shutil.rmtree(scratch, ignore_errors=True)


def _serve(storage: ObjectStore, jobs: Any, events: Any, parent_alive: Callable[[], bool]) -> None:
    from workers.pipeline import ModelCache, run_job

    started_at = time.time()
    cache = ModelCache()
    ran_any = False
    while True:
        try:
            item = jobs.get(timeout=_POLL_SECONDS * 5)
        except queue.Empty:
            item = ()
        if not parent_alive():  # the executor died (even by SIGKILL): do not linger,
            events.cancel_join_thread()  # nor block at exit on events nobody will read
            return
        if item is None:
            return
        if not item:
            continue
        run_id, job_dict = item
        job = Job.from_dict(job_dict)

        def on_progress(progress: Progress, run_id: str = run_id) -> None:
            events.put(("progress", run_id, progress))

        result = run_job(job, storage, on_progress=on_progress, cache=cache,
                         still_wanted=parent_alive)
        cold = result.stages.get("model_load", 0.0) > 0.0 or not ran_any
        startup = (result.started_at or started_at) - started_at if not ran_any else 0.0
        events.put(("result", run_id, result.to_dict(), cold, startup))
        ran_any = True


def _watch_parent(parent_alive: Callable[[], bool], scratch: str) -> None:
    """Worker watchdog thread: end the process as soon as its parent is gone, mid-job included
    (a job deep in a model call cannot be asked to stop). Raises nothing; never returns then."""
    while parent_alive():
        time.sleep(PARENT_POLL_SECONDS)
    shutil.rmtree(scratch, ignore_errors=True)
    os._exit(ORPHANED_EXIT_CODE)


@dataclass
class _DeviceLane:
    """One device and the worker process serving it (bench.backends.scheduling says what next)."""

    device: str
    process: Any = None
    jobs: Any = None
    current: Submission | None = None
    sent_at: float = 0.0
    finished: list[str] = field(default_factory=list)


class LocalBackend:
    """Runs submissions in worker processes on this machine's devices."""

    name = "local"

    def __init__(self, storage_factory: StorageFactory, start_method: str = "spawn",
                 devices: Sequence[str] | None = None, run_on: Mapping[str, str] | None = None):
        """devices: this machine's devices (default: what torch sees, local_devices()).
        run_on: device -> the device its worker really uses; tests simulate cards with it
        ({'cuda:0': 'cpu', 'cuda:1': 'cpu'}). Neither is needed in the product."""
        self._storage_factory = storage_factory
        self._ctx = mp.get_context(start_method)
        self._devices = tuple(devices) if devices is not None else None
        self._run_on = dict(run_on or {})

    def _available(self) -> list[str]:
        return list(self._devices) if self._devices is not None else local_devices()

    def preflight(self, gpus: Sequence[str]) -> None:
        available = self._available()
        for gpu in gpus:
            validate_device(gpu, available)

    def execute(self, submissions: Sequence[Submission], sink: EventSink) -> None:
        events = self._ctx.Queue()
        available = self._available()
        valid = []
        for sub in submissions:
            try:
                valid.append(replace(sub, gpu=validate_device(sub.gpu, available)))
            except InputError as exc:  # a device this machine lacks fails only its own runs
                sink.failed(sub.run_id, str(exc))
        self._queue = RunQueue(valid, cards=[d for d in available if d.startswith("cuda:")])
        self._run_ids = [sub.run_id for sub in valid]
        self._cancel_set: set[str] = set()
        self._cancel_checked = float("-inf")
        lanes = {device: _DeviceLane(device) for device in self._queue.devices()}
        try:
            for lane in lanes.values():
                self._start_worker(lane, events)
                self._send_next(lane, sink)
            while any(lane.current is not None for lane in lanes.values()):
                self._pump(events, lanes, sink)
                self._check_workers(lanes, events, sink)
                self._stop_cancelled(lanes, events, sink)
                for lane in lanes.values():  # a run put back by a faulty card finds an idle one
                    if lane.current is None:
                        self._send_next(lane, sink)
            for sub in self._queue.stranded():
                sink.failed(sub.run_id, "no card of this machine is left to run it: each one "
                                        "failed a run with a device fault")
        finally:
            for lane in lanes.values():
                self._stop_worker(lane)

    def resume(self, call_ids: Mapping[str, str], sink: EventSink,
               submitted_at: Mapping[str, float] | None = None) -> None:
        """See Backend.resume: a local worker ends with the process that started it, so there is
        nothing to reattach to; each run is reported failed."""
        for run_id in call_ids:
            sink.failed(run_id, "a local run cannot be reattached: its worker ended with the "
                                "process that started it")

    def _start_worker(self, lane: _DeviceLane, events: Any) -> None:
        lane.jobs = self._ctx.Queue()
        lane.process = self._ctx.Process(
            target=_worker_main,
            args=(self._run_on.get(lane.device, lane.device), self._storage_factory, lane.jobs, events,
              os.getpid()),
            name=f"upscale-worker-{lane.device}", daemon=True)
        lane.process.start()

    def _cancelled(self, sink: EventSink) -> set[str]:
        """The runs of this batch the user cancelled, asked of the sink at most every
        CANCEL_POLL_SECONDS (one read for the whole batch)."""
        if time.monotonic() - self._cancel_checked >= CANCEL_POLL_SECONDS:
            self._cancel_set = sink.cancelled(self._run_ids)
            self._cancel_checked = time.monotonic()
        return self._cancel_set

    def _next_wanted(self, device: str, sink: EventSink) -> Submission | None:
        """The device's next run that was not cancelled, None when none is left."""
        sub = self._queue.next_for(device)
        while sub is not None and sub.run_id in self._cancelled(sink):
            sub = self._queue.next_for(device)
        return sub

    def _send_next(self, lane: _DeviceLane, sink: EventSink,
                   sub: Submission | None = None) -> None:
        """Hand the lane's worker `sub`, else its next wanted run, if any is left."""
        lane.current = sub or self._next_wanted(lane.device, sink)
        if lane.current is None:
            return
        job = replace(lane.current.job, device=self._run_on.get(lane.device, lane.device))
        lane.jobs.put((lane.current.run_id, job.to_dict()))
        lane.sent_at = time.time()
        sink.submitted(lane.current.run_id, None, f"{lane.process.pid}@{socket.gethostname()}")

    def _pump(self, events: Any, lanes: dict[str, _DeviceLane], sink: EventSink,
              timeout: float = _POLL_SECONDS) -> bool:
        """Handle one worker event if one arrives within timeout; False when none did."""
        try:
            event = events.get(timeout=timeout)
        except queue.Empty:
            return False
        kind, run_id = event[0], event[1]
        if kind == "progress":
            sink.progress(run_id, event[2])
            return True
        lane = next((l for l in lanes.values() if l.current and l.current.run_id == run_id), None)
        if lane is None:
            return True
        result = JobResult.from_dict(event[2])
        sub = lane.current
        if not result.ok and self._queue.pooled_run_failed(lane.device, sub, result.error):
            lane.current = None  # another card takes it; this one carries on with its own runs
            self._send_next(lane, sink)
            return True
        if sub.gpu == POOL:  # the run records the card it used
            result = replace(result, device_name=f"{result.device_name} ({lane.device})")
        cold, startup = bool(event[3]), float(event[4])
        sink.finished(Finished(run_id=run_id, result=result,
                               client_wall_seconds=time.time() - lane.sent_at,
                               cold=cold, startup_seconds=startup_seconds(result.stages, startup)))
        self._send_next(lane, sink)
        return True

    def _check_workers(self, lanes: dict[str, _DeviceLane], events: Any, sink: EventSink) -> None:
        for lane in lanes.values():
            if lane.current is None or lane.process.is_alive():
                continue
            # Drain events the worker sent before dying, so a finished job is not misreported.
            while self._pump(events, lanes, sink, timeout=0.05):
                pass
            if lane.current is None or lane.process.is_alive():
                continue
            code = lane.process.exitcode
            reason = f"the {lane.device} worker process died (exit code {code}) while running this job"
            if not self._queue.pooled_run_failed(lane.device, lane.current, reason):
                sink.failed(lane.current.run_id, reason)
            lane.current = None
            self._start_worker(lane, events)
            self._send_next(lane, sink)

    def _stop_cancelled(self, lanes: dict[str, _DeviceLane], events: Any, sink: EventSink) -> None:
        """End the worker of every run the user cancelled (mid-job: nothing more of it is stored
        or uploaded) and give its device a fresh worker for the runs left."""
        busy = {lane.current.run_id: lane for lane in lanes.values() if lane.current is not None}
        for run_id in set(busy) & self._cancelled(sink):
            lane = busy[run_id]
            lane.process.terminate()
            lane.process.join(timeout=5)
            lane.current = None
            sub = self._next_wanted(lane.device, sink)
            if sub is not None:
                self._start_worker(lane, events)
                self._send_next(lane, sink, sub)

    def _stop_worker(self, lane: _DeviceLane) -> None:
        """Let an idle worker finish; end one still running a job at once (the executor is
        stopping: its run is about to be marked interrupted and must not upload after that)."""
        if lane.process is None:
            return
        if lane.current is not None and lane.process.is_alive():
            lane.process.terminate()
        if lane.process.is_alive():
            try:
                lane.jobs.put(None)
            except (OSError, ValueError):
                pass
            lane.process.join(timeout=5)
        if lane.process.is_alive():
            lane.process.terminate()
            lane.process.join(timeout=5)
