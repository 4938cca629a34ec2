"""The Modal deployment and backend, offline: the Upscaler class through `.local()`, the pure
helpers, preflight, and the backend's spawn/poll logic against fakes of its two network steps.
One live test runs only with MODAL_TOKEN_ID (and R2 settings) in the environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from bench.backends.base import Submission
from bench.backends.modal_backend import (
    NO_TOKEN_MESSAGE,
    ContainerPolicy,
    ModalBackend,
    ModalUnreachableError,
    call_with_deadline,
    describe_modal_error,
    finished_from_result,
    modal_gpu_for,
    startup_before_job,
    upscaler_params,
)
from bench.backends.modal_credentials import modal_credentials, modal_token_present
from core.errors import BackendError, InputError, StorageError
from core.job import Job, JobResult, Progress, WarmShape
from tests.jobs import CLIP, USER, VIDEO_JOB_STAGES, tiny_job
from tests.modal_fakes import TOKEN_ENV, FakeDict, FakeVolume, use_modal_config
from tests.sinks import Sink
from workers import modal_app
from workers.modal_app import (
    ContainerFacts,
    ProgressPublisher,
    container_storage,
    decode_progress,
    encode_progress,
    nvidia_smi_gpu_name,
)

ROOT = Path(__file__).resolve().parents[1]
LOCAL_VOLUME_WARNING = "ignore:The Upscaler.run function is executing locally:UserWarning"


# ---------------------------------------------------------------------------------------------
# The deployment module.


def test_module_imports_without_torch() -> None:
    code = ("import sys, workers.modal_app, bench.backends.modal_backend\n"
            "heavy = [m for m in ('torch', 'av', 'numpy', 'spandrel') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "app = workers.modal_app.app\n"
            "assert app.name == 'upscale-gpu-bench', app.name\n"
            "import modal\n"
            "assert isinstance(workers.modal_app.Upscaler, modal.Cls)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def local_upscaler(tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path):
    """One Upscaler container run in-process through .local(): local object storage
    (BENCH_STORAGE=local, $BENCH_DATA_DIR/objects), no token,
    progress captured by a fake Dict."""
    import torch

    torch.set_num_threads(1)
    data_dir = tmp_path_factory.mktemp("data")
    root = data_dir / "objects"
    (root / USER).mkdir(parents=True)
    shutil.copyfile(tiny_clip, root / USER / CLIP)
    (root / USER / "broken.mp4").write_bytes(b"not a video at all")
    progress = FakeDict()
    puts = progress.puts

    with pytest.MonkeyPatch.context() as mp:
        for name in TOKEN_ENV:
            mp.delenv(name, raising=False)
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("BENCH_STORAGE", "local")
        mp.setenv("BENCH_DATA_DIR", str(data_dir))
        mp.setenv("BENCH_OFFLINE", "1")
        mp.setattr(modal_app, "progress_dict", progress)
        mp.setattr(modal_app, "weights_volume", FakeVolume())
        container = modal_app.Upscaler(**upscaler_params(tiny_job()))
        yield container, root, puts


@pytest.mark.filterwarnings(LOCAL_VOLUME_WARNING)
def test_upscaler_local_runs_a_job_with_the_preloaded_model(local_upscaler) -> None:
    container, root, puts = local_upscaler
    job = tiny_job("run-1")
    before = time.time()
    first = container.run.local(job.to_dict())
    second = container.run.local(tiny_job("run-2").to_dict())

    assert first["status"] == "succeeded", first["error"]
    result = JobResult.from_dict(first)
    assert result.job_id == "run-1"
    assert set(VIDEO_JOB_STAGES) <= set(result.stages) and "total" in result.stages
    assert all(seconds >= 0 for seconds in result.stages.values())
    assert result.frames_in == result.frames_out == 10
    assert (result.output_width, result.output_height) == (36, 24)
    assert (root / USER / "out" / "run-1.mp4").stat().st_size == result.output_bytes > 0
    assert result.weights_provenance == "random (timing-only)"
    # The container preloaded exactly the job's engine, so no job paid for a model load.
    assert result.stages["model_load"] == 0.0
    assert first["model_load_seconds"] > 0.0
    # Container facts: the first job is cold, the next one warm, both from the same container.
    assert first["cold"] is True and second["cold"] is False
    assert second["status"] == "succeeded", second["error"]
    assert before <= first["container_started_at"] == second["container_started_at"]
    assert first["container_started_at"] <= result.started_at
    assert first["gpu_name_nvidia_smi"] is None  # no GPU on this machine
    # Progress went into the (fake) Dict under the job id, in the wire format the client decodes.
    mine = [decode_progress("run-1", value) for key, value in puts if key == "run-1"]
    assert mine and all(p is not None for p in mine)
    assert mine[-1].stage in ("encode", "upload") and mine[-1].frames_done == 10  # latest got out
    # The client's view of it.
    finished = finished_from_result("run-1", first, client_wall_seconds=12.5)
    assert finished.cold and finished.client_wall_seconds == 12.5
    assert finished.result.worker_started_at == first["container_booted_at"]
    assert first["container_booted_at"] <= first["container_started_at"]  # process start, then enter
    assert finished.result.cpu_cores == 4.0 and finished.memory_gib == 16.0  # the request
    assert finished.startup_seconds >= first["container_started_at"] - first["container_booted_at"]


@pytest.mark.filterwarnings(LOCAL_VOLUME_WARNING)
def test_upscaler_local_reports_failed_jobs_and_keeps_serving(local_upscaler) -> None:
    container, root, _ = local_upscaler
    corrupt = container.run.local(tiny_job("run-bad", input_key="broken.mp4").to_dict())
    assert corrupt["status"] == "failed" and corrupt["error"]
    assert not (root / USER / "out" / "run-bad.mp4").exists()

    missing = container.run.local({"user_id": USER, "input_key": "x.mp4"})
    assert missing["status"] == "failed" and "job_id" in missing["error"]
    assert missing["cold"] is False
    wrong_type = container.run.local({**tiny_job("run-odd").to_dict(), "fps": "fast"})
    assert wrong_type["status"] == "failed" and wrong_type["job_id"] == "run-odd"

    again = container.run.local(tiny_job("run-3").to_dict())
    assert again["status"] == "succeeded", again["error"]


# ---------------------------------------------------------------------------------------------
# Pure helpers of the deployment module.


def test_progress_round_trip_and_garbage() -> None:
    progress = Progress(job_id="r", stage="upscale", frames_done=3, frames_total=9)
    value = encode_progress(progress, now=100.0)
    assert value == {"stage": "upscale", "frames_done": 3, "frames_total": 9, "updated_at": 100.0}
    assert decode_progress("r", value) == progress
    for garbage in (None, "upscale", {}, {"stage": "warp", "frames_done": 1, "frames_total": 2},
                    {"stage": "upscale", "frames_done": -1, "frames_total": 2},
                    {"stage": "upscale", "frames_done": True, "frames_total": 2},
                    {"stage": "upscale", "frames_done": "1", "frames_total": 2}):
        assert decode_progress("r", garbage) is None


def test_progress_publisher_keeps_the_latest_value_and_never_blocks() -> None:
    """The job hands progress over and goes on; a background thread writes only the latest value,
    throttled; a failing write is swallowed and pauses writes; close() lets the last one out."""
    release = threading.Event()
    stalled = FakeDict(stall=release, stall_seconds=30.0)
    publish = ProgressPublisher(stalled.put, "job-7", min_interval=0.0, retry_after=30.0,
                                flush_timeout=0.2)
    began = time.monotonic()
    for done in range(1, 101):
        publish(Progress("job-7", "upscale", done, 100))
    publish.close()  # the first write is still stalled: close gives up after flush_timeout
    assert time.monotonic() - began < 2.0
    release.set()
    deadline = time.monotonic() + 10
    while len(stalled.puts) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    frames = [value["frames_done"] for _, value in stalled.puts]
    assert frames[0] >= 1 and frames[-1] == 100 and len(frames) <= 3  # latest value only

    calls: list[dict] = []
    failing = [True]

    def put(key: str, value: dict) -> None:
        if failing[0]:
            failing[0] = False
            raise RuntimeError("dict unreachable")
        calls.append(value)

    throttled = FakeDict()
    publish = ProgressPublisher(throttled.put, "job-9", min_interval=0.25)
    began = time.monotonic()
    while time.monotonic() - began < 0.6:
        publish(Progress("job-9", "upscale", 1, 10))
        time.sleep(0.005)
    publish(Progress("job-9", "upscale", 10, 10))
    publish.close()
    assert 2 <= len(throttled.puts) <= 5  # about one per min_interval, not one per call
    assert throttled.puts[-1][1]["frames_done"] == 10  # the last value got out at close

    publish = ProgressPublisher(put, "job-8", min_interval=0.0, retry_after=0.05)
    publish(Progress("job-8", "fetch", 0, 10))
    time.sleep(0.2)
    publish(Progress("job-8", "encode", 10, 10))
    publish.close()
    assert [v["stage"] for v in calls] == ["encode"]


def test_nvidia_smi_gpu_name() -> None:
    def answers(args, **kwargs):
        assert args[0] == "nvidia-smi" and "--query-gpu=name" in args
        return subprocess.CompletedProcess(args, 0, stdout="NVIDIA L4\nNVIDIA L4\n", stderr="")

    def missing(args, **kwargs):
        raise FileNotFoundError("nvidia-smi")

    def broken(args, **kwargs):
        raise subprocess.CalledProcessError(9, args)

    assert nvidia_smi_gpu_name(answers) == "NVIDIA L4"
    import torch

    expected = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    assert nvidia_smi_gpu_name(missing) == expected
    assert nvidia_smi_gpu_name(broken) == expected


def test_container_storage(tmp_path: Path) -> None:
    from store.r2 import R2Store

    store = container_storage({"BENCH_STORAGE": "local", "BENCH_DATA_DIR": str(tmp_path)})
    assert store.root == tmp_path / "objects"
    # In a container R2 is the default: a secret missing settings is an error, not a silent
    # fallback to a local directory nobody uploads to.
    with pytest.raises(StorageError) as caught:
        container_storage({"R2_BUCKET": "b", "R2_SECRET_ACCESS_KEY": "hidden-value"})
    message = str(caught.value)
    assert "r2-credentials" in message and "R2_ENDPOINT_URL" in message
    assert "R2_ACCESS_KEY_ID" in message and "hidden-value" not in message
    r2 = container_storage({"R2_ENDPOINT_URL": "http://127.0.0.1:9", "R2_BUCKET": "b",
                            "R2_ACCESS_KEY_ID": "k", "R2_SECRET_ACCESS_KEY": "s"})
    assert isinstance(r2, R2Store) and r2.bucket == "b"


def test_container_facts_from_malformed_values() -> None:
    facts = ContainerFacts.from_dict({"container_started_at": "soon", "gpu_name_nvidia_smi": "  ",
                                      "cold": "yes", "model_load_seconds": True})
    assert facts == ContainerFacts(None, None, False, None)
    good = ContainerFacts(5.0, "Tesla T4", True, 1.5)
    assert ContainerFacts.from_dict(good.to_dict()) == good


# ---------------------------------------------------------------------------------------------
# Pure helpers of the backend.


def test_token_detection_uses_modal_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials as the Modal client reads them (modal.config): the environment, else the
    active profile; a token in another profile does not count."""
    for name in TOKEN_ENV:
        monkeypatch.delenv(name, raising=False)
    use_modal_config(monkeypatch, None)
    assert not modal_token_present()
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-1")
    assert not modal_token_present()  # a secret is needed too
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-1")
    found = modal_credentials()
    assert found.present and found.source.startswith("environment") and "as-1" not in repr(found)
    monkeypatch.delenv("MODAL_TOKEN_ID")
    monkeypatch.delenv("MODAL_TOKEN_SECRET")

    config = tmp_path / ".modal.toml"
    config.write_text("[default]\nserver_url = 'x'\n")
    use_modal_config(monkeypatch, config)
    assert not modal_token_present()
    config.write_text("[other]\ntoken_id = 'ak-2'\ntoken_secret = 'as-2'\n"
                      "[me]\ntoken_id = 'ak-3'\ntoken_secret = 'as-3'\nactive = true\n")
    use_modal_config(monkeypatch, config)
    found = modal_credentials()
    assert found.present and found.profile == "me" and found.source == f"profile 'me' in {config}"
    config.write_text("[other]\ntoken_id = 'ak-2'\ntoken_secret = 'as-2'\n[me]\nactive = true\n")
    use_modal_config(monkeypatch, config)
    assert not modal_token_present()  # the active profile has none; another one's does not count
    use_modal_config(monkeypatch, config, profile="other")  # MODAL_PROFILE picks it
    assert modal_token_present() and modal_credentials().profile == "other"
    config.write_text("[a]\ntoken_id = 'x'\ntoken_secret = 'y'\nactive = true\n"
                      "[b]\ntoken_id = 'x'\ntoken_secret = 'y'\nactive = true\n")
    use_modal_config(monkeypatch, config)
    found = modal_credentials()
    assert found.problem and "More than one Modal profile is active" in found.problem
    with pytest.raises(BackendError, match="Modal configuration problem"):
        ModalBackend().preflight(["T4"])


def test_gpu_mapping_and_params_match_the_engine_key() -> None:
    from workers.pipeline import EngineKey

    assert modal_gpu_for("t4") == "T4"
    assert modal_gpu_for("a100_80gb") == "A100-80GB"
    assert modal_gpu_for("H100") == "H100!"  # never silently upgraded to an H200
    with pytest.raises(InputError, match="unknown GPU"):
        modal_gpu_for("RTX 4090")
    job = tiny_job(compile="on", batch_size=3, precision="bf16")
    key = EngineKey.of(job)
    params = upscaler_params(job)
    # the engine key, plus how the container compiles and for which shapes (WarmShape)
    assert params == {**{name: getattr(key, name) for name in key.__dataclass_fields__},
                      "compile": "on", "warm_shape": WarmShape.of(job).to_text()}
    shape = WarmShape.of(job)
    assert params["warm_shape"] and WarmShape.from_text(params["warm_shape"]) == \
        WarmShape(shape.crop, shape.output)
    # another clip length of the same crop and output goes to the same container pool
    longer = tiny_job(compile="on", batch_size=3, precision="bf16", trim_end=job.trim_end + 1.0)
    assert upscaler_params(longer) == params
    assert upscaler_params(tiny_job())["warm_shape"] == ""  # no compile: nothing to warm
    modal_app.Upscaler(**params)  # every field is a parameter of the class


def _result_dict(**overrides: Any) -> dict:
    data = JobResult(job_id="r1", status="succeeded", stages={"upscale": 4.0, "total": 6.0},
                     frames_in=30, frames_out=30, device_name="NVIDIA L4 (torch)",
                     started_at=1000.0, finished_at=1006.5).to_dict()
    data.update(container_started_at=990.0, gpu_name_nvidia_smi="NVIDIA L4", cold=True,
                model_load_seconds=7.0)
    data.update(overrides)
    return data


def test_startup_before_a_job_cold_and_warm() -> None:
    cold = JobResult.from_dict(_result_dict())
    assert startup_before_job(cold, ContainerFacts(990.0, None, True, 7.0)) == pytest.approx(10.0)
    assert startup_before_job(cold, ContainerFacts(990.0, None, False, 7.0)) == 0.0
    no_times = JobResult(job_id="r", status="failed", stages={"total": 2.0})
    assert startup_before_job(no_times, ContainerFacts(None, None, True, None)) == 0.0

def test_finished_from_result() -> None:
    finished = finished_from_result("run-9", _result_dict(), client_wall_seconds=21.0)
    assert finished.run_id == "run-9" and finished.cold
    assert finished.result.device_name == "NVIDIA L4"
    assert finished.result.worker_started_at == 990.0
    assert finished.startup_seconds == pytest.approx(10.0)  # boot (990) to the job (1000)
    assert finished.result.job_seconds == pytest.approx(6.0)
    assert finished.client_wall_seconds == 21.0
    warm = finished_from_result("run-9", _result_dict(cold=False, gpu_name_nvidia_smi=None), None)
    assert not warm.cold and warm.result.device_name == "NVIDIA L4 (torch)"
    assert warm.startup_seconds == 0.0 and warm.client_wall_seconds == pytest.approx(6.0)
    for bad in (None, "done", {"status": "succeeded"}, {"job_id": "r", "status": 3}):
        with pytest.raises(BackendError, match="unreadable result"):
            finished_from_result("run-9", bad, 1.0)


def test_describe_modal_error() -> None:
    import modal.exception as mx

    assert "modal token new" in describe_modal_error(mx.AuthError("Token missing"))
    assert "modal deploy workers/modal_app.py" in describe_modal_error(mx.NotFoundError("nope"))
    assert describe_modal_error(mx.ConnectionError("x")).startswith("cannot reach Modal")
    assert "timeout" in describe_modal_error(mx.FunctionTimeoutError("t"))
    assert describe_modal_error(InputError("bad trim")) == "bad trim"
    assert describe_modal_error(ValueError("boom\nmore")) == "remote call failed: ValueError: boom more"


def test_call_with_deadline() -> None:
    assert call_with_deadline(lambda: 42, 5.0, "answering") == 42
    with pytest.raises(KeyError):
        call_with_deadline(lambda: {}["x"], 5.0, "failing")
    release = threading.Event()
    with pytest.raises(ModalUnreachableError, match="within 0.05 s while hanging"):
        call_with_deadline(lambda: release.wait(10), 0.05, "hanging")
    release.set()


# ---------------------------------------------------------------------------------------------
# Preflight and the backend's flow.


def test_preflight_rejects_unknown_gpu_before_anything(no_modal_token: Path) -> None:
    with pytest.raises(InputError, match="unknown GPU 'V100'"):
        ModalBackend().preflight(["T4", "V100"])


def test_preflight_without_token_fails_at_once(no_modal_token: Path) -> None:
    with pytest.raises(BackendError) as caught:
        ModalBackend().preflight(["T4", "L4"])
    assert str(caught.value) == NO_TOKEN_MESSAGE


def test_preflight_passes_with_a_token(modal_token: None) -> None:
    ModalBackend().preflight(["t4", "l4", "H100"])


def test_execute_without_token_fails_every_run(no_modal_token: Path) -> None:
    sink = Sink()
    subs = [Submission(f"r{i}", tiny_job(f"r{i}"), "T4") for i in range(2)]
    ModalBackend().execute(subs, sink)
    assert sink.of("failed") == [("failed", "r0", NO_TOKEN_MESSAGE), ("failed", "r1", NO_TOKEN_MESSAGE)]
    assert not sink.of("submitted")


def test_real_client_without_credentials_is_an_auth_error(no_modal_token: Path) -> None:
    """The real modal client, offline: without credentials a spawn fails fast with AuthError,
    which the backend turns into one line and applies to every run."""
    import modal.exception as mx

    backend = ModalBackend(connect_timeout=30.0)
    with pytest.raises(mx.AuthError) as caught:
        call_with_deadline(lambda: backend._spawn("T4", tiny_job(), threading.Event()), 30.0,
                           "submitting")
    assert "modal token new" in describe_modal_error(caught.value)


def test_execute_unreachable_modal_fails_in_bounded_time(modal_token: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A token but no route to Modal: the real client would block ~57 s; every run fails after
    the connect timeout, from the backend's worker thread, with a clear line."""
    monkeypatch.setenv("MODAL_SERVER_URL", "http://127.0.0.1:9")
    sink = Sink()
    subs = [Submission(f"r{i}", tiny_job(f"r{i}"), gpu) for i, gpu in enumerate(["T4", "L4", "A10"])]
    ModalBackend(connect_timeout=1.0).execute(subs, sink)
    failed = sink.of("failed")
    assert [run_id for _, run_id, _ in failed] == ["r0", "r1", "r2"]
    assert all("Modal did not answer within 1 s" in reason or "cannot reach Modal" in reason
               for _, _, reason in failed)
    assert not sink.of("submitted") and not sink.of("finished")


class FakeModal:
    """Stands in for the backend's two network steps (_spawn and _check)."""

    def __init__(self, script: dict[str, list[Any]]):
        self.script = script
        """job id -> what successive checks return: ('running', progress value), ('done', value),
        an exception (raised by the remote call), or 'hang' (never answers)."""
        self.spawned: list[tuple[str, dict, dict]] = []
        self.release = threading.Event()

    def spawn(self, gpu: str, job: Job, abandoned: threading.Event) -> str:
        if job.job_id.startswith("hang"):
            self.release.wait(10)
        if job.job_id.startswith("gone"):
            import modal.exception as mx

            raise mx.NotFoundError("App 'upscale-gpu-bench' not found")
        self.spawned.append((gpu, upscaler_params(job), job.to_dict()))
        return f"fc-{job.job_id}"

    def check(self, item) -> tuple[bool, Any]:
        step = self.script[item.run_id].pop(0)
        if step == "hang":
            self.release.wait(10)
            return False, None
        if isinstance(step, BaseException):
            raise step
        kind, value = step
        return kind == "done", value


def _fake_backend(monkeypatch: pytest.MonkeyPatch, fake: FakeModal, **options: Any) -> ModalBackend:
    options.setdefault("policy", ContainerPolicy(reuse="parallel"))
    backend = ModalBackend(poll_interval=0.0, **options)
    monkeypatch.setattr(backend, "_spawn", fake.spawn)
    monkeypatch.setattr(backend, "_check", fake.check)
    return backend


def test_execute_spawns_polls_and_reports(modal_token: None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    running = {"stage": "upscale", "frames_done": 2, "frames_total": 5, "updated_at": 1.0}
    fake = FakeModal({
        "a": [("running", None), ("running", running), ("running", running),
              ("done", _result_dict(job_id="a"))],
        "b": [ValueError("CUDA error: out of memory")],
        "c": [("done", "garbage")],
    })
    backend = _fake_backend(monkeypatch, fake)
    sink = Sink()
    backend.execute([Submission("a", tiny_job("a"), "h100"), Submission("b", tiny_job("b"), "L4"),
                     Submission("x", tiny_job("x"), "V100"), Submission("c", tiny_job("c"), "T4")],
                    sink)
    assert [(e[1], e[2], e[3]) for e in sink.of("submitted")] == [
        ("a", "fc-a", "modal:H100!"), ("b", "fc-b", "modal:L4"), ("c", "fc-c", "modal:T4")]
    assert [gpu for gpu, _, _ in fake.spawned] == ["H100!", "L4", "T4"]
    assert fake.spawned[0][1] == upscaler_params(tiny_job("a"))
    assert Job.from_dict(fake.spawned[0][2]) == tiny_job("a")
    # progress: reported once per change
    assert sink.of("progress") == [("progress", "a", Progress("a", "upscale", 2, 5))]
    failed = dict((e[1], e[2]) for e in sink.of("failed"))
    assert failed["x"].startswith("unknown GPU 'V100'")
    assert failed["b"] == "remote call failed: ValueError: CUDA error: out of memory"
    assert "unreadable result" in failed["c"]
    (done,) = sink.of("finished")
    outcome = done[2]
    assert outcome.run_id == "a" and outcome.result.ok and outcome.cold
    assert outcome.result.device_name == "NVIDIA L4"
    assert outcome.client_wall_seconds >= 0 and outcome.startup_seconds == pytest.approx(10.0)
    # every submission reported exactly once as finished or failed
    ends = [e[1] for e in sink.events if e[0] in ("finished", "failed")]
    assert sorted(ends) == ["a", "b", "c", "x"]


def test_execute_not_deployed_fails_the_rest(modal_token: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeModal({"ok": [("done", _result_dict(job_id="ok"))]})
    backend = _fake_backend(monkeypatch, fake)
    sink = Sink()
    backend.execute([Submission("ok", tiny_job("ok"), "T4"), Submission("gone", tiny_job("gone"), "T4"),
                     Submission("later", tiny_job("later"), "L4")], sink)
    failed = dict((e[1], e[2]) for e in sink.of("failed"))
    assert set(failed) == {"gone", "later"}
    assert all("modal deploy workers/modal_app.py" in reason for reason in failed.values())
    assert [e[1] for e in sink.of("finished")] == ["ok"]


def test_execute_spawn_timeout_fails_every_remaining_run(modal_token: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeModal({})
    backend = _fake_backend(monkeypatch, fake, connect_timeout=0.05)
    sink = Sink()
    backend.execute([Submission("hang-1", tiny_job("hang-1"), "T4"),
                     Submission("next", tiny_job("next"), "L4")], sink)
    fake.release.set()
    failed = sink.of("failed")
    assert [e[1] for e in failed] == ["hang-1", "next"]
    assert all("did not answer within 0.05 s" in e[2] for e in failed)


def test_polling_gives_up_after_losing_contact(modal_token: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeModal({"a": ["hang"] * 50})
    backend = _fake_backend(monkeypatch, fake, connect_timeout=0.02, lost_contact_timeout=0.1)
    sink = Sink()
    backend.resume({"a": "fc-a"}, sink)
    fake.release.set()
    ((_, run_id, reason),) = sink.of("failed")
    assert run_id == "a" and "fc-a" in reason and "resume" in reason


def test_resume_reattaches_by_call_id(modal_token: None, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    fake = FakeModal({"r1": [("running", None), ("done", _result_dict(job_id="r1", cold=False))]})
    original_check = fake.check

    def check(item):
        seen.append(item.call_id)
        return original_check(item)

    backend = ModalBackend(poll_interval=0.0)
    monkeypatch.setattr(backend, "_check", check)
    sink = Sink()
    backend.resume({"r1": "fc-xyz"}, sink, submitted_at={"r1": time.time() - 30.0})
    assert set(seen) == {"fc-xyz"} and not sink.of("submitted")
    (done,) = sink.of("finished")
    assert done[2].client_wall_seconds >= 30.0 and not done[2].cold


def test_resume_of_an_unknown_call(modal_token: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import modal.exception as mx

    fake = FakeModal({"r1": [mx.NotFoundError("no such call")]})
    sink = Sink()
    _fake_backend(monkeypatch, fake).resume({"r1": "fc-old"}, sink)
    ((_, run_id, reason),) = sink.of("failed")
    assert run_id == "r1" and "Modal has no call fc-old" in reason and "deploy" not in reason


def test_resume_without_token_fails_each_run(no_modal_token: Path) -> None:
    sink = Sink()
    ModalBackend().resume({"r1": "fc-1", "r2": "fc-2"}, sink)
    assert sink.of("failed") == [("failed", "r1", NO_TOKEN_MESSAGE), ("failed", "r2", NO_TOKEN_MESSAGE)]


# ---------------------------------------------------------------------------------------------
# Live: only with a Modal token (and R2 for the input), against the deployed app.

LIVE_MISSING = [name for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "R2_ENDPOINT_URL",
                                  "R2_BUCKET", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY")
                if not os.environ.get(name)]


@pytest.mark.skipif(bool(LIVE_MISSING),
                    reason=f"live Modal test needs {', '.join(LIVE_MISSING)} (and "
                           f"`modal deploy workers/modal_app.py`)")
def test_live_tiny_job_on_a_t4(tiny_clip: Path) -> None:
    from store.config import load_storage_config
    from store.r2 import R2Store

    store = R2Store(load_storage_config(env=os.environ))
    run_id = f"live-{uuid.uuid4().hex[:8]}"
    job = tiny_job(run_id, input_key=f"bench-tests/{run_id}.mp4", device="auto", precision="auto")
    store.put(tiny_clip, f"{job.user_id}/{job.input_key}")
    backend = ModalBackend()
    backend.preflight(["T4"])
    sink = Sink()
    backend.execute([Submission(run_id, job, "T4")], sink)
    assert not sink.of("failed"), sink.of("failed")
    (done,) = sink.of("finished")
    outcome = done[2]
    assert outcome.result.ok, outcome.result.error
    assert "T4" in outcome.result.device_name
    assert outcome.startup_seconds >= 0 and outcome.client_wall_seconds >= outcome.result.stages["total"]


def test_the_image_installs_torch_before_basicsr_builds_against_it(tmp_path) -> None:
    assert modal_app.worker_pins(modal_app.FIRST_INSTALLED) == ["torch==2.14.1", "torchvision==0.29.1"]
    assert modal_app.worker_pins(modal_app.BUILT_AGAINST_THEM) == ["basicsr==1.4.2"]
    loose = tmp_path / "req.txt"
    loose.write_text("# torch==1.0 in a comment\ntorch\n")
    with pytest.raises(ValueError, match="pins no torch"):
        modal_app.worker_pins(("torch",), loose)
