"""Managing stored experiments on real DuckDB files, real local runs and the CLI: cancel (queued
runs never start, running ones stop, nothing half-written), rename, notes and tags, delete (only
the experiment asked for), and the migration that brings the cancelled status to old databases."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.backends.modal_backend import ModalBackend
from bench.liveness import pid_exists
from bench.manage import cancel_experiment, delete_experiment
from bench.orchestrator import create_experiment, execute_experiment, prepare_source
from bench.plan import build_plan
from core.errors import InputError
from core.status import ACTIVE_STATUSES
from store import manage as store_manage
from store import runs as store_runs
from store.db import MIGRATIONS, SCHEMA_VERSION, Database
from store.keys import output_key, output_object_key
from store.objects import LocalDirectoryStore
from tests.modal_fakes import FakeModal
from tests.test_orchestrator import env  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str, db: Database, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", *args, "--db", str(db.path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def _tiny_plan(**overrides):
    return build_plan("demo", weights="random", engine="fast", repeats=1, clips="a:0.0:0.4",
                      **overrides)


def _objects(storage: LocalDirectoryStore) -> dict[str, bytes]:
    return {str(p.relative_to(storage.root)): p.read_bytes()
            for p in sorted(storage.root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- migration


def test_a_version_3_database_migrates_and_keeps_its_rows(tmp_path: Path) -> None:
    """A file written before cancelling existed (its CHECK allows five statuses) takes cancelled
    runs and tags after opening, with every row and index kept."""
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    for step in MIGRATIONS[:3]:
        for statement in step:
            con.execute(statement)
    con.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    con.execute("INSERT INTO experiments (id, created_at, name, origin, schema_version) "
                "VALUES ('e1', now(), 'old', 'run', 3)")
    con.execute("INSERT INTO runs (id, experiment_id, seq, clip, gpu, repeat_index, status, "
                "created_at, total_seconds) VALUES ('r1', 'e1', 0, '6s', 'T4', 0, 'queued', now(), 1.5)")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("UPDATE runs SET status = 'cancelled'")
    con.close()

    db = Database(path)
    assert db.schema_version() == SCHEMA_VERSION
    assert store_runs.get_run(db, "r1").total_seconds == 1.5
    assert [r.id for r in store_manage.cancel_active_runs(db, "e1", "stop")] == ["r1"]
    assert store_runs.get_run(db, "r1").status == "cancelled"
    assert store_manage.annotate_experiment(db, "e1", "n", ["a"]) == ("n", ["a"])
    indexes = db.read("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'runs'")
    assert list(indexes["index_name"]) == ["runs_experiment_idx"]
    with pytest.raises(Exception, match="CHECK"):  # the check itself is still there
        db.write(lambda c: c.execute("UPDATE runs SET status = 'lost'"))


# --------------------------------------------------------------------------- rename, note


def test_rename_note_and_tags_through_the_cli(env) -> None:
    db, config, storage = env
    plan = _tiny_plan()
    experiment_id, _ = create_experiment(db, plan, prepare_source(plan.source, storage))
    other, _ = create_experiment(db, plan, prepare_source(plan.source, storage), name="other")
    done = _bench("rename", experiment_id, "  T4   vs L4\n", db=db)
    assert done.returncode == 0 and store_runs.get_experiment(db, experiment_id).name == "T4 vs L4"
    done = _bench("note", experiment_id, "first try", "--tag", "h200", "--tag", "fast", db=db)
    assert done.returncode == 0, done.stderr
    done = _bench("note", experiment_id, "--untag", "fast", "--tag", "h200", db=db)
    row = store_runs.get_experiment(db, experiment_id)
    assert (row.notes, list(row.tags)) == ("first try", ["h200"])
    assert store_runs.get_experiment(db, other).name == "other"  # only the one asked for
    assert store_runs.get_experiment(db, other).notes is None

    for args, message in ((("rename", experiment_id, " "), "needs a name"),
                          (("rename", "nope", "x"), "no experiment 'nope'"),
                          (("note", experiment_id), "give the notes TEXT"),
                          (("note", experiment_id, "--tag", "a,b"), "without commas"),
                          (("delete", experiment_id), "add --yes")):
        done = _bench(*args, db=db)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
    assert store_runs.get_experiment(db, experiment_id) is not None  # no --yes: kept


# --------------------------------------------------------------------------- delete


def test_delete_removes_one_experiment_its_runs_and_outputs_and_nothing_else(env) -> None:
    db, config, storage = env
    plan = _tiny_plan()
    source = prepare_source(plan.source, storage)
    kept, _ = create_experiment(db, plan, source, name="kept")
    gone, gone_runs = create_experiment(db, plan, source, name="gone")
    for experiment_id in (kept, gone):
        execute_experiment(db, experiment_id, config)
    kept_rows = store_runs.list_runs(db, experiment_id=kept, with_result_json=True)
    assert set(kept_rows["status"]) == {"succeeded"}
    before = _objects(storage)
    gone_keys = {output_object_key(source, output_key(gone, r)) for r in gone_runs}
    assert gone_keys <= set(before)

    report = delete_experiment(db, gone, storage)
    assert (report.runs, report.objects) == (len(gone_runs), len(gone_runs))
    assert store_runs.get_experiment(db, gone) is None
    assert store_runs.list_runs(db, experiment_id=gone).empty
    assert store_runs.get_experiment(db, kept).name == "kept"
    after = store_runs.list_runs(db, experiment_id=kept, with_result_json=True)
    assert after.equals(kept_rows)
    assert _objects(storage) == {k: v for k, v in before.items() if k not in gone_keys}
    assert source in _objects(storage)  # the shared source stays
    assert not (storage.root / "bench" / "outputs" / gone).exists()
    with pytest.raises(InputError, match="no experiment"):
        delete_experiment(db, gone, storage)


def test_an_experiment_still_running_is_not_deleted(env) -> None:
    db, config, storage = env
    plan = _tiny_plan()
    experiment_id, _ = create_experiment(db, plan, prepare_source(plan.source, storage))
    done = _bench("delete", experiment_id, "--yes", db=db)
    assert done.returncode == 2 and "cancel it first" in done.stderr
    assert len(store_runs.list_runs(db, experiment_id=experiment_id)) == 1


# --------------------------------------------------------------------------- cancel


def test_cancel_stops_the_running_local_run_and_the_queued_ones_never_start(env, tmp_path) -> None:
    """A real executor in its own process: cancel while its first run is upscaling. That worker
    ends at once, the queued run never starts, the executor exits, all are stored cancelled and
    no output of theirs is in the object store."""
    db, config, storage = env
    plan = build_plan("demo", weights="random", model="x4plus", engine="fast", repeats=1,
                      clips="long:0.0:1.5,later:0.0:0.5")  # x4plus: seconds a frame on a CPU
    experiment_id, (first, second) = create_experiment(db, plan, prepare_source(plan.source, storage))
    executor = subprocess.Popen([sys.executable, "-m", "bench", "execute", experiment_id, "--db",
                                 str(db.path)], cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while store_runs.get_run(db, first).progress_stage != "upscale" and time.time() < deadline:
            time.sleep(0.1)
        running = store_runs.get_run(db, first)
        assert running.status == "running", running.error
        done = _bench("cancel", experiment_id, db=db)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "cancelled 2 run(s): 1 queued, 1 running (stopped)"
        assert not pid_exists(running.worker_pid)  # the command waited for the worker to end
        assert executor.wait(timeout=60) is not None
    finally:
        executor.kill()
    runs = {r.id: r for r in (store_runs.get_run(db, rid) for rid in (first, second))}
    assert {r.status for r in runs.values()} == {"cancelled"}
    assert all(r.error == "cancelled by the user" and r.result_json is None for r in runs.values())
    assert runs[second].started_at is None  # never started
    assert not any("outputs" in key for key in _objects(storage))
    assert _bench("cancel", experiment_id, db=db).stdout.startswith("nothing to cancel")


def test_cancel_cancels_modal_calls_by_their_id(env, modal_token) -> None:
    db, config, storage = env
    plan = _tiny_plan()
    experiment_id, (run_id,) = create_experiment(db, plan, prepare_source(plan.source, storage))
    sdk = FakeModal()
    call = sdk.Cls.from_name("a", "b").with_options(gpu="L4")().run.spawn({"job_id": run_id})
    store_runs.mark_running(db, run_id, call_id=call.object_id)
    report = cancel_experiment(db, experiment_id, storage, modal_backend=ModalBackend(sdk=sdk))
    assert (report.queued, report.running, report.problems) == (0, 1, ())
    assert sdk.spawned[0].cancelled and sdk.of("FunctionCall.from_id")[0].args == (call.object_id,)
    assert store_runs.get_run(db, run_id).status == "cancelled"
    # What the poller reports afterwards does not bring the run back.
    store_runs.fail_run(db, run_id, "the call was cancelled")
    assert store_runs.get_run(db, run_id).status == "cancelled"
    assert not set(store_runs.list_runs(db)["status"]) & set(ACTIVE_STATUSES)


def test_a_modal_call_that_cannot_be_cancelled_is_reported_and_the_run_still_cancelled(
        env, modal_token) -> None:
    db, config, storage = env
    plan = _tiny_plan()
    experiment_id, (run_id,) = create_experiment(db, plan, prepare_source(plan.source, storage))
    store_runs.mark_running(db, run_id, call_id="fc-gone")
    report = cancel_experiment(db, experiment_id, storage,
                               modal_backend=ModalBackend(sdk=FakeModal()))  # Modal has no such call
    assert len(report.problems) == 1 and "fc-gone" in report.problems[0]
    assert store_runs.get_run(db, run_id).status == "cancelled"
