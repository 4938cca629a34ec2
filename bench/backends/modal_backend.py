"""The Modal backend: spawn each run on the deployed Upscaler class with its GPU, poll the calls.

Calls are spawned (never awaited), their ids reported through the sink (the orchestrator stores
them) and polled with FunctionCall.get(timeout=0), so `resume` in another process, or after a
dashboard reload, can pick them up again by id. Every network step runs in a daemon thread with a
deadline, so an unreachable Modal (whose client blocks ~57 s before raising) fails in bounded time
and never on the caller's thread. The logic (token check, GPU mapping, building Finished, billed
seconds) is in plain functions that run offline.
"""

from __future__ import annotations

import os
import threading
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from bench.backends.base import EventSink, Finished, Submission
from core.errors import BackendError, UserError, one_line
from core.job import Job, JobResult, Progress, WarmShape
from workers.modal_app import (
    APP_NAME,
    CLASS_NAME,
    PROGRESS_DICT_NAME,
    ContainerFacts,
    decode_progress,
)

T = TypeVar("T")

NO_TOKEN_MESSAGE = ("no Modal token: run `modal token new` or set "
                    "MODAL_TOKEN_ID/MODAL_TOKEN_SECRET")


class ModalUnreachableError(BackendError):
    """Modal did not answer within the deadline (network down, or Modal itself unreachable)."""


# ---------------------------------------------------------------------------------------------
# Plain functions (no network).


def modal_token_present(env: Mapping[str, str] | None = None, home: Path | None = None) -> bool:
    """Whether Modal credentials are configured: MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the
    environment, or a profile with token_id and token_secret in the config file
    ($MODAL_CONFIG_PATH, else ~/.modal.toml). Never raises."""
    env = os.environ if env is None else env
    if env.get("MODAL_TOKEN_ID", "").strip() and env.get("MODAL_TOKEN_SECRET", "").strip():
        return True
    path = Path(env["MODAL_CONFIG_PATH"]) if env.get("MODAL_CONFIG_PATH") else (
        (home if home is not None else Path.home()) / ".modal.toml")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return any(isinstance(profile, dict) and profile.get("token_id") and profile.get("token_secret")
               for profile in config.values())


def require_token(env: Mapping[str, str] | None = None, home: Path | None = None) -> None:
    """Raise BackendError (NO_TOKEN_MESSAGE) when no Modal token is configured."""
    if not modal_token_present(env, home):
        raise BackendError(NO_TOKEN_MESSAGE)


def modal_gpu_for(name: str) -> str:
    """The Modal GPU string for a catalog GPU name (any spelling canonical_gpu accepts).
    Raises InputError for a GPU that is not in the catalog."""
    from bench.pricing import DEFAULT_PRICES, canonical_gpu

    return DEFAULT_PRICES.gpus[canonical_gpu(name)].modal_gpu


def upscaler_params(job: Job) -> dict[str, Any]:
    """The Upscaler parameters for a job: what its container preloads (the pipeline's engine key),
    so the job finds its engine already warm."""
    shape = WarmShape.of(job) if job.compile != "off" else None
    return {"model": job.model, "weights": job.weights, "engine": job.engine,
            "precision": job.precision, "batch_size": job.batch_size, "compile": job.compile,
            "warm_shape": shape.to_text() if shape else "", "device": job.device}


def billed_seconds(result: JobResult, facts: ContainerFacts) -> float:
    """Container seconds attributable to this job: the job's span in the worker (start to finish,
    fidelity scoring included; stages['total'] when the span is unknown) plus, for a cold job, the
    container's start-up before it (model load). Boot before @modal.enter and the idle
    scaledown window are not visible per job and not counted."""
    if result.started_at is not None and result.finished_at is not None:
        seconds = result.finished_at - result.started_at
    else:
        seconds = result.stages.get("total", 0.0)
    seconds = max(0.0, float(seconds))
    if facts.cold and facts.container_started_at is not None and result.started_at is not None:
        seconds += max(0.0, result.started_at - facts.container_started_at)
    return seconds


def finished_from_result(run_id: str, data: Any, client_wall_seconds: float | None) -> Finished:
    """Build Finished from what Upscaler.run returned (JobResult dict + ContainerFacts).

    The device name becomes nvidia-smi's when the container reported one, and the worker start
    becomes the container start. Without a client wall time (a resumed call whose submission time
    is unknown) the billed seconds stand in. Raises BackendError for a value that is not a result."""
    if not isinstance(data, dict) or not isinstance(data.get("status"), str) or "job_id" not in data:
        raise BackendError(f"Modal returned an unreadable result for run {run_id}: "
                           f"{type(data).__name__}")
    try:
        result = JobResult.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise BackendError(f"Modal returned an unreadable result for run {run_id}: "
                           f"{one_line(exc)}") from exc
    facts = ContainerFacts.from_dict(data)
    if facts.gpu_name_nvidia_smi:
        result = replace(result, device_name=facts.gpu_name_nvidia_smi)
    if facts.container_started_at is not None:
        result = replace(result, worker_started_at=facts.container_started_at)
    if facts.cold and facts.compile_seconds:  # compiled in @modal.enter, before this first job
        stages = dict(result.stages)
        stages["compile"] = stages.get("compile", 0.0) + facts.compile_seconds
        result = replace(result, stages=stages)
    billed = billed_seconds(result, facts)
    wall = billed if client_wall_seconds is None else max(0.0, client_wall_seconds)
    return Finished(run_id=run_id, result=result, client_wall_seconds=wall, cold=facts.cold,
                    billed_seconds=billed)


def describe_modal_error(exc: BaseException, app_name: str = APP_NAME) -> str:
    """One line for an exception raised by the Modal client or by the remote call."""
    import modal.exception as mx

    if isinstance(exc, UserError):
        return one_line(exc)
    if isinstance(exc, mx.AuthError):
        return f"Modal rejected the token ({one_line(exc)}): run `modal token new`"
    if isinstance(exc, mx.NotFoundError):
        return (f"Modal app {app_name!r} (class {CLASS_NAME}) is not deployed in this workspace: "
                f"run `modal deploy workers/modal_app.py` ({one_line(exc)})")
    if isinstance(exc, mx.ConnectionError):
        return f"cannot reach Modal: {one_line(exc)}"
    if isinstance(exc, mx.FunctionTimeoutError):
        return f"the job ran past the container timeout on Modal ({one_line(exc)})"
    if isinstance(exc, mx.OutputExpiredError):
        return "the call's result expired on Modal before it was collected"
    return f"remote call failed: {one_line(exc)}"


def call_with_deadline(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run fn in a daemon thread and return its value (or raise its exception); raise
    ModalUnreachableError when it has not finished within timeout seconds (the thread is
    abandoned, never joined)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"modal: {what}", daemon=True).start()
    if not done.wait(timeout):
        raise ModalUnreachableError(
            f"Modal did not answer within {timeout:g} s while {what}: check the network")
    if "error" in box:
        raise box["error"]
    return box["value"]


# ---------------------------------------------------------------------------------------------
# The backend.


@dataclass
class _Tracked:
    """A spawned call being polled."""

    run_id: str
    """Store id of the run."""
    call_id: str
    """Modal FunctionCall id."""
    progress_key: str
    """Key of its progress in the progress Dict (the job id)."""
    submitted_at: float | None
    """Unix time of the spawn, None when unknown (a resumed call)."""
    call: Any = None
    """The modal.FunctionCall, once looked up."""
    last_progress: Progress | None = None
    """Last progress reported to the sink (only changes are reported)."""


class ModalBackend:
    """Runs submissions on the deployed Modal app, one GPU pool per catalog GPU."""

    name = "modal"

    def __init__(self, app_name: str = APP_NAME, poll_interval: float = 1.0,
                 connect_timeout: float = 20.0, lost_contact_timeout: float = 120.0,
                 progress_dict_name: str = PROGRESS_DICT_NAME):
        """connect_timeout bounds each network step; after lost_contact_timeout seconds without
        any answer while polling, the remaining runs fail (their calls go on remotely and can be
        picked up again with resume)."""
        self.app_name = app_name
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self.lost_contact_timeout = lost_contact_timeout
        self.progress_dict_name = progress_dict_name
        self._cls: Any = None
        self._progress: Any = None

    def preflight(self, gpus: Sequence[str]) -> None:
        """Raise InputError for a GPU outside the catalog, BackendError without a Modal token.
        Sends nothing over the network."""
        for gpu in gpus:
            modal_gpu_for(gpu)
        require_token()

    def execute(self, submissions: Sequence[Submission], sink: EventSink) -> None:
        """Spawn every submission on its GPU, then poll until each is reported finished or failed.
        Never raises for a run's failure (no token, unreachable, not deployed: every run fails)."""
        try:
            require_token()
        except BackendError as exc:
            for sub in submissions:
                sink.failed(sub.run_id, one_line(exc))
            return
        tracked: list[_Tracked] = []
        for index, sub in enumerate(submissions):
            try:
                gpu = modal_gpu_for(sub.gpu)
            except UserError as exc:
                sink.failed(sub.run_id, one_line(exc))
                continue
            submitted_at = time.time()
            abandoned = threading.Event()
            try:
                call_id = call_with_deadline(lambda: self._spawn(gpu, sub.job, abandoned),
                                             self.connect_timeout, f"submitting run {sub.run_id}")
            except Exception as exc:  # noqa: BLE001 - reported per run
                abandoned.set()
                reason = describe_modal_error(exc, self.app_name)
                sink.failed(sub.run_id, reason)
                if _fails_every_call(exc):
                    for rest in submissions[index + 1:]:
                        sink.failed(rest.run_id, reason)
                    break
                continue
            sink.submitted(sub.run_id, call_id, f"modal:{gpu}")
            tracked.append(_Tracked(sub.run_id, call_id, sub.job.job_id, submitted_at))
        self._poll(tracked, sink)

    def resume(self, call_ids: Mapping[str, str], sink: EventSink,
               submitted_at: Mapping[str, float] | None = None) -> None:
        """Reattach to calls spawned earlier (maybe by another process) and poll them to the end.
        call_ids maps run id -> Modal call id; submitted_at (unix times) gives the client wall time,
        without it the billed seconds stand in. Never raises for a run's failure."""
        try:
            require_token()
        except BackendError as exc:
            for run_id in call_ids:
                sink.failed(run_id, one_line(exc))
            return
        submitted_at = submitted_at or {}
        self._poll([_Tracked(run_id, call_id, run_id, submitted_at.get(run_id))
                    for run_id, call_id in call_ids.items()], sink)

    # Network steps (each called through call_with_deadline).

    def _spawn(self, gpu: str, job: Job, abandoned: threading.Event) -> str:
        """Spawn the job; a call that only comes back after its caller gave up is cancelled, so
        no run goes on untracked (and billed) on Modal."""
        import modal

        if self._cls is None:
            self._cls = modal.Cls.from_name(self.app_name, CLASS_NAME)
        upscaler = self._cls.with_options(gpu=gpu)(**upscaler_params(job))
        call = upscaler.run.spawn(job.to_dict())
        if abandoned.is_set():
            call.cancel()
        return call.object_id

    def _check(self, item: _Tracked) -> tuple[bool, Any]:
        """(True, value) when the call has returned, (False, progress value) while it runs; raises
        what the remote call raised."""
        import modal

        if item.call is None:
            item.call = modal.FunctionCall.from_id(item.call_id)
        try:
            return True, item.call.get(timeout=0)
        except TimeoutError:  # the builtin: still running (Modal's own timeouts are not this)
            pass
        if self._progress is None:
            self._progress = modal.Dict.from_name(self.progress_dict_name, create_if_missing=True)
        try:
            return False, self._progress.get(item.progress_key)
        except Exception:  # noqa: BLE001 - progress is advisory
            return False, None

    def _poll(self, tracked: list[_Tracked], sink: EventSink) -> None:
        pending = list(tracked)
        last_contact = time.monotonic()
        while pending:
            for item in list(pending):
                try:
                    returned, value = call_with_deadline(
                        lambda: self._check(item), self.connect_timeout, f"polling run {item.run_id}")
                except ModalUnreachableError as exc:
                    if time.monotonic() - last_contact < self.lost_contact_timeout:
                        continue
                    for lost in pending:
                        sink.failed(lost.run_id, f"{one_line(exc)}; the call {lost.call_id} may "
                                                 f"still finish on Modal (resume picks it up)")
                    return
                except Exception as exc:  # noqa: BLE001 - the remote call raised
                    last_contact = time.monotonic()
                    pending.remove(item)
                    sink.failed(item.run_id, _poll_error(exc, item.call_id, self.app_name))
                    continue
                last_contact = time.monotonic()
                if returned:
                    pending.remove(item)
                    self._report(item, value, sink)
                else:
                    progress = decode_progress(item.progress_key, value)
                    if progress is not None and progress != item.last_progress:
                        item.last_progress = progress
                        sink.progress(item.run_id, progress)
            if pending:
                time.sleep(self.poll_interval)

    def _report(self, item: _Tracked, value: Any, sink: EventSink) -> None:
        wall = None if item.submitted_at is None else time.time() - item.submitted_at
        try:
            outcome = finished_from_result(item.run_id, value, wall)
        except BackendError as exc:
            sink.failed(item.run_id, one_line(exc))
            return
        sink.finished(outcome)


def _fails_every_call(exc: BaseException) -> bool:
    """Whether an error while submitting one run means no other run can be submitted either."""
    import modal.exception as mx

    return isinstance(exc, (ModalUnreachableError, mx.AuthError, mx.NotFoundError,
                            mx.ConnectionError))


def _poll_error(exc: BaseException, call_id: str, app_name: str) -> str:
    """One line for an error raised while polling a call."""
    import modal.exception as mx

    if isinstance(exc, mx.NotFoundError):
        return (f"Modal has no call {call_id} (expired, or spawned in another workspace): "
                f"{one_line(exc)}")
    return describe_modal_error(exc, app_name)
