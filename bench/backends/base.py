"""The contract between the orchestrator and a backend.

The orchestrator hands a backend a batch of Submissions and an EventSink; the backend runs them
(in parallel where it can), reporting through the sink, and returns when every submission has been
reported finished or failed (or, cancelled by the user, dropped). A backend never raises for a
single job's failure: it reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

from core.job import Job, JobResult, Progress


@dataclass(frozen=True)
class Submission:
    """One run to execute."""

    run_id: str
    """Store id of the run (also the job id)."""
    job: Job
    """What to do."""
    gpu: str
    """Where: a catalog GPU name for Modal ('L4'), a device for local ('cpu', 'cuda:0')."""


@dataclass(frozen=True)
class Finished:
    """A job that came back (its JobResult may still say failed)."""

    run_id: str
    """Store id of the run."""
    result: JobResult
    """The worker's result."""
    client_wall_seconds: float
    """Seconds from submission to result as seen by the client (queueing and cold start included)."""
    cold: bool
    """Whether the worker/container started for this job (model load and start-up paid by it)."""
    startup_seconds: float
    """Start-up this run paid (core.stages.startup_seconds): its worker's boot up to the job when
    it was the worker's first, plus any model load and compile inside the job."""
    cpu_used_cores: float | None = None
    """Average CPU cores the job used, when the worker measured it."""
    peak_memory_gib: float | None = None
    """Peak memory of the worker by the end of the job, GiB, when measured."""
    memory_gib: float | None = None
    """Memory the worker's container requested, GiB (Modal), else None."""


class EventSink(Protocol):
    """Receives what happens to submissions; the orchestrator writes it to the store."""

    def submitted(self, run_id: str, call_id: str | None, worker: str | None) -> None:
        """The job was handed to a worker (call_id for Modal; worker describes pid@host locally)."""

    def progress(self, run_id: str, progress: Progress) -> None:
        """Frames done so far and the running stage."""

    def finished(self, outcome: Finished) -> None:
        """The worker returned a result."""

    def failed(self, run_id: str, reason: str) -> None:
        """The job could not run or its worker died; reason is one line."""

    def cancelled(self, run_ids: Sequence[str]) -> set[str]:
        """Those of these runs the user cancelled (bench cancel, the dashboard's Stop): a backend
        starts none of them and stops those running, reporting nothing more about them."""


class Backend(Protocol):
    """Runs submissions somewhere."""

    name: str

    def preflight(self, gpus: Sequence[str]) -> None:
        """Raise core.errors.BackendError/InputError if these GPUs cannot run here (checked before
        anything is launched): unknown GPU, no Modal token, no CUDA device, no R2 credentials..."""

    def execute(self, submissions: Sequence[Submission], sink: EventSink) -> None:
        """Run every submission, report each through sink, return when all are reported."""

    def resume(self, call_ids: Mapping[str, str], sink: EventSink,
               submitted_at: Mapping[str, float] | None = None) -> None:
        """Reattach to runs launched earlier, maybe by another process (run id -> call id;
        submitted_at: run id -> unix time of the launch), report each through sink, return when
        all are reported. Never raises for a run's failure."""
