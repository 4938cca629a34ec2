"""The run history on a real DuckDB file: schema, migrations, run life cycle, recovery, import."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench.e6 import load_e6
from bench.e6_import import import_e6
from bench.liveness import recover_gone_runs
from core.errors import InputError, StorageError
from core.job import Fidelity, JobResult
from store import runs as R
from store.db import MIGRATIONS, SCHEMA_VERSION, Database

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "sub" / "dir" / "bench.duckdb")


def _experiment(db: Database, **kw) -> str:
    record = R.ExperimentRecord(**{"name": "e6 on T4/L4", "preset": "e6", "source": "u/src.mp4",
                                   "plan_json": {"clips": ["6s"], "gpus": ["T4", "L4"]},
                                   "model": "x4plus", "engine": "fast", "backend": "modal",
                                   "price_table_date": "2026-06",
                                   "price_table_json": {"T4": 0.000164, "L4": 0.000222},
                                   "commit": "0123abc", **kw})
    return R.create_experiment(db, record)


def _result(run_id: str, **kw) -> JobResult:
    base = dict(job_id=run_id, status="succeeded",
                stages={"fetch": 0.2, "model_load": 2.0, "decode": 1.0, "upscale": 20.0, "encode": 1.5,
                        "upload": 0.3, "total": 24.0},
                frames_in=180, frames_out=180, output_width=810, output_height=1440,
                output_key="runs/out.mp4", output_bytes=12345, device_name="NVIDIA L4",
                torch_version="2.14.1", cuda_version="13.0", model="x4plus", engine="fast",
                precision="fp16", weights_provenance="official", weights_sha256="ab" * 32,
                fidelity=Fidelity(frames=3, psnr=31.5, ssim=0.91, bicubic_psnr=28.0, bicubic_ssim=0.85))
    base.update(kw)
    return JobResult(**base)


# --------------------------------------------------------------------------- schema


def test_creates_directory_and_schema_and_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bench.duckdb"
    db = Database(path)
    assert path.is_file()
    assert db.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    experiment_id = _experiment(db)
    assert db.migrate() == SCHEMA_VERSION
    assert Database(path).migrate() == SCHEMA_VERSION  # a second open migrates nothing again
    assert R.get_experiment(db, experiment_id).name == "e6 on T4/L4"
    versions = db.read("SELECT value FROM meta WHERE key = 'schema_version'")
    assert versions["value"].tolist() == [str(SCHEMA_VERSION)]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bench.duckdb"
    db = Database(path)
    db.write(lambda con: con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'"))
    with pytest.raises(StorageError, match="schema version 999"):
        Database(path)


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "bench.duckdb"
    path.write_text("not a database at all, just text" * 100)
    with pytest.raises(StorageError, match=str(path.name)):
        Database(path)


def test_a_foreign_holder_is_waited_for_then_reported(tmp_path: Path) -> None:
    path = tmp_path / "bench.duckdb"
    db = Database(path)
    experiment_id = _experiment(db)
    # A process that ignores our lock files and holds the file with a plain connection.
    hold = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(float(sys.argv[2]))", str(path), "1.5"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdout.readline().strip() == "held"
        with pytest.raises(StorageError, match=f"{path.name} stayed locked"):
            R.get_experiment(Database(path, timeout=0.2, migrate=False), experiment_id)
        started = time.monotonic()
        assert R.get_experiment(db, experiment_id).id == experiment_id  # waits, then succeeds
        assert time.monotonic() - started < 25
    finally:
        hold.wait(timeout=30)


# --------------------------------------------------------------------------- life cycle


def test_run_life_cycle_copies_the_result_into_columns(db: Database) -> None:
    experiment_id = _experiment(db)
    specs = [R.RunSpec(clip="6s", gpu=gpu, clip_start=3.0, clip_end=9.0, frames_expected=180,
                       repeat_index=rep) for gpu in ("T4", "L4") for rep in (0, 1)]
    ids = R.add_runs(db, experiment_id, specs)
    assert len(ids) == 4 and len(set(ids)) == 4
    first = R.get_run(db, ids[0])
    assert (first.status, first.seq, first.model, first.engine, first.price_gpu) == ("queued", 0, "x4plus", "fast", "T4")
    assert len(R.active_runs(db)) == 4

    R.mark_running(db, ids[0], worker_pid=os.getpid(), call_id="fc-123")
    assert R.update_progress(db, ids[0], 60, 180, "upscale") is True
    live = R.get_run(db, ids[0])
    assert (live.status, live.frames_done, live.frames_total, live.progress_stage) == ("running", 60, 180, "upscale")
    assert live.worker_host == socket.gethostname() and live.call_id == "fc-123"
    assert live.heartbeat_at is not None and live.started_at is not None

    outcome = R.RunOutcome(status="succeeded", result=_result(ids[0]), cold=True, client_wall_seconds=30.0,
                           startup_seconds=9.0, cost_gpu=22.0 * 0.000222, cost_all_in=0.01)
    R.finish_run(db, ids[0], outcome)
    done = R.get_run(db, ids[0])
    assert done.status == "succeeded" and done.error is None and done.cold is True
    assert (done.fetch_seconds, done.model_load_seconds, done.decode_seconds, done.upscale_seconds,
            done.encode_seconds, done.upload_seconds, done.total_seconds) == (0.2, 2.0, 1.0, 20.0, 1.5, 0.3, 24.0)
    # fps leaves out the one-time model load (2.0 s): the steady rate of the job
    assert done.fps == pytest.approx(180 / 22.0) and done.upscale_fps == pytest.approx(180 / 20.0)
    assert (done.psnr, done.ssim, done.bicubic_psnr, done.bicubic_ssim, done.fidelity_frames) == (31.5, 0.91, 28.0, 0.85, 3)
    assert (done.device_name, done.precision, done.weights_provenance, done.cuda_version) == (
        "NVIDIA L4", "fp16", "official", "13.0")
    assert (done.output_width, done.output_height, done.output_key, done.frames_done) == (810, 1440, "runs/out.mp4", 180)
    # job seconds leave out the model load; billed = job + the start-up the run paid
    assert done.job_seconds == pytest.approx(22.0) and done.startup_seconds == 9.0
    assert done.cost_gpu == pytest.approx(22.0 * 0.000222) and done.billed_seconds == pytest.approx(31.0)
    assert done.result == _result(ids[0])
    assert done.finished_at >= done.started_at
    # A late progress event does not reopen a finished run.
    assert R.update_progress(db, ids[0], 10, 180, "upscale") is False
    assert R.get_run(db, ids[0]).frames_done == 180

    failed = _result(ids[1], status="failed", error="corrupt source: invalid data", frames_out=0,
                     stages={"fetch": 0.1, "total": 0.4}, fidelity=None)
    R.finish_run(db, ids[1], R.RunOutcome(status="failed", result=failed))
    row = R.get_run(db, ids[1])
    assert (row.status, row.error, row.total_seconds, row.psnr, row.fps) == (
        "failed", "corrupt source: invalid data", 0.4, None, None)

    R.fail_run(db, ids[2], "Modal said:\n  no GPU available")
    assert R.get_run(db, ids[2]).error == "Modal said: no GPU available"
    assert R.get_run(db, ids[3]).status == "queued"  # fail_run touched only its own run
    assert R.interrupt_runs(db, ids, "dashboard stopped the experiment") == 1
    assert R.get_run(db, ids[3]).status == "interrupted"
    assert R.active_runs(db).empty


def test_unknown_ids_and_bad_values_are_input_errors(db: Database) -> None:
    with pytest.raises(InputError, match="no experiment"):
        R.add_runs(db, "nope", [R.RunSpec(clip="6s", gpu="T4")])
    with pytest.raises(InputError, match="no run"):
        R.mark_running(db, "nope")
    with pytest.raises(InputError, match="no run"):
        R.fail_run(db, "nope", "x")
    with pytest.raises(InputError):
        R.RunOutcome(status="running")
    with pytest.raises(InputError, match="origin"):
        R.create_experiment(db, R.ExperimentRecord(name="x", origin="elsewhere"))
    with pytest.raises(InputError, match="status"):
        R.list_runs(db, statuses=["done"])
    assert R.get_run(db, "nope") is None and R.get_experiment(db, "nope") is None


def test_a_failed_write_is_rolled_back(db: Database) -> None:
    experiment_id = _experiment(db)

    def half_then_fail(con) -> None:
        R._insert_runs(con, experiment_id, [R.RunSpec(clip="6s", gpu="T4")])
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        db.write(half_then_fail)
    assert R.list_runs(db, experiment_id=experiment_id).empty


def test_filters_and_listing(db: Database) -> None:
    a = _experiment(db, name="first")
    b = _experiment(db, name="second", model="general-x4v3")
    ids_a = R.add_runs(db, a, [R.RunSpec(clip=c, gpu=g) for c in ("6s", "15s") for g in ("T4", "L4")])
    ids_b = R.add_runs(db, b, [R.RunSpec(clip="6s", gpu="H100")])
    R.fail_run(db, ids_a[1], "boom")
    assert len(R.list_runs(db)) == 5
    assert list(R.list_runs(db, experiment_id=a)["seq"]) == [0, 1, 2, 3]
    assert set(R.list_runs(db, gpus=["L4"])["id"]) == {ids_a[1], ids_a[3]}
    assert list(R.list_runs(db, models=["general-x4v3"])["id"]) == ids_b
    assert list(R.list_runs(db, statuses=["failed"])["error"]) == ["boom"]
    assert set(R.list_runs(db, run_ids=[ids_a[0], ids_b[0]])["id"]) == {ids_a[0], ids_b[0]}
    assert len(R.list_runs(db, limit=2)) == 2
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert R.list_runs(db, since=future).empty and len(R.list_runs(db, until=future)) == 5
    assert "result_json" not in R.list_runs(db).columns
    assert "result_json" in R.list_runs(db, with_result_json=True).columns
    assert set(R.list_runs(db)["experiment_name"]) == {"first", "second"}

    experiments = R.list_experiments(db)
    assert list(experiments["name"]) == ["second", "first"]  # newest first
    first = experiments.set_index("name").loc["first"]
    assert (first["runs"], first["queued"], first["failed"], first["succeeded"]) == (4, 3, 1, 0)
    assert len(R.list_experiments(db, limit=1)) == 1
    row = R.get_experiment(db, a)
    assert json.loads(row.plan_json) == {"clips": ["6s"], "gpus": ["T4", "L4"]}
    assert json.loads(row.price_table_json) == {"T4": 0.000164, "L4": 0.000222}
    assert row.origin == "run" and row.commit == "0123abc" and row.schema_version == SCHEMA_VERSION


def test_history_is_plain_json(db: Database) -> None:
    experiment_id = _experiment(db)
    (run_id, queued_id) = R.add_runs(db, experiment_id, [R.RunSpec(clip="6s", gpu="L4"), R.RunSpec(clip="6s", gpu="T4")])
    R.mark_running(db, run_id)
    R.finish_run(db, run_id, R.RunOutcome(status="succeeded", result=_result(run_id, fidelity=Fidelity(
        frames=1, psnr=float("inf"), ssim=1.0, bicubic_psnr=30.0, bicubic_ssim=0.9)), cost_gpu=0.005))
    data = R.history(db)
    text = json.dumps(data, allow_nan=False)  # NaN/inf would fail here
    assert json.loads(text) == data
    (experiment,) = data["experiments"]
    assert experiment["plan"] == {"clips": ["6s"], "gpus": ["T4", "L4"]}
    assert experiment["price_table"]["L4"] == 0.000222
    run, queued = experiment["runs"]
    assert run["id"] == run_id and run["status"] == "succeeded" and run["cost_gpu"] == 0.005
    assert run["psnr"] is None  # an infinite PSNR (identical frames) is not JSON: null
    assert run["result"]["device_name"] == "NVIDIA L4"
    assert datetime.fromisoformat(run["finished_at"]) and queued["finished_at"] is None
    assert queued["cost_gpu"] is None and queued["result"] is None


# --------------------------------------------------------------------------- recovery


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_recover_marks_runs_of_dead_workers_interrupted(db: Database) -> None:
    experiment_id = _experiment(db)
    dead, alive, modal, handed, other_host, waiting = R.add_runs(
        db, experiment_id, [R.RunSpec(clip=str(i), gpu="cpu") for i in range(6)])
    dead_pid = _dead_pid()
    R.mark_running(db, dead, worker_pid=dead_pid)
    R.mark_running(db, alive, worker_pid=os.getpid())
    R.mark_running(db, modal, call_id="fc-abc")
    # A queued run already handed to a worker that died before starting it.
    db.write(lambda con: con.execute("UPDATE runs SET worker_pid = ?, worker_host = ? WHERE id = ?",
                                     [dead_pid, socket.gethostname(), handed]))
    R.mark_running(db, other_host, worker_pid=dead_pid, worker_host="another-machine")

    assert recover_gone_runs(db) == 2
    gone = R.get_run(db, dead)
    assert gone.status == "interrupted" and f"worker process {dead_pid}" in gone.error and gone.finished_at
    assert R.get_run(db, handed).status == "interrupted"
    for untouched, status in ((alive, "running"), (modal, "running"), (other_host, "running"), (waiting, "queued")):
        assert R.get_run(db, untouched).status == status
    assert recover_gone_runs(db) == 0  # idempotent

    # A caller's own check (e.g. the Modal poller's) decides for the runs it is given.
    assert R.recover_interrupted(db, is_alive=lambda run: run.id != modal) == 1
    assert R.get_run(db, modal).status == "interrupted"


def test_recover_leaves_a_run_that_finished_meanwhile(db: Database) -> None:
    experiment_id = _experiment(db)
    (run_id,) = R.add_runs(db, experiment_id, [R.RunSpec(clip="6s", gpu="cpu")])
    R.mark_running(db, run_id, worker_pid=_dead_pid())

    def finished_while_checking(run: R.RunRow) -> bool:
        R.finish_run(db, run.id, R.RunOutcome(status="succeeded", result=_result(run.id)))
        return False

    assert R.recover_interrupted(db, is_alive=finished_while_checking) == 0
    assert R.get_run(db, run_id).status == "succeeded"


# --------------------------------------------------------------------------- import


E6_FILE = {
    "timestamp": "2025-03-14T10:20:30",
    "config": {"model": "x4plus", "gpus": ["T4", "L4"], "fps": 30},
    "pricing": {"T4": 0.000164, "L4": 0.000222},
    "results": [
        {"gpu": "T4", "clip": "6s", "frames": 180, "elapsed": 60.0, "fps": 3.0, "status": "success"},
        {"gpu": "L4", "clip": "6s", "frames": 180, "elapsed": 40.0, "fps": 4.5, "status": "success"},
        {"gpu": "L4", "clip": "30s", "frames": 900, "elapsed": None, "fps": None, "status": "failed",
         "error": "CUDA out of memory"},
    ],
    "comparisons": {"6s": {"winner": "L4"}},
}


def test_import_e6_keeps_failed_results_and_prices_runs(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "e6_results.json"
    path.write_text(json.dumps(E6_FILE))
    experiment_id = import_e6(db, load_e6(path), path.name)
    experiment = R.get_experiment(db, experiment_id)
    assert experiment.origin == "import" and experiment.model == "x4plus"
    assert "e6_results.json" in experiment.name and "2025-03-14T10:20:30" in experiment.notes
    assert json.loads(experiment.price_table_json) == E6_FILE["pricing"]
    assert experiment.price_table_date == "2025-03-14"
    runs = R.list_runs(db, experiment_id=experiment_id).set_index(["gpu", "clip"])
    assert len(runs) == 3
    t4 = runs.loc[("T4", "6s")]
    assert (t4["status"], t4["total_seconds"], t4["fps"], t4["frames_out"]) == ("succeeded", 60.0, 3.0, 180)
    assert t4["cost_gpu"] == pytest.approx(60.0 * 0.000164)
    assert runs.loc[("L4", "6s")]["cost_gpu"] == pytest.approx(40.0 * 0.000222)
    failed = runs.loc[("L4", "30s")]
    assert failed["status"] == "failed" and failed["error"] == "CUDA out of memory"
    assert math.isnan(failed["total_seconds"]) and math.isnan(failed["cost_gpu"])
    assert failed["frames_expected"] == 900


def test_import_cli_and_history_cli(tmp_path: Path) -> None:
    path = tmp_path / "e6.json"
    path.write_text(json.dumps(E6_FILE))
    db_path = tmp_path / "cli.duckdb"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = lambda *args: subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    imported = run("import", str(path), "--db", str(db_path))
    assert imported.returncode == 0, imported.stderr
    experiment_id = imported.stdout.strip()
    assert len(experiment_id) == 32

    table = run("history", "--db", str(db_path))
    assert table.returncode == 0, table.stderr
    assert experiment_id in table.stdout and "CUDA out of memory" in table.stdout
    as_json = run("history", "--db", str(db_path), "--json")
    assert as_json.returncode == 0, as_json.stderr
    (experiment,) = json.loads(as_json.stdout)["experiments"]
    assert experiment["id"] == experiment_id and len(experiment["runs"]) == 3
    assert {r["status"] for r in experiment["runs"]} == {"succeeded", "failed"}

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused = run("import", str(bad), "--db", str(db_path))
    assert refused.returncode == 2 and refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1

    empty = run("history", "--db", str(tmp_path / "missing.duckdb"), "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == {"experiments": []}
    assert not (tmp_path / "missing.duckdb").exists()


def test_no_duckdb_connection_stays_open_between_calls(db: Database) -> None:
    """The file is free for another process right after any call."""
    _experiment(db)
    probe = subprocess.run(
        [sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close(); print('ok')", str(db.path)],
        capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "ok", probe.stderr


def test_run_facets_list_distinct_gpus_and_models(tmp_path):
    from store import runs as store_runs
    from store.db import Database

    db = Database(tmp_path / "facets.duckdb")
    experiment_id = store_runs.create_experiment(db, store_runs.ExperimentRecord(name="f"))
    store_runs.add_runs(db, experiment_id, [
        store_runs.RunSpec(clip="a", gpu="T4", model="x4plus"),
        store_runs.RunSpec(clip="b", gpu="L4", model="x4plus"),
        store_runs.RunSpec(clip="a", gpu="T4", model="animevideov3")])
    assert store_runs.run_facets(db) == {"gpu": ["L4", "T4"], "model": ["animevideov3", "x4plus"]}
