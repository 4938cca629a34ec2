"""Plans run end to end on the local backend: stored runs, stage timings, cost, failures kept apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.backends.base import Submission
from bench.backends.local import LocalBackend
from bench.figures import card_rate
from bench.liveness import pid_exists, recover_gone_runs
from bench.orchestrator import (
    create_experiment,
    execute_experiment,
    prepare_source,
)
from bench.plan import build_plan
from bench.pricing import DEFAULT_PRICES
from core.errors import InputError
from core.job import Job
from store import runs as store_runs
from store.config import StorageConfig
from store.db import Database
from store.objects import LocalDirectoryStore
from tests.jobs import VIDEO_JOB_STAGES
from tests.sinks import Sink

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    monkeypatch.delenv("BENCH_STORAGE", raising=False)
    config = StorageConfig(kind="local", local_root=tmp_path / "data" / "objects")
    return Database(tmp_path / "data" / "bench.duckdb"), config, LocalDirectoryStore(config.local_root)


def test_demo_preset_via_cli_stores_succeeded_runs_with_every_stage(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_OFFLINE": "1",
           "BENCH_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--preset", "demo", "--json",
                           "--weights", "random"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["runs"]) == 18  # 3 clips x 2 engines x 3 repeats
    for run in out["runs"]:
        assert run["status"] == "succeeded" and run["error"] is None
        assert set(VIDEO_JOB_STAGES) | {"total"} <= set(run["stages"])
        assert run["cost"] > 0 and run["gpu"] == "cpu"
    # The two engines are the candidates on this one CPU: a verdict between them.
    assert set(out["analysis"]["rates"]) == {"cpu · reference", "cpu · fast"}
    assert out["verdict"]["baseline"] == "cpu · reference"
    db = Database(tmp_path / "data" / "bench.duckdb")
    stored = store_runs.list_runs(db, experiment_id=out["experiment_id"])
    assert list(stored["status"]) == ["succeeded"] * 18
    assert stored["cold"].sum() == 2  # one warm worker: each engine's first run loads it
    history = subprocess.run([sys.executable, "-m", "bench", "history", "--json"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(history.stdout)["experiments"][0]["id"] == out["experiment_id"]


def test_truncated_source_fails_its_late_clip_while_the_early_one_completes(env, tiny_clip, tmp_path):
    db, config, storage = env
    data = tiny_clip.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    plan = build_plan(None, source=str(truncated), clips="early:0.0:0.5,late:0.5:2.0",
                      gpus="cpu", model="animevideov3", engine="fast", fps=10, weights="random",
                      keyframes=[{"time": 0, "x": 8, "y": 8, "width": 24, "height": 16}])
    key = prepare_source(plan.source, storage)
    experiment_id, _ = create_experiment(db, plan, key)
    execute_experiment(db, experiment_id, config)
    runs = store_runs.list_runs(db, experiment_id=experiment_id).set_index("clip")
    assert runs.loc["early", "status"] == "succeeded"
    assert runs.loc["late", "status"] == "failed"
    assert "truncated or corrupt" in runs.loc["late", "error"]


def test_corrupt_source_fails_every_run_and_keeps_earlier_experiments(env, tmp_path):
    db, config, storage = env
    good = build_plan("demo", weights="random")
    first, _ = create_experiment(db, good, prepare_source(good.source, storage))
    execute_experiment(db, first, config)
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    plan = build_plan("demo", source=str(bad), weights="random")
    second, _ = create_experiment(db, plan, prepare_source(plan.source, storage))
    execute_experiment(db, second, config)
    failed = store_runs.list_runs(db, experiment_id=second)
    assert set(failed["status"]) == {"failed"}
    assert all("corrupt.mp4" in e or "cannot read" in e for e in failed["error"])
    assert set(store_runs.list_runs(db, experiment_id=first)["status"]) == {"succeeded"}


def _die_on_purpose() -> LocalDirectoryStore:
    os._exit(7)


def test_a_worker_that_dies_fails_its_run_with_the_exit_code():
    backend = LocalBackend(_die_on_purpose)
    job = Job(job_id="r1", user_id="u", input_key="x.mp4", output_key="y.mp4", device="cpu")
    sink = Sink()
    backend.execute([Submission("r1", job, "cpu"), Submission("r2", job, "cpu")], sink)
    assert list(sink.failures) == ["r1", "r2"]
    assert "died (exit code 7)" in sink.failures["r1"]


def test_a_local_run_cannot_be_reattached_and_fails_with_the_reason(env):
    db, config, storage = env
    sink = Sink()
    LocalBackend(lambda: storage).resume({"r1": "pid-1", "r2": "pid-2"}, sink)
    assert list(sink.failures) == ["r1", "r2"]
    assert all("cannot be reattached" in reason for reason in sink.failures.values())


def test_unknown_device_is_refused_before_launch(env):
    db, config, storage = env
    with pytest.raises(Exception, match="no local device"):
        LocalBackend(lambda: storage).preflight(["cuda:5"])


def test_card_rate_prices_devices_by_card_or_cpu_cores():
    assert card_rate({"gpu": "cuda:0", "price_gpu": "L4"}, DEFAULT_PRICES, {}) == \
        ("L4", DEFAULT_PRICES.rate("L4"))
    assert card_rate({"gpu": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3"}, DEFAULT_PRICES,
                     {}) == ("H100", DEFAULT_PRICES.rate("H100"))
    assert card_rate({"gpu": "cpu", "device_name": "Intel(R) Xeon(R)", "cpu_cores": 2.0},
                     DEFAULT_PRICES, {}) == (None, DEFAULT_PRICES.cpu_rate(2))
    assert card_rate({"gpu": "X9"}, DEFAULT_PRICES, {"X9": 0.5}) == (None, 0.5)


def test_queued_runs_of_an_executor_that_died_are_marked_interrupted(env):
    db, config, storage = env
    plan = build_plan("demo", weights="random")
    experiment_id, run_ids = create_experiment(db, plan, prepare_source(plan.source, storage))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert store_runs.claim_runs(db, run_ids, worker_pid=gone.pid) == len(run_ids)
    assert recover_gone_runs(db) == len(run_ids)
    runs = store_runs.list_runs(db, experiment_id=experiment_id)
    assert set(runs["status"]) == {"interrupted"}
    assert all(str(gone.pid) in reason for reason in runs["error"])


def test_e6_on_modal_without_credentials_stores_failed_runs_and_says_why_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("R2_", "MODAL_"))}
    env.update(PYTHONPATH=str(ROOT), BENCH_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--preset", "e6"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2  # refused at launch (user error), runs stored failed
    assert proc.stderr.strip().count("\n") == 0 and "R2_ENDPOINT_URL" in proc.stderr
    db = Database(tmp_path / "data" / "bench.duckdb")
    runs = store_runs.list_runs(db)
    assert len(runs) == 6 and set(runs["status"]) == {"failed"}
    assert all("R2_ENDPOINT_URL" in e for e in runs["error"])


def test_workers_of_a_killed_executor_exit_and_their_runs_become_interrupted(env, tmp_path):
    """SIGKILL the executor mid-run: its worker notices, exits, and recovery marks the run."""
    import signal
    import time

    db, config, storage = env
    plan = build_plan("demo", weights="random", clips="long:0.0:1.5", engine="fast", repeats=1)
    experiment_id, (run_id,) = create_experiment(db, plan, prepare_source(plan.source, storage))
    executor = subprocess.Popen([sys.executable, "-m", "bench", "execute", experiment_id, "--db",
                                 str(db.path)], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.time() + 120
    while store_runs.get_run(db, run_id).status == "queued" and time.time() < deadline:
        time.sleep(0.2)
    worker_pid = store_runs.get_run(db, run_id).worker_pid
    executor.send_signal(signal.SIGKILL)
    executor.wait()
    while pid_exists(worker_pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not pid_exists(worker_pid), "the orphaned worker kept running"
    recover_gone_runs(db)
    run = store_runs.get_run(db, run_id)
    assert run.status in ("interrupted", "succeeded")  # it may have finished just before the kill
    if run.status == "interrupted":
        assert str(worker_pid) in run.error


def test_a_device_this_machine_lacks_fails_only_its_own_runs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_OFFLINE": "1",
           "BENCH_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--preset", "demo", "--json",
                           "--gpus", "cuda:7=H100,cpu", "--engine", "fast", "--repeats", "1",
                           "--weights", "random"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    out = json.loads(proc.stdout)
    assert proc.returncode == 1  # some runs failed
    by_gpu = {}
    for run in out["runs"]:
        by_gpu.setdefault(run["gpu"], []).append(run)
    assert {r["status"] for r in by_gpu["cpu"]} == {"succeeded"}
    assert {r["status"] for r in by_gpu["cuda:7"]} == {"failed"}
    assert all("no local device 'cuda:7'" in r["error"] for r in by_gpu["cuda:7"])
    assert out["verdict"] is not None


def test_a_weights_file_that_does_not_exist_is_refused_before_launch(env, tmp_path):
    from bench.orchestrator import preflight

    db, config, storage = env
    plan = build_plan("demo", weights=str(tmp_path / "nope.pth"))
    with pytest.raises(InputError, match="weights file .*nope.pth does not exist"):
        preflight(plan, config)


class RecordingBackend:
    """A backend that only notes which runs it was given."""

    name = "local"

    def __init__(self) -> None:
        self.given: list[str] = []

    def preflight(self, gpus) -> None:
        pass

    def execute(self, submissions, sink) -> None:
        self.given = [s.run_id for s in submissions]


def test_a_second_executor_leaves_runs_a_live_executor_answers_for(env):
    db, config, storage = env
    plan = build_plan("demo", engine="fast", repeats=1)
    experiment_id, run_ids = create_experiment(db, plan, prepare_source(plan.source, storage))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        store_runs.claim_runs(db, run_ids[:2], worker_pid=live.pid)  # another executor, alive
        store_runs.claim_runs(db, run_ids[2:], worker_pid=gone.pid)  # one whose executor is gone
        backend = RecordingBackend()
        execute_experiment(db, experiment_id, config, backend=backend)
        assert backend.given == run_ids[2:]
        assert {store_runs.get_run(db, rid).worker_pid for rid in run_ids[:2]} == {live.pid}
        assert {store_runs.get_run(db, rid).worker_pid for rid in run_ids[2:]} == {os.getpid()}
    finally:
        live.kill()
        live.wait()
