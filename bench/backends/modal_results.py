"""What Upscaler.run returned (a JobResult dict plus ContainerFacts), turned into the client's
record of a run: the device it really got, the container it ran on and when that booted, the
queue wait, its start-up seconds and the client's wall time (job seconds come from the result).
Pure functions, no network."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench.backends.base import Finished
from core.errors import BackendError, one_line
from core.job import JobResult
from core.stages import startup_seconds
from workers.modal_app import ContainerFacts


def booted_at(facts: ContainerFacts) -> float | None:
    """When the container booted: its process start, else its @modal.enter start."""
    return facts.container_booted_at if facts.container_booted_at is not None \
        else facts.container_started_at


def startup_before_job(result: JobResult, facts: ContainerFacts) -> float:
    """Seconds the container spent before this job that the job paid for: for the first job of
    a container, its boot up to the job's start (imports, @modal.enter's model load and
    compile); 0 on a warm container. The idle gaps and the scaledown tail belong to the container
    and bench.billing shares them out over its runs. Raises nothing."""
    boot = booted_at(facts)
    if facts.cold and boot is not None and result.started_at is not None:
        return max(0.0, result.started_at - boot)
    return 0.0


def queue_wait_seconds(result: JobResult, facts: ContainerFacts,
                       submitted_at: float | None) -> float | None:
    """Seconds from the spawn to the container starting on it: to the container's boot for a
    cold run, to the job's start on a warm container. None without a spawn time; clock skew
    between client and Modal is clamped at 0."""
    if submitted_at is None:
        return None
    start = booted_at(facts) if facts.cold else result.started_at
    if start is None:
        return None
    return max(0.0, start - submitted_at)


def finished_from_result(run_id: str, data: Any, client_wall_seconds: float | None,
                         submitted_at: float | None = None,
                         cpu_request: float | None = None) -> Finished:
    """Build Finished from what Upscaler.run returned (JobResult dict + ContainerFacts).

    The device name becomes nvidia-smi's when the container reported one; the worker start
    becomes the container's boot; cpu_cores the container's request (cpu_request, what the client
    asked with_options for, else what the container says it was built with); the queue wait (spawn to
    container start, when submitted_at is known) becomes the 'queue_wait' stage; start-up is the
    boot up to a cold job (a compile in @modal.enter included) plus any load or compile inside
    the job. Without a client wall time (a resumed call whose submission time is unknown) job
    plus start-up seconds stand in. Raises
    BackendError for a value that is not a result."""
    if not isinstance(data, dict) or not isinstance(data.get("status"), str) or "job_id" not in data:
        raise BackendError(f"Modal returned an unreadable result for run {run_id}: "
                           f"{type(data).__name__}")
    try:
        result = JobResult.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise BackendError(f"Modal returned an unreadable result for run {run_id}: "
                           f"{one_line(exc)}") from exc
    facts = ContainerFacts.from_dict(data)
    startup = startup_seconds(result.stages, startup_before_job(result, facts))
    changes: dict[str, Any] = {}
    if facts.gpu_name_nvidia_smi:
        changes["device_name"] = facts.gpu_name_nvidia_smi
    if booted_at(facts) is not None:
        changes["worker_started_at"] = booted_at(facts)
    request = cpu_request if cpu_request is not None else facts.cpu_request
    if request is not None:
        changes["cpu_cores"] = float(request)
    stages = dict(result.stages)
    wait = queue_wait_seconds(result, facts, submitted_at)
    if wait is not None:
        stages["queue_wait"] = wait
    if stages != result.stages:
        changes["stages"] = stages
    result = replace(result, **changes)
    job = result.job_seconds or 0.0
    wall = job + startup if client_wall_seconds is None else max(0.0, client_wall_seconds)
    return Finished(run_id=run_id, result=result, client_wall_seconds=wall, cold=facts.cold,
                    startup_seconds=startup,
                    cpu_used_cores=facts.cpu_used_cores, peak_memory_gib=facts.peak_memory_gib,
                    memory_gib=facts.memory_request_gib)
