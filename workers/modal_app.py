"""The Modal deployment: `modal deploy workers/modal_app.py`.

One App, one image (requirements-worker.txt; the core, store and workers packages), the R2 secret and one class, Upscaler, whose
container loads ONE model at start (@modal.enter) and then serves jobs through
workers.pipeline.run_job. Each GPU of a plan is the same class with another GPU:
`Upscaler.with_options(gpu="L4")(model=..., ...)` — same image, same code, its own pool.

Importing this module is cheap (no torch, no CUDA): the worker's heavy imports happen inside the
container's methods. The progress format and the container facts returned beside each JobResult
live here too, so the client (bench.backends.modal_backend) decodes exactly what the worker wrote.

What modal 1.6.4 does that shapes this module (read in .venv/lib/python3.11/site-packages/modal):
- `Cls.with_options(gpu=...)` (cls.py) builds its resources with `_FunctionOptions.new`
  (_function_variants.py), which calls `convert_fn_config_to_resources_config(cpu, memory, gpu)`
  (_resources.py) with whatever it was given: gpu alone leaves milli_cpu and memory_mb at 0, so
  container_options() always passes this container's cpu and memory too.
- A Volume written at runtime is persisted by `Volume.commit()` (volume.py) or a clean container
  exit only: the weights are committed right after a download (WeightsCache).
- `Dict.put` (dict.py) is a network call with no timeout argument: progress goes out from a
  background thread that keeps only the latest value (ProgressPublisher), never from the job.
- `App(tags=...)` (app.py) is published with the deployment (runner.py `_deploy_app`), and
  `App.get_tags()` reads it back without starting a container: the code version stamp.
"""

# No `from __future__ import annotations`: Modal reads the class parameters' annotations as types.
import logging
import os
import resource
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import modal

from core.job import Job, Progress
from core.paths import weights_dir
from core.resources import (
    DEFAULT_CPU_CORES,
    DEFAULT_MEMORY_GIB,
    DEFAULT_SCALEDOWN_WINDOW_SECONDS,
    THREADS_PER_CORE,
)
from core.stages import STAGES
from workers.code_version import TAG as CODE_VERSION_TAG
from workers.code_version import code_version

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
SCALEDOWN_WINDOW_SECONDS = DEFAULT_SCALEDOWN_WINDOW_SECONDS
"""How long an idle container stays up (and billed) waiting for the next job, unless the plan's
with_options says otherwise (container_options)."""
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
PROGRESS_FLUSH_SECONDS = 1.0
"""How long a finished job waits for its last progress write before returning anyway."""
CODE_VERSION = code_version()
"""Fingerprint of the shipped code, stamped on the App at deploy (tag CODE_VERSION_TAG)."""

_REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements-worker.txt"
"""The worker's own requirements: no dashboard, history database or plotting in the GPU image."""

app = modal.App(APP_NAME, tags={CODE_VERSION_TAG: CODE_VERSION})

FIRST_INSTALLED = ("torch", "torchvision")
"""Installed before the rest of the requirements: basicsr 1.4.2 is source-only and needs torch to
build (setup_requires), so it builds without isolation against these pinned wheels instead of an
unpinned torch downloaded into a throwaway build environment."""
BUILT_AGAINST_THEM = ("basicsr",)
"""Built with --no-build-isolation, after FIRST_INSTALLED."""


def worker_pins(names: tuple[str, ...], path: Path = _REQUIREMENTS) -> list[str]:
    """The 'name==version' lines of the worker's requirements for `names`, in file order (the
    file keeps every version). Raises ValueError when one of them is not pinned there."""
    pins = {line.split("==")[0].strip().lower(): line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if "==" in line and not line.lstrip().startswith("#")}
    missing = [n for n in names if n not in pins]
    if missing:
        raise ValueError(f"{path.name} pins no {', '.join(missing)}")
    return [pins[n] for n in names]


# The requirements file is read when the image is built (on the deploying machine), never inside
# the container. On Modal's builders torch comes from the package registry with CUDA.
image = (
    modal.Image.debian_slim(python_version="3.11")
    .apt_install("libgl1", "libglib2.0-0")
    .pip_install(*worker_pins(FIRST_INSTALLED))
    .pip_install(*worker_pins(BUILT_AGAINST_THEM), extra_options="--no-build-isolation")
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
    container_booted_at: float | None = None
    """Unix time the container's process started (boot, before @modal.enter and its imports);
    Modal bills from about here."""
    cpu_request: float | None = None
    """CPU cores of the class's default request (the client records what it asked with_options
    for, the plan's cores); billed at least the request."""
    memory_request_gib: float | None = None
    """Memory the container asked for, GiB (billed at least this)."""
    cpu_used_cores: float | None = None
    """Average physical CPU cores the process used during this job, as Modal bills them: CPU
    seconds (which count hardware threads) / wall seconds / THREADS_PER_CORE."""
    peak_memory_gib: float | None = None
    """Peak resident memory of the process so far, GiB."""

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
            container_booted_at=_as_float(data.get("container_booted_at")),
            cpu_request=_as_float(data.get("cpu_request")),
            memory_request_gib=_as_float(data.get("memory_request_gib")),
            cpu_used_cores=_as_float(data.get("cpu_used_cores")),
            peak_memory_gib=_as_float(data.get("peak_memory_gib")),
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
    """A ProgressCallback that hands a job's progress to a background thread, which writes only
    the latest value into a key-value store, at most once per min_interval.

    Calling it never waits on the network: it swaps the pending value and returns, so a store
    that stalls (a modal.Dict write has no timeout) cannot change the job's timings. Progress is
    advisory: a failing write is logged and swallowed, and writes pause for retry_after seconds.
    close() lets the last value out, waiting at most flush_timeout seconds.
    """

    def __init__(self, put: Callable[[str, dict[str, Any]], None], key: str,
                 min_interval: float = PROGRESS_MIN_INTERVAL, retry_after: float = 30.0,
                 flush_timeout: float = PROGRESS_FLUSH_SECONDS):
        self._put = put
        self._key = key
        self._min_interval = min_interval
        self._retry_after = retry_after
        self._flush_timeout = flush_timeout
        self._pending: dict[str, Any] | None = None
        self._closed = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._drain, daemon=True,
                                        name=f"progress {key}")
        self._thread.start()

    def __call__(self, progress: Progress) -> None:
        value = encode_progress(progress)
        with self._wake:
            self._pending = value
            self._wake.notify()

    def close(self) -> None:
        """Stop after writing the last pending value (waits at most flush_timeout seconds; a
        stalled write is abandoned to its daemon thread). Raises nothing."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(self._flush_timeout)

    def _drain(self) -> None:
        pause = 0.0
        while True:
            with self._wake:
                until = time.monotonic() + pause  # throttle: new values wait; close() cuts it short
                while not self._closed and (left := until - time.monotonic()) > 0:
                    self._wake.wait(left)
                while self._pending is None and not self._closed:
                    self._wake.wait()
                value, self._pending = self._pending, None
                closed = self._closed
            if value is not None:
                try:
                    self._put(self._key, value)
                    pause = self._min_interval
                except Exception:  # noqa: BLE001 - progress never fails a job
                    log.warning("progress write for %s failed; pausing progress writes",
                                self._key, exc_info=True)
                    pause = self._retry_after
                    if closed:
                        return
            if closed:
                with self._wake:
                    if self._pending is None:
                        return


def weights_snapshot(folder: Path | str) -> frozenset[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every finished file under folder (temporary '.part'
    files and hidden files left out); empty when the folder does not exist. Raises nothing."""
    root = Path(folder)
    found = set()
    try:
        paths = list(root.rglob("*"))
    except OSError:
        return frozenset()
    for path in paths:
        if path.name.startswith(".") or path.name.endswith(".part"):
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file():
            found.add((path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    return frozenset(found)


class WeightsCache:
    """The weights Volume as the container sees it: commit it as soon as a download (or an
    offline conversion) added a file, instead of at a clean exit only.

    Two cold containers downloading the same weights at once cannot corrupt it: workers.models
    writes every file under a unique temporary name and renames it into place only after its
    sha256 checked out, so each container's view only ever holds whole files, and the Volume
    keeps one of the two identical copies at commit."""

    def __init__(self, volume: Any, folder: Path | str):
        self._volume = volume
        self._folder = Path(folder)
        self._seen = weights_snapshot(self._folder)

    def commit_if_changed(self) -> bool:
        """Commit the Volume when files were added or replaced since the last look; returns
        whether it committed. A failed commit is logged, never raised (the weights are still on
        this container's disk; the next download retries)."""
        now = weights_snapshot(self._folder)
        if now == self._seen:
            return False
        try:
            self._volume.commit()
        except Exception:  # noqa: BLE001 - the job goes on with the local copy
            log.warning("committing the weights volume failed", exc_info=True)
            return False
        self._seen = now
        return True


def process_started_at() -> float | None:
    """Unix time this process started (from /proc: its start tick after boot, plus the boot
    time), None where /proc does not say. Inside a Modal container this is the container's boot,
    before the Python imports and @modal.enter. Raises nothing."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def used_cores(cpu_seconds_used: float, wall: float) -> float | None:
    """Physical cores a job used on average (Modal bills cores of THREADS_PER_CORE hardware
    threads, and CPU seconds count threads); None without wall time."""
    return cpu_seconds_used / wall / THREADS_PER_CORE if wall > 0 else None


def peak_memory_gib() -> float:
    """Peak resident memory of this process (or its largest child), GiB (ru_maxrss is KiB on
    Linux)."""
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return peak_kib / (1024 * 1024)


def container_options(gpu: str, scaledown_window: int = SCALEDOWN_WINDOW_SECONDS,
                      max_containers: int | None = None,
                      cpu: float = CONTAINER_CPU, region: str | None = None) -> dict[str, Any]:
    """The keyword arguments of `Upscaler.with_options(...)` for one GPU of a plan: the GPU, and
    always the container's cpu (the plan's cores) and memory (with gpu alone modal 1.6.4 sends cpu
    0 and memory 0: see the module docstring), the plan's scaledown window and, for sequential
    reuse, at most one container; the plan's region when it pins one. Raises nothing."""
    options: dict[str, Any] = {"gpu": gpu, "cpu": float(cpu), "memory": CONTAINER_MEMORY_MIB,
                               "scaledown_window": int(scaledown_window)}
    if max_containers is not None:
        options["max_containers"] = int(max_containers)
    if region:
        options["region"] = region
    return options


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
    """Model name from the catalog (workers.catalog.MODELS)."""
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
        self._booted_at = process_started_at() or self._started_at
        self._weights = WeightsCache(weights_volume, weights_dir())
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
        finally:
            self._weights.commit_if_changed()  # a download lands in the Volume at once
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
        cpu_before, wall_before = cpu_seconds(), time.monotonic()
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
            try:
                result = run_job(parsed, storage, on_progress=publisher, cache=self._cache)
            finally:
                publisher.close()
            self._weights.commit_if_changed()  # the job loaded weights the preload had not
        wall = time.monotonic() - wall_before
        facts = ContainerFacts(container_started_at=self._started_at,
                               gpu_name_nvidia_smi=self._gpu_name, cold=cold,
                               model_load_seconds=self._load_seconds,
                               compile_seconds=self._compile_seconds,
                               container_booted_at=self._booted_at, cpu_request=CONTAINER_CPU,
                               memory_request_gib=CONTAINER_MEMORY_MIB / 1024,
                               cpu_used_cores=used_cores(cpu_seconds() - cpu_before, wall),
                               peak_memory_gib=peak_memory_gib())
        return {**result.to_dict(), **facts.to_dict()}
