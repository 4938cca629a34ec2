"""The Modal backend: spawn each run on the deployed Upscaler class with its GPU, poll the calls.

Calls are spawned (never awaited), their ids reported through the sink (the orchestrator stores
them) and polled with FunctionCall.get(timeout=0), so `resume` in another process, or after a
dashboard reload, can pick them up again by id. Every network step runs in a daemon thread with a
deadline, so an unreachable Modal (whose client blocks ~57 s before raising) fails in bounded time
and never on the caller's thread.

How runs share containers is the plan's (ContainerPolicy): 'sequential' keeps one lane per GPU,
spawning a GPU's next run when its previous one has come back, so they reuse one warm container
(with_options max_containers=1 bounds it); 'parallel' spawns everything at once. A run that shows
no sign of life (no progress, no container assigned) within the queue-wait limit is cancelled and
fails with "no <GPU> capacity within ..."; in a sequential lane the runs behind it fail with it.

Every call into the Modal client goes through `self.sdk` (the `modal` module unless a test hands
in a fake): Cls.from_name, Cls.with_options, the instance's run.spawn, FunctionCall.from_id,
FunctionCall.get/cancel/get_call_graph and Dict.from_name/get. tests/test_modal_calls.py binds
every one of them against modal 1.6.4's own signatures.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, TypeVar

from bench.backends.base import EventSink, Submission
from bench.backends.modal_credentials import NO_TOKEN_MESSAGE, modal_token_present, require_token
from bench.backends.modal_results import finished_from_result, startup_before_job
from bench.plan import DEFAULT_QUEUE_WAIT_LIMIT_SECONDS, Plan
from core.errors import BackendError, UserError, one_line
from core.job import Job, Progress, WarmShape
from core.resources import DEFAULT_CPU_CORES, DEFAULT_SCALEDOWN_WINDOW_SECONDS
from workers.modal_app import (
    APP_NAME,
    CLASS_NAME,
    PROGRESS_DICT_NAME,
    container_options,
    decode_progress,
)

__all__ = ["NO_TOKEN_MESSAGE", "ContainerPolicy", "ModalBackend", "ModalUnreachableError",
           "startup_before_job", "call_with_deadline", "describe_modal_error", "finished_from_result",
           "modal_gpu_for", "modal_token_present", "require_token", "upscaler_params"]

T = TypeVar("T")


class ModalUnreachableError(BackendError):
    """Modal did not answer within the deadline (network down, or Modal itself unreachable)."""


@dataclass(frozen=True)
class ContainerPolicy:
    """How a plan's runs use Modal containers (the plan's fields, stored with the experiment)."""

    reuse: str = "sequential"
    """'sequential' (one lane per GPU on one warm container) or 'parallel' (all at once)."""
    scaledown_window: int = DEFAULT_SCALEDOWN_WINDOW_SECONDS
    """Seconds an idle container stays up (with_options scaledown_window)."""
    queue_wait_limit: float = DEFAULT_QUEUE_WAIT_LIMIT_SECONDS
    """Seconds a run may wait for its GPU before its call is cancelled."""
    cpu_cores: float = DEFAULT_CPU_CORES
    """CPU cores each container asks for (with_options cpu), billed at least this."""
    region: str | None = None
    """Region the containers are pinned to (with_options region), None for anywhere."""

    @classmethod
    def of(cls, plan: Plan) -> "ContainerPolicy":
        """The policy a plan asks for. Raises nothing."""
        return cls(plan.container_reuse, plan.scaledown_window_seconds,
                   float(plan.queue_wait_limit_seconds), float(plan.cpu_cores), plan.region)


# ---------------------------------------------------------------------------------------------
# Plain functions (no network).


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


def capacity_message(gpu: str, limit: float) -> str:
    """'no L4 capacity within 15 min' (seconds below a minute). Raises nothing."""
    span = f"{limit / 60:g} min" if limit >= 60 else f"{limit:g} s"
    return f"no {gpu} capacity within {span}"


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
    gpu: str = ""
    """The plan's GPU label (for the capacity message)."""
    lane: "_Lane | None" = None
    """The lane it came from (sequential reuse), None for a resumed call."""
    call: Any = None
    """The modal.FunctionCall, once looked up."""
    last_progress: Progress | None = None
    """Last progress reported to the sink (only changes are reported)."""
    alive: bool = False
    """Whether it showed a sign of life (progress, or a container assigned)."""


@dataclass
class _Lane:
    """Submissions that run one after another (one GPU's, in sequential reuse)."""

    queue: deque = field(default_factory=deque)
    """Submissions not spawned yet, each with its Modal GPU string."""
    busy: bool = False
    """Whether one of its calls is in flight."""


class ModalBackend:
    """Runs submissions on the deployed Modal app, one GPU pool per catalog GPU."""

    name = "modal"

    def __init__(self, app_name: str = APP_NAME, poll_interval: float = 1.0,
                 connect_timeout: float = 20.0, lost_contact_timeout: float = 120.0,
                 progress_dict_name: str = PROGRESS_DICT_NAME,
                 policy: ContainerPolicy | None = None, sdk: Any = None,
                 clock: Callable[[], float] = time.time):
        """connect_timeout bounds each network step; after lost_contact_timeout seconds without
        any answer while polling, the remaining runs fail (their calls go on remotely and can be
        picked up again with resume). sdk stands in for the `modal` module (tests); clock gives
        unix time (spawn times, the queue-wait limit)."""
        self.app_name = app_name
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self.lost_contact_timeout = lost_contact_timeout
        self.progress_dict_name = progress_dict_name
        self.policy = policy or ContainerPolicy()
        self.clock = clock
        self._sdk = sdk
        self._cls: Any = None
        self._progress: Any = None

    @property
    def sdk(self) -> Any:
        """The Modal client module (imported on first use)."""
        if self._sdk is None:
            import modal

            self._sdk = modal
        return self._sdk

    def preflight(self, gpus: Sequence[str]) -> None:
        """Raise InputError for a GPU outside the catalog, BackendError without a Modal token.
        Sends nothing over the network."""
        for gpu in gpus:
            modal_gpu_for(gpu)
        require_token()

    def execute(self, submissions: Sequence[Submission], sink: EventSink) -> None:
        """Spawn every submission on its GPU (in lanes per the policy), then poll until each is
        reported finished or failed. Never raises for a run's failure (no token, unreachable,
        not deployed, no capacity: the runs concerned fail)."""
        try:
            require_token()
        except BackendError as exc:
            for sub in submissions:
                sink.failed(sub.run_id, one_line(exc))
            return
        lanes: dict[str, _Lane] = {}
        for sub in submissions:
            try:
                gpu = modal_gpu_for(sub.gpu)
            except UserError as exc:
                sink.failed(sub.run_id, one_line(exc))
                continue
            key = sub.gpu if self.policy.reuse == "sequential" else sub.run_id
            lanes.setdefault(key, _Lane()).queue.append((sub, gpu))
        self._run(list(lanes.values()), [], sink)

    def resume(self, call_ids: Mapping[str, str], sink: EventSink,
               submitted_at: Mapping[str, float] | None = None) -> None:
        """Reattach to calls spawned earlier (maybe by another process) and poll them to the end.
        call_ids maps run id -> Modal call id; submitted_at (unix times) gives the client wall
        time and the queue wait, without it the billed seconds stand in. Never raises for a
        run's failure."""
        try:
            require_token()
        except BackendError as exc:
            for run_id in call_ids:
                sink.failed(run_id, one_line(exc))
            return
        submitted_at = submitted_at or {}
        self._run([], [_Tracked(run_id, call_id, run_id, submitted_at.get(run_id))
                       for run_id, call_id in call_ids.items()], sink)

    def cancel_calls(self, call_ids: Mapping[str, str]) -> dict[str, str]:
        """Cancel these calls (run id -> Modal call id) on Modal; returns run id -> one line for
        each call that could not be cancelled (no token, unreachable). Raises nothing."""
        try:
            require_token()
        except BackendError as exc:
            return {run_id: f"run {run_id}: its call {call_id} was not cancelled: {one_line(exc)}"
                    for run_id, call_id in call_ids.items()}
        problems = {}
        for run_id, call_id in call_ids.items():
            item = _Tracked(run_id, call_id, run_id, None)
            try:
                call_with_deadline(lambda: self._cancel(item), self.connect_timeout,
                                   f"cancelling run {run_id}")
            except Exception as exc:  # noqa: BLE001 - reported per call
                problems[run_id] = (f"run {run_id}: its call {call_id} was not cancelled: "
                                    f"{describe_modal_error(exc, self.app_name)}")
        return problems

    # The loop.

    def _run(self, lanes: list[_Lane], pending: list[_Tracked], sink: EventSink) -> None:
        last_contact = time.monotonic()
        while True:
            if not self._launch(lanes, pending, sink):
                return
            if not pending:
                return
            self._drop_cancelled(pending, sink)
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
                    self._fail_queued(lanes, sink, f"not started: {one_line(exc)}")
                    return
                except Exception as exc:  # noqa: BLE001 - the remote call raised
                    last_contact = time.monotonic()
                    self._done(item, pending)
                    sink.failed(item.run_id, _poll_error(exc, item.call_id, self.app_name))
                    continue
                last_contact = time.monotonic()
                if returned:
                    self._done(item, pending)
                    self._report(item, value, sink)
                    continue
                progress = decode_progress(item.progress_key, value)
                if progress is not None:
                    item.alive = True
                    if progress != item.last_progress:
                        item.last_progress = progress
                        sink.progress(item.run_id, progress)
                self._enforce_queue_limit(item, pending, sink)
            if pending:
                time.sleep(self.poll_interval)

    def _launch(self, lanes: list[_Lane], pending: list[_Tracked], sink: EventSink) -> bool:
        """Spawn the next submission of every idle lane. False when an error means no call can
        be spawned at all (every queued run has been failed then)."""
        for lane in lanes:
            while not lane.busy and lane.queue:
                sub, gpu = lane.queue.popleft()
                if sink.cancelled([sub.run_id]):
                    continue
                submitted_at = self.clock()
                abandoned = threading.Event()
                try:
                    call_id = call_with_deadline(lambda: self._spawn(gpu, sub.job, abandoned),
                                                 self.connect_timeout,
                                                 f"submitting run {sub.run_id}")
                except Exception as exc:  # noqa: BLE001 - reported per run
                    abandoned.set()
                    reason = describe_modal_error(exc, self.app_name)
                    sink.failed(sub.run_id, reason)
                    if _fails_every_call(exc):
                        self._fail_queued(lanes, sink, reason)
                        return bool(pending)
                    continue
                sink.submitted(sub.run_id, call_id, f"modal:{gpu}")
                lane.busy = True
                pending.append(_Tracked(sub.run_id, call_id, sub.job.job_id, submitted_at,
                                        gpu=sub.gpu, lane=lane))
        return True

    def _drop_cancelled(self, pending: list[_Tracked], sink: EventSink) -> None:
        """Cancel the calls of runs the user cancelled and stop polling them (a call that cannot
        be reached now is cancelled by `bench cancel` itself, which holds its id too)."""
        cancelled = sink.cancelled([item.run_id for item in pending])
        for item in [item for item in pending if item.run_id in cancelled]:
            try:
                call_with_deadline(lambda: self._cancel(item), self.connect_timeout,
                                   f"cancelling run {item.run_id}")
            except Exception:  # noqa: BLE001 - the run is cancelled in the store either way
                pass
            self._done(item, pending)

    def _done(self, item: _Tracked, pending: list[_Tracked]) -> None:
        pending.remove(item)
        if item.lane is not None:
            item.lane.busy = False

    @staticmethod
    def _fail_queued(lanes: list[_Lane], sink: EventSink, reason: str) -> None:
        for lane in lanes:
            while lane.queue:
                sub, _ = lane.queue.popleft()
                sink.failed(sub.run_id, reason)

    def _enforce_queue_limit(self, item: _Tracked, pending: list[_Tracked],
                             sink: EventSink) -> None:
        """Cancel a call that has waited past the limit without a sign of life (a container
        assigned counts, as the call graph shows it), and fail its run; in a sequential lane the
        runs behind it fail too."""
        limit = self.policy.queue_wait_limit
        if item.alive or item.submitted_at is None or self.clock() - item.submitted_at < limit:
            return
        try:
            started = call_with_deadline(lambda: self._assigned(item), self.connect_timeout,
                                         f"checking run {item.run_id}")
        except Exception:  # noqa: BLE001 - unknown: treat as not started
            started = False
        if started:
            item.alive = True
            return
        try:
            call_with_deadline(lambda: self._cancel(item), self.connect_timeout,
                               f"cancelling run {item.run_id}")
        except Exception:  # noqa: BLE001 - the run fails either way; the call may linger
            pass
        reason = capacity_message(item.gpu or "GPU", limit)
        self._done(item, pending)
        sink.failed(item.run_id, f"{reason}: its call {item.call_id} was cancelled")
        if item.lane is not None:
            self._fail_queued([item.lane], sink, f"{reason} (an earlier run of the same GPU "
                                                 f"waited that long)")

    # Network steps (each called through call_with_deadline).

    def _spawn(self, gpu: str, job: Job, abandoned: threading.Event) -> str:
        """Spawn the job; a call that only comes back after its caller gave up is cancelled, so
        no run goes on untracked (and billed) on Modal."""
        if self._cls is None:
            self._cls = self.sdk.Cls.from_name(self.app_name, CLASS_NAME)
        one = 1 if self.policy.reuse == "sequential" else None
        upscaler = self._cls.with_options(**container_options(
            gpu, self.policy.scaledown_window, max_containers=one, cpu=self.policy.cpu_cores,
            region=self.policy.region))
        call = upscaler(**upscaler_params(job)).run.spawn(job.to_dict())
        if abandoned.is_set():
            call.cancel()
        return call.object_id

    def _call(self, item: _Tracked) -> Any:
        if item.call is None:
            item.call = self.sdk.FunctionCall.from_id(item.call_id)
        return item.call

    def _check(self, item: _Tracked) -> tuple[bool, Any]:
        """(True, value) when the call has returned, (False, progress value) while it runs; raises
        what the remote call raised."""
        try:
            return True, self._call(item).get(timeout=0)
        except TimeoutError:  # the builtin: still running (Modal's own timeouts are not this)
            pass
        if self._progress is None:
            self._progress = self.sdk.Dict.from_name(self.progress_dict_name,
                                                     create_if_missing=True)
        try:
            return False, self._progress.get(item.progress_key)
        except Exception:  # noqa: BLE001 - progress is advisory
            return False, None

    def _assigned(self, item: _Tracked) -> bool:
        """Whether Modal has handed the call's input to a container (its call graph names a
        task). Best effort: modal documents the call graph as not real-time."""
        return any(getattr(node, "task_id", "") for node in self._call(item).get_call_graph())

    def _cancel(self, item: _Tracked) -> None:
        self._call(item).cancel()

    def _report(self, item: _Tracked, value: Any, sink: EventSink) -> None:
        now = self.clock()
        wall = None if item.submitted_at is None else now - item.submitted_at
        try:
            outcome = finished_from_result(item.run_id, value, wall, item.submitted_at,
                                           cpu_request=self.policy.cpu_cores)
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
