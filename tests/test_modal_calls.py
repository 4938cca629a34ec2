"""Every call into the Modal client, held to modal 1.6.4's own signatures, and the defects of issue
9 that live on the Modal path: container resources (2), progress that cannot stall a job (3), the
weights Volume (4) and the queue-wait limit (6). Jobs run for real through `.local()` on the CPU
(tiny clip, animevideov3 with random weights); only the network is faked."""

from __future__ import annotations

import hashlib
import http.server
import inspect
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import modal
import pytest
from modal._utils.async_utils import synchronizer

from bench.backends.base import Submission
from bench.backends.modal_backend import ContainerPolicy, ModalBackend, upscaler_params
from bench.backends.modal_results import finished_from_result, queue_wait_seconds
from core.job import JobResult
from tests.jobs import CLIP, USER, tiny_job
from tests.modal_fakes import FakeDict, FakeModal, FakeVolume, Spawned
from tests.sinks import Sink
from workers import modal_app
from workers.modal_app import (
    APP_NAME,
    CLASS_NAME,
    PROGRESS_DICT_NAME,
    ContainerFacts,
    WeightsCache,
    container_options,
)

LOCAL_WARNING = "ignore:The Upscaler.run function is executing locally:UserWarning"


@pytest.fixture
def container_env(tmp_path: Path, tiny_clip: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What a container sees, offline: local object storage holding the tiny clip."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path / "data" / "objects"
    (root / USER).mkdir(parents=True)
    shutil.copyfile(tiny_clip, root / USER / CLIP)
    monkeypatch.setenv("BENCH_STORAGE", "local")
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    return root


# ---------------------------------------------------------------------------------------------
# Defect 2: with_options carries the container's cpu and memory.


def _resources(cls: Any) -> Any:
    return synchronizer._translate_in(cls)._options


def test_with_options_sends_the_containers_cpu_and_memory() -> None:
    """modal 1.6.4's own option builder (cls.py with_options -> _function_variants.py
    _FunctionOptions.new -> _resources.py convert_fn_config_to_resources_config), offline."""
    deployed = modal.Cls.from_name(APP_NAME, CLASS_NAME)  # lazy: nothing is contacted
    bare = _resources(deployed.with_options(gpu="L4")).resources
    assert (bare.milli_cpu, bare.memory_mb) == (0, 0)  # the defect: gpu alone sends no cpu/memory
    options = _resources(deployed.with_options(**container_options("L4", 45, max_containers=1)))
    assert options.resources.milli_cpu == int(modal_app.CONTAINER_CPU * 1000) == 4000
    assert options.resources.memory_mb == modal_app.CONTAINER_MEMORY_MIB == 16384
    assert options.resources.gpu_config.gpu_type == "L4" and options.resources.gpu_config.count == 1
    assert options.scaledown_window == 45 and options.max_containers == 1
    h100 = _resources(deployed.with_options(**container_options("H100!"))).resources
    assert h100.gpu_config.gpu_type.startswith("H100") and h100.milli_cpu == 4000
    # The pricing side bills the same container.
    from bench.pricing import DEFAULT_PRICES
    from core.resources import DEFAULT_CPU_CORES, DEFAULT_MEMORY_GIB

    assert modal_app.CONTAINER_CPU == DEFAULT_CPU_CORES
    assert modal_app.CONTAINER_MEMORY_MIB == DEFAULT_MEMORY_GIB * 1024
    assert DEFAULT_PRICES.container_rate() == pytest.approx(4 * 0.0000131 + 16 * 0.00000222)


# ---------------------------------------------------------------------------------------------
# Done-when: every call made to Modal, against modal 1.6.4's signatures.


def test_the_fake_client_rejects_what_modal_would_reject() -> None:
    sdk = FakeModal()
    cls = sdk.Cls.from_name(APP_NAME, CLASS_NAME)
    with pytest.raises(TypeError):
        cls.with_options("L4")  # keyword-only in modal 1.6.4
    with pytest.raises(TypeError):
        cls.with_options(gpu="L4", cpus=4)  # no such option
    with pytest.raises(TypeError):
        sdk.Dict.from_name(PROGRESS_DICT_NAME, True)  # create_if_missing is keyword-only
    with pytest.raises(TypeError):
        cls.with_options(gpu="L4")(model="x4plus").run.spawn({"job_id": "a"}, 3)  # run(self, job)
    with pytest.raises(TypeError):
        cls.with_options(gpu="L4")(modell="x4plus")  # not a class parameter
    assert "timeout" in inspect.signature(modal.FunctionCall.get).parameters


@pytest.mark.filterwarnings(LOCAL_WARNING)
def test_every_call_to_modal_matches_its_signature(modal_token: None, container_env: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend's whole flow on a fake client whose every method binds to the real one, with
    the jobs themselves run by the real Upscaler through .local(): spawn, poll (get, the progress
    Dict), reattach by id (from_id), the worker's progress writes (Dict.put) and its Volume."""
    sdk = FakeModal()
    progress = sdk.Dict.from_name(PROGRESS_DICT_NAME, create_if_missing=True)
    volume = FakeVolume(sdk)
    monkeypatch.setattr(modal_app, "progress_dict", progress)
    monkeypatch.setattr(modal_app, "weights_volume", volume)
    containers: dict[str, Any] = {}
    results: dict[str, Any] = {}
    polls: dict[str, int] = {}

    def serve(spawned: Spawned) -> Any:
        polls[spawned.call_id] = polls.get(spawned.call_id, 0) + 1
        if polls[spawned.call_id] == 1:
            return TimeoutError()  # still running at the first look
        if spawned.call_id not in results:
            gpu = spawned.options["gpu"]
            container = containers.setdefault(gpu, modal_app.Upscaler(**spawned.params))
            results[spawned.call_id] = container.run.local(spawned.job)
        return results[spawned.call_id]

    sdk.serve = serve
    backend = ModalBackend(poll_interval=0.0, sdk=sdk, policy=ContainerPolicy("sequential", 60))
    sink = Sink()
    backend.execute([Submission("a", tiny_job("a"), "T4"), Submission("b", tiny_job("b"), "T4"),
                     Submission("c", tiny_job("c"), "L4")], sink)
    assert not sink.of("failed"), sink.of("failed")
    done = {e[1]: e[2] for e in sink.of("finished")}
    assert set(done) == {"a", "b", "c"} and all(o.result.ok for o in done.values())
    assert done["a"].cold and not done["b"].cold and done["c"].cold  # b reused a's container
    assert done["a"].result.container_id == done["b"].result.container_id
    assert "queue_wait" in done["a"].result.stages and done["a"].result.job_seconds > 0

    options = [c.kwargs for c in sdk.of("Cls.with_options")]
    assert options and all(o["cpu"] == 4.0 and o["memory"] == 16384 and o["scaledown_window"] == 60
                           and o["max_containers"] == 1 for o in options)
    assert [o["gpu"] for o in options] == ["T4", "L4", "T4"]  # b only once a came back
    # Reattach by call id (another process, a dashboard reload).
    again = Sink()
    ModalBackend(poll_interval=0.0, sdk=sdk).resume({"a": sdk.spawned[0].call_id}, again)
    assert [e[1] for e in again.of("finished")] == ["a"]
    assert {"Cls.from_name", "Cls.with_options", "Cls()", "Function.spawn",
            "FunctionCall.from_id", "FunctionCall.get", "Dict.from_name", "Dict.get",
            "Dict.put"} <= sdk.names()
    (lookup,) = sdk.of("Cls.from_name")
    assert lookup.args == (APP_NAME, CLASS_NAME)
    assert all(c.kwargs == {"timeout": 0} for c in sdk.of("FunctionCall.get"))
    assert all(c.kwargs == {"create_if_missing": True} for c in sdk.of("Dict.from_name"))
    assert {c.args[0] for c in sdk.of("Dict.put")} == {"a", "b", "c"}


# ---------------------------------------------------------------------------------------------
# Defect 6: the queue-wait limit, and the queue wait as a stage.


class Clock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _result(job: dict, booted: float, started: float, seconds: float, cold: bool) -> dict:
    data = JobResult(job_id=job["job_id"], status="succeeded", stages={"upscale": seconds,
                                                                       "total": seconds},
                     frames_in=5, frames_out=5, started_at=started,
                     finished_at=started + seconds).to_dict()
    data.update(ContainerFacts(container_started_at=booted + 1.0, gpu_name_nvidia_smi=None,
                               cold=cold, model_load_seconds=2.0, container_booted_at=booted,
                               cpu_request=4.0, memory_request_gib=16.0).to_dict())
    return data


def test_no_capacity_within_the_limit_cancels_the_call_and_fails_the_lane(modal_token: None) -> None:
    clock = Clock()
    sdk = FakeModal()

    def serve(spawned: Spawned) -> Any:
        if spawned.options["gpu"] == "L4":
            clock.now += 60.0  # a minute per look, never a container
            return TimeoutError()
        return _result(spawned.job, clock.now + 3, clock.now + 10, 5.0, cold=True)

    sdk.serve = serve
    backend = ModalBackend(poll_interval=0.0, sdk=sdk, clock=clock,
                           policy=ContainerPolicy("sequential", 120, 15 * 60.0))
    sink = Sink()
    backend.execute([Submission("l1", tiny_job("l1"), "L4"), Submission("t1", tiny_job("t1"), "T4"),
                     Submission("l2", tiny_job("l2"), "L4")], sink)
    failed = dict((e[1], e[2]) for e in sink.of("failed"))
    l4_call = next(s for s in sdk.spawned if s.options["gpu"] == "L4")
    assert failed["l1"] == f"no L4 capacity within 15 min: its call {l4_call.call_id} was cancelled"
    assert failed["l2"].startswith("no L4 capacity within 15 min (an earlier run")
    assert l4_call.cancelled and len([s for s in sdk.spawned if s.options["gpu"] == "L4"]) == 1
    assert [e[1] for e in sink.of("finished")] == ["t1"]
    assert {"FunctionCall.cancel", "FunctionCall.get_call_graph"} <= sdk.names()


def test_a_call_with_a_container_is_not_cancelled(modal_token: None) -> None:
    """Past the limit without progress, but the call graph shows a container: it runs on."""
    from modal.types import InputInfo, InputStatus

    clock = Clock()
    sdk = FakeModal()
    looks = [0]

    def serve(spawned: Spawned) -> Any:
        spawned.graph = [InputInfo("in-1", spawned.call_id, "ta-42", InputStatus.PENDING,
                                   "Upscaler.run", "workers.modal_app", [])]
        looks[0] += 1
        if looks[0] < 5:
            clock.now += 400.0
            return TimeoutError()
        return _result(spawned.job, clock.now - 100, clock.now - 20, 10.0, cold=True)

    sdk.serve = serve
    backend = ModalBackend(poll_interval=0.0, sdk=sdk, clock=clock,
                           policy=ContainerPolicy("parallel", 120, 900.0))
    sink = Sink()
    backend.execute([Submission("r", tiny_job("r"), "L4")], sink)
    assert not sink.of("failed") and [e[1] for e in sink.of("finished")] == ["r"]
    assert not sdk.spawned[0].cancelled


def test_queue_wait_is_spawn_to_container_start() -> None:
    cold = JobResult.from_dict(_result({"job_id": "r"}, booted=1030.0, started=1040.0, seconds=6,
                                       cold=True))
    facts = ContainerFacts.from_dict(_result({"job_id": "r"}, 1030.0, 1040.0, 6, cold=True))
    assert queue_wait_seconds(cold, facts, submitted_at=1000.0) == 30.0  # to the boot
    warm_facts = replace(facts, cold=False)
    assert queue_wait_seconds(cold, warm_facts, submitted_at=1000.0) == 40.0  # to the job start
    assert queue_wait_seconds(cold, facts, submitted_at=None) is None
    assert queue_wait_seconds(cold, facts, submitted_at=2000.0) == 0.0  # clock skew clamped
    done = finished_from_result("r", _result({"job_id": "r"}, 1030.0, 1040.0, 6, cold=True),
                                client_wall_seconds=50.0, submitted_at=1000.0)
    assert done.result.stages["queue_wait"] == 30.0
    assert done.startup_seconds == pytest.approx(10.0)  # boot 1030 to the job at 1040
    assert done.result.job_seconds == pytest.approx(6.0) and done.result.worker_started_at == 1030.0


# ---------------------------------------------------------------------------------------------
# Defect 3: a progress Dict that stalls cannot change the job's timings.


@pytest.mark.filterwarnings(LOCAL_WARNING)
def test_a_stalling_progress_dict_leaves_the_job_alone(container_env: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fast = FakeDict()
    release = threading.Event()
    stalled = FakeDict(stall=release, stall_seconds=30.0)
    monkeypatch.setattr(modal_app, "weights_volume", FakeVolume())
    monkeypatch.setattr(modal_app, "progress_dict", fast)
    container = modal_app.Upscaler(**upscaler_params(tiny_job("w")))
    try:
        container.run.local(tiny_job("warm-up").to_dict())
        baseline = JobResult.from_dict(container.run.local(tiny_job("fast").to_dict()))
        monkeypatch.setattr(modal_app, "progress_dict", stalled)
        began = time.monotonic()
        slow = JobResult.from_dict(container.run.local(tiny_job("stalled").to_dict()))
        wall = time.monotonic() - began
    finally:
        release.set()
    assert slow.ok and baseline.ok
    assert wall < 10.0  # a put waiting 30 s on the job's path would show here
    assert slow.stages["total"] <= baseline.stages["total"] + 1.0
    assert slow.stages["upscale"] <= baseline.stages["upscale"] + 1.0
    assert len(stalled.puts) <= 1  # only the first write went out; the job did not wait on it


# ---------------------------------------------------------------------------------------------
# Defect 4: downloaded weights are committed at once; two cold containers downloading together
# leave one whole, checked file.


@pytest.fixture
def weights_server(tmp_path: Path) -> Iterator[tuple[str, str, int]]:
    """Serves animevideov3-shaped weights over http on 127.0.0.1; the body goes out only once two
    requests are in, so the two downloads overlap. Yields (url, sha256, requests served)."""
    import torch

    from workers.catalog import get_model_spec
    from workers.models import build_architecture

    path = tmp_path / "served.pth"
    torch.save(build_architecture(get_model_spec("animevideov3"), seed=3).state_dict(), path)
    body = path.read_bytes()
    both_in = threading.Barrier(2, timeout=20)
    served = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                both_in.wait()
            except threading.BrokenBarrierError:
                pass
            served[0] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for start in range(0, len(body), 256 * 1024):
                self.wfile.write(body[start:start + 256 * 1024])
                time.sleep(0.01)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/realesr-animevideov3.pth", \
        hashlib.sha256(body).hexdigest(), served
    server.shutdown()


@pytest.mark.filterwarnings(LOCAL_WARNING)
def test_two_cold_containers_download_and_commit_the_weights(
        container_env: Path, weights_server: tuple[str, str, list], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.models as models
    from workers.catalog import get_model_spec

    url, sha, served = weights_server
    spec = replace(get_model_spec("animevideov3"), url=url, sha256=sha)
    monkeypatch.setattr(models, "get_model_spec", lambda name: spec)
    monkeypatch.delenv("BENCH_OFFLINE")
    volume = FakeVolume()
    monkeypatch.setattr(modal_app, "weights_volume", volume)
    monkeypatch.setattr(modal_app, "progress_dict", FakeDict())
    results: dict[str, dict] = {}

    def cold_container(name: str) -> None:
        job = tiny_job(name, weights="auto")
        results[name] = modal_app.Upscaler(**upscaler_params(job)).run.local(job.to_dict())

    threads = [threading.Thread(target=cold_container, args=(f"c{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert served[0] == 2  # both containers downloaded, at the same time
    for name, result in results.items():
        assert result["status"] == "succeeded", (name, result["error"])
        assert result["weights_provenance"] == "official" and result["weights_sha256"] == sha
    cache = tmp_path / "weights"
    assert [p.name for p in cache.iterdir()] == ["realesr-animevideov3.pth"]  # no .part left
    assert hashlib.sha256((cache / "realesr-animevideov3.pth").read_bytes()).hexdigest() == sha
    assert volume.commits == 2  # each container committed right after its download


def test_weights_cache_commits_only_on_change(tmp_path: Path) -> None:
    volume = FakeVolume()
    cache = WeightsCache(volume, tmp_path)
    assert not cache.commit_if_changed() and volume.commits == 0
    (tmp_path / "x.pth.part").write_bytes(b"half")  # a download in flight is not committed
    assert not cache.commit_if_changed()
    (tmp_path / "x.pth").write_bytes(b"whole")
    assert cache.commit_if_changed() and volume.commits == 1
    assert not cache.commit_if_changed() and volume.commits == 1

    class Broken(FakeVolume):
        def commit(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("volume unreachable")

    broken = WeightsCache(Broken(), tmp_path)
    (tmp_path / "y.pth").write_bytes(b"whole")
    assert not broken.commit_if_changed()  # logged, not raised


def test_the_plans_cpu_cores_reach_with_options_and_the_run(modal_token: None) -> None:
    from bench.plan import build_plan

    plan = build_plan("e6", cpu_cores=8, scaledown_window_seconds=30, container_reuse="parallel")
    policy = ContainerPolicy.of(plan)
    assert policy == ContainerPolicy("parallel", 30, 900.0, 8.0)
    clock = Clock()
    sdk = FakeModal(lambda spawned: _result(spawned.job, clock.now + 2, clock.now + 9, 4.0, True))
    sink = Sink()
    ModalBackend(poll_interval=0.0, sdk=sdk, clock=clock, policy=policy).execute(
        [Submission("r", tiny_job("r"), "L4")], sink)
    (options,) = [c.kwargs for c in sdk.of("Cls.with_options")]
    assert options == {"gpu": "L4", "cpu": 8.0, "memory": 16384, "scaledown_window": 30}
    (done,) = sink.of("finished")
    assert done[2].result.cpu_cores == 8.0  # billed at least the 8 cores asked for


def test_a_plans_region_goes_through_modals_own_option_builder() -> None:
    deployed = modal.Cls.from_name(APP_NAME, CLASS_NAME)  # lazy: nothing is contacted
    options = _resources(deployed.with_options(**container_options("L4", region="us-east-1")))
    assert list(options.scheduler_placement.regions) == ["us-east-1"]
    assert options.resources.milli_cpu == 4000
