"""Several processes on one DuckDB file: two writers and a reader, no write lost, no error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from core.job import JobResult
from store import runs as R
from store.db import Database

ROOT = Path(__file__).resolve().parents[1]
RUNS_PER_WRITER = 500
GROUP = 10

WRITER = """
import json, os, sys
from store.db import Database
from store import runs as R
from core.job import JobResult

path, experiment_id, tag, n, group = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
db = Database(path)
done = 0
for start in range(0, n, group):
    specs = [R.RunSpec(clip=f"{tag}-{start + i}", gpu=tag, frames_expected=10) for i in range(group)]
    for run_id in R.add_runs(db, experiment_id, specs):
        R.mark_running(db, run_id, worker_pid=os.getpid())
        result = JobResult(job_id=run_id, status="succeeded", stages={"upscale": 0.5, "total": 1.0},
                           frames_in=10, frames_out=10, device_name=tag)
        R.finish_run(db, run_id, R.RunOutcome(status="succeeded", result=result))
        done += 1
print(json.dumps({"done": done}))
"""

READER = """
import json, os, sys, time
from store.db import Database
from store import runs as R

path, experiment_id, stop = sys.argv[1], sys.argv[2], sys.argv[3]
db = Database(path)
reads, last, regressions = 0, 0, 0
while not os.path.exists(stop):
    runs = R.list_runs(db, experiment_id=experiment_id)
    finished = int((runs["status"] == "succeeded").sum())
    regressions += finished < last
    last = max(last, finished)
    R.list_experiments(db)
    reads += 1
    time.sleep(0.05)
print(json.dumps({"reads": reads, "last": last, "regressions": regressions}))
"""


def _spawn(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_writers_and_a_reader_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.duckdb"
    db = Database(path)
    experiment_id = R.create_experiment(db, R.ExperimentRecord(name="concurrency"))
    stop = tmp_path / "stop"

    reader = _spawn(READER, str(path), experiment_id, str(stop))
    writers = [_spawn(WRITER, str(path), experiment_id, tag, str(RUNS_PER_WRITER), str(GROUP))
               for tag in ("A", "B")]
    outputs = [w.communicate(timeout=900) for w in writers]
    stop.touch()
    reader_out, reader_err = reader.communicate(timeout=120)

    for writer, (out, err) in zip(writers, outputs):
        assert writer.returncode == 0, err
        assert err == ""
        assert json.loads(out) == {"done": RUNS_PER_WRITER}
    assert reader.returncode == 0, reader_err
    assert reader_err == ""
    seen = json.loads(reader_out)
    assert seen["reads"] > 0 and seen["regressions"] == 0

    runs = R.list_runs(db, experiment_id=experiment_id)
    assert len(runs) == 2 * RUNS_PER_WRITER
    assert set(runs["status"]) == {"succeeded"}
    assert runs["id"].is_unique and runs["seq"].is_unique
    assert sorted(runs["seq"]) == list(range(2 * RUNS_PER_WRITER))
    for tag in ("A", "B"):
        mine = runs[runs["gpu"] == tag]
        assert set(mine["clip"]) == {f"{tag}-{i}" for i in range(RUNS_PER_WRITER)}
        assert set(mine["device_name"]) == {tag}
        assert mine["worker_pid"].nunique() == 1
    assert (runs["total_seconds"] == 1.0).all() and (runs["frames_done"] == 10).all()
    counts = R.list_experiments(db).set_index("id").loc[experiment_id]
    assert counts["runs"] == counts["succeeded"] == 2 * RUNS_PER_WRITER


def test_threads_of_one_process_each_get_their_own_cursor(tmp_path: Path) -> None:
    db = Database(tmp_path / "threads.duckdb")
    experiment_id = R.create_experiment(db, R.ExperimentRecord(name="threads"))
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        try:
            for i in range(15):
                (run_id,) = R.add_runs(db, experiment_id, [R.RunSpec(clip=f"{tag}{i}", gpu=tag)])
                R.mark_running(db, run_id)
                R.finish_run(db, run_id, R.RunOutcome(
                    status="succeeded", result=JobResult(job_id=run_id, status="succeeded")))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(30):
                R.list_runs(db, experiment_id=experiment_id)
                R.active_runs(db)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "xyz"] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    runs = R.list_runs(db, experiment_id=experiment_id)
    assert len(runs) == 45 and set(runs["status"]) == {"succeeded"}


def test_a_nested_read_inside_a_write_reuses_the_connection(tmp_path: Path) -> None:
    db = Database(tmp_path / "nested.duckdb")
    experiment_id = R.create_experiment(db, R.ExperimentRecord(name="nested"))

    def inside(con) -> int:
        con.execute("UPDATE experiments SET notes = 'seen' WHERE id = ?", [experiment_id])
        return len(R.list_experiments(db))  # same thread, same file: must not wait for itself

    assert db.write(inside) == 1
    assert R.get_experiment(db, experiment_id).notes == "seen"
