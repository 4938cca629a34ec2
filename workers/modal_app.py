"""The Modal deployment: `modal deploy workers/modal_app.py`.

One App, one image (requirements-worker.txt; the core, store and workers packages), the R2 secret and one class, Upscaler, whose
container loads ONE model at start (@modal.enter) and then serves jobs through
workers.pipeline.run_job. Each GPU of a plan is the same class with another GPU:
`Upscaler.with_options(gpu="L4")(model=..., ...)` — same image, same code, its own pool.

Importing this module is cheap (no torch, no CUDA): the worker's heavy imports happen inside the
container's methods. The progress format and the container facts returned beside each JobResult
live here too, so the client (bench.backends.modal_backend) decodes exactly what the worker wrote.
"""

# No `from __future__ import annotations`: Modal reads the class parameters' annotations as types.
import logging
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import modal

from core.job import STAGES, Job, Progress
from core.resources import DEFAULT_CPU_CORES, DEFAULT_MEMORY_GIB

log = logging.getLogger(__name__)

APP_NAME = "upscale-gpu-bench"
"""Name of the deployed App (what Cls.from_name looks up)."""
CLASS_NAME = "Upscaler"
"""Name of the deployed class."""
R2_SECRET_NAME = "r2-credentials"
"""Modal Secret holding R2_ENDPOINT_URL, R2_BUCKET, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY."""
PROGRESS_DICT_NAME = "upscale-gpu-bench-progress"
"""modal.Dict the workers write live progress into, keyed by job id."""
JOB_TIMEOUT_SECONDS = 60 * 60
"""Longest a single job may run (a 900-frame x4plus clip with the reference engine on a T4 fits)."""
SCALEDOWN_WINDOW_SECONDS = 120
"""How long an idle container stays up (and billed) waiting for the next job of its plan."""
CONTAINER_CPU = DEFAULT_CPU_CORES
"""CPU cores requested per container (decode and H.264 encode run beside the GPU); the all-in
cost in bench.pricing assumes the same number."""
CONTAINER_MEMORY_MIB = int(DEFAULT_MEMORY_GIB * 1024)
"""Memory requested per container, in MiB (bench.pricing's all-in cost assumes the same)."""
WEIGHTS_VOLUME_NAME = "upscale-gpu-bench-weights"
"""modal.Volume caching downloaded weights, so a cold container loads them instead of downloading."""
WEIGHTS_DIR = "/weights"
"""Where the weights Volume is mounted in the container (BENCH_WEIGHTS_DIR points there)."""
PROGRESS_MIN_INTERVAL = 0.5
"""Seconds between two progress writes of one job (at most 2 per second)."""

_REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements-worker.txt"
"""The worker's own requirements: no dashboard, history database or plotting in the GPU image."""

app = modal.App(APP_NAME)

# The requirements file is read when the image is built (on the deploying machine), never inside
# the container. On Modal's builders torch comes from the package registry with CUDA.
image = (
    modal.Image.debian_slim(python_version="3.11")
    .apt_install("libgl1", "libglib2.0-0")
    .pip_install_from_requirements(str(_REQUIREMENTS))
    .env({"BENCH_WEIGHTS_DIR": WEIGHTS_DIR})
    .add_local_python_source("core", "store", "workers")
)

r2_secret = modal.Secret.from_name(R2_SECRET_NAME)
progress_dict = modal.Dict.from_name(PROGRESS_DICT_NAME, create_if_missing=True)
weights_volume = modal.Volume.from_name(WEIGHTS_VOLUME_NAME, create_if_missing=True)


# ---------------------------------------------------------------------------------------------
# Plain helpers (no Modal calls): the wire format of progress and container facts.


@dataclass(frozen=True)
class ContainerFacts:
    """What the container knows about itself, returned beside each JobResult."""

    container_started_at: float | None
    """Unix time the container's @modal.enter began (start of the model load)."""
    gpu_name_nvidia_smi: str | None
    """The card the container actually got, as nvidia-smi names it (None without a GPU)."""
    cold: bool
    """True for the first job this container ran (it paid for the start and the model load)."""
    model_load_seconds: float | None
    """Seconds @modal.enter spent loading the model (None when the preload failed)."""
    compile_seconds: float | None = None
    """Seconds @modal.enter spent compiling for the jobs' shapes (None when it did not)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ContainerFacts":
        """Read the facts out of a result dict; missing or malformed values become None/False."""
        return cls(
            container_started_at=_as_float(data.get("container_started_at")),
            gpu_name_nvidia_smi=_as_text(data.get("gpu_name_nvidia_smi")),
            cold=data.get("cold") is True,
            model_load_seconds=_as_float(data.get("model_load_seconds")),
            compile_seconds=_as_float(data.get("compile_seconds")),
        )


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _as_text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def encode_progress(progress: Progress, now: float | None = None) -> dict[str, Any]:
    """The progress value stored under the job id in the progress Dict."""
    return {
        "stage": progress.stage,
        "frames_done": int(progress.frames_done),
        "frames_total": int(progress.frames_total),
        "updated_at": time.time() if now is None else now,
    }


def decode_progress(job_id: str, value: Any) -> Progress | None:
    """Inverse of encode_progress; None for a missing or malformed value (never raises)."""
    if not isinstance(value, Mapping):
        return None
    stage, done, total = value.get("stage"), value.get("frames_done"), value.get("frames_total")
    if stage not in STAGES or isinstance(done, bool) or isinstance(total, bool):
        return None
    if not isinstance(done, int) or not isinstance(total, int) or done < 0 or total < 0:
        return None
    return Progress(job_id=job_id, stage=stage, frames_done=done, frames_total=total)


class ProgressPublisher:
    """A ProgressCallback that writes a job's progress into a key-value store, throttled.

    Progress is advisory: a failing write is logged and swallowed, and further writes pause for
    retry_after seconds so an unreachable store cannot slow the job down more than once in a while.
    """

    def __init__(self, put: Callable[[str, dict[str, Any]], None], key: str,
                 min_interval: float = PROGRESS_MIN_INTERVAL, retry_after: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self._put = put
        self._key = key
        self._min_interval = min_interval
        self._retry_after = retry_after
        self._clock = clock
        self._next_at = float("-inf")

    def __call__(self, progress: Progress) -> None:
        now = self._clock()
        if now < self._next_at:
            return
        try:
            self._put(self._key, encode_progress(progress))
        except Exception:  # noqa: BLE001 - progress never fails a job
            log.warning("progress write for %s failed; pausing progress writes", self._key,
                        exc_info=True)
            self._next_at = now + self._retry_after
        else:
            self._next_at = now + self._min_interval


def nvidia_smi_gpu_name(runner: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> str | None:
    """The first GPU's name from nvidia-smi, else from torch, else None (no GPU). Never raises."""
    try:
        done = runner(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                      capture_output=True, text=True, timeout=15, check=True)
        names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        if names:
            return names[0]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a broken CUDA setup shows up in the job itself
        return None


def container_storage(env: Mapping[str, str] | None = None):
    """The object store a container uses: R2 from the r2-credentials secret's environment, or,
    only when BENCH_STORAGE=local (offline tests), the local directory $BENCH_DATA_DIR/objects.
    Raises StorageError naming the settings the secret lacks (never their values)."""
    from core.errors import StorageError
    from store.config import R2_SETTINGS, load_storage_config
    from store.objects import LocalDirectoryStore
    from store.r2 import R2Store

    env = dict(os.environ if env is None else env)
    env["BENCH_STORAGE"] = (env.get("BENCH_STORAGE") or "r2").strip().lower()
    if env["BENCH_STORAGE"] == "r2":
        missing = [var for var in R2_SETTINGS.values() if not env.get(var)]
        if missing:
            raise StorageError(f"the Modal secret {R2_SECRET_NAME!r} lacks {', '.join(missing)}: "
                               f"set them with `modal secret create {R2_SECRET_NAME} ...`")
    config = load_storage_config(env=env)
    if config.kind == "local":
        return LocalDirectoryStore(config.local_root)
    return R2Store(config)


# ---------------------------------------------------------------------------------------------
# The deployed class.


@app.cls(image=image, secrets=[r2_secret], timeout=JOB_TIMEOUT_SECONDS,
         scaledown_window=SCALEDOWN_WINDOW_SECONDS, cpu=CONTAINER_CPU, memory=CONTAINER_MEMORY_MIB,
         volumes={WEIGHTS_DIR: weights_volume})
class Upscaler:
    """A container serving upscale jobs with one preloaded engine (the parameters below)."""

    # The engine key of workers.pipeline (bench.backends.modal_backend.upscaler_params fills it
    # from the job), so the job finds its engine already loaded.
    model: str = modal.parameter(default="x4plus")
    """Model name from workers.models."""
    weights: str = modal.parameter(default="auto")
    """'auto' (official, cached in the weights Volume), 'random' or a path inside the container."""
    engine: str = modal.parameter(default="fast")
    """'fast' or 'reference'."""
    precision: str = modal.parameter(default="auto")
    """'auto', 'fp32', 'fp16' or 'bf16'."""
    batch_size: int = modal.parameter(default=4)
    """Frames per model call in the fast engine."""
    compile: str = modal.parameter(default="off")
    """torch.compile in the fast engine: 'off', 'on' or 'auto'."""
    warm_shape: str = modal.parameter(default="")
    """The jobs' shapes (WarmShape.to_text, '' when unknown): with compile, @modal.enter compiles
    for them, so the compile is paid once per container, before the first job."""
    device: str = modal.parameter(default="auto")
    """'auto' (the container's GPU), 'cuda:0' or 'cpu'."""

    @modal.enter()
    def load(self) -> None:
        """Record when the container started and which card it got, then load the model once.
        A failed load is not raised here: the job reports it (run_job retries the load)."""
        from core.errors import one_line
        from core.job import WarmShape
        from workers.pipeline import EngineKey, ModelCache

        self._started_at = time.time()
        self._jobs_run = 0
        self._gpu_name = nvidia_smi_gpu_name()
        self._cache = ModelCache()
        self._compile_seconds: float | None = None
        key = EngineKey(self.model, self.weights, self.device, self.engine, self.precision,
                        self.batch_size)
        try:
            self._load_seconds: float | None = self._cache.get(key)[1]
        except Exception as exc:  # noqa: BLE001 - reported through the job's failed result
            log.error("model preload failed: %s", one_line(exc))
            self._load_seconds = None
            return
        shape = WarmShape.from_text(self.warm_shape)
        if self.compile != "off" and shape is not None:
            try:
                self._compile_seconds = self._cache.precompile(key, self.compile, shape)
            except Exception as exc:  # noqa: BLE001 - the job compiles (or fails) itself then
                log.error("compile at start failed: %s", one_line(exc))

    @modal.method()
    def run(self, job: dict) -> dict:
        """Run one job (Job.to_dict()) and return JobResult.to_dict() plus ContainerFacts.
        Never raises for the job's own failure, a bad job dict or storage settings included."""
        from core.errors import InputError, UserError, one_line
        from core.job import JobResult
        from workers.pipeline import run_job

        cold = self._jobs_run == 0
        self._jobs_run += 1
        job_id = str(job.get("job_id", "")) if isinstance(job, dict) else ""
        try:
            if not isinstance(job, dict):
                raise InputError(f"a job must be a dict (Job.to_dict()), got {type(job).__name__}")
            parsed = Job.from_dict(job)
            storage = container_storage()
        except (UserError, TypeError, ValueError) as exc:
            now = time.time()
            result = JobResult(job_id=job_id, status="failed", error=one_line(exc),
                               stages={"total": 0.0}, device_name=self._gpu_name or "",
                               started_at=now, finished_at=now)
        else:
            publisher = ProgressPublisher(progress_dict.put, parsed.job_id)
            result = run_job(parsed, storage, on_progress=publisher, cache=self._cache)
        facts = ContainerFacts(container_started_at=self._started_at,
                               gpu_name_nvidia_smi=self._gpu_name, cold=cold,
                               model_load_seconds=self._load_seconds,
                               compile_seconds=self._compile_seconds)
        return {**result.to_dict(), **facts.to_dict()}
