"""Faults injected into real processes: a worker or its parent killed, a full disk, unreachable
storage, a database held by another process, the dashboard or the executor restarted mid-experiment,
and the creating process killed before any run was claimed. After each: one line where a user sees
something, every run row present and final (nothing queued forever), nothing run twice, no output
uploaded for a run that did not succeed. Each fault in cases.FAULTS has its test_fault_<name> here."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.e6_samples import E6_SAMPLE
from tests.reliability.conftest import cli, process_env

PLAN = ("--gpus", "cpu", "--model", "animevideov3", "--weights", "random")


def wait_for(predicate, timeout: float, step: float = 0.05):
    """predicate()'s first truthy value within timeout seconds (else fails the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"timed out after {timeout} s waiting for {predicate.__doc__ or predicate}")


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting to be reaped does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def runs_of(db_path: Path, experiment_id: str | None = None):
    from store import runs as store_runs
    from store.db import Database

    return store_runs.list_runs(Database(db_path), experiment_id=experiment_id)


def only_experiment(db_path: Path) -> str | None:
    from store import runs as store_runs
    from store.db import Database

    ids = list(store_runs.list_experiments(Database(db_path))["id"])
    return ids[0] if len(ids) == 1 else None


def output_path(data: Path, experiment_id: str, run_id: str) -> Path:
    return data / "objects" / "bench" / "outputs" / experiment_id / f"{run_id}.mp4"


@pytest.fixture(autouse=True)
def reap():
    """Processes a test starts, killed (by pid) if the test leaves them running."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_cli_run(env_db: Path, media: Path, clips: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", "run", "--source", str(media / "long.mp4"),
                             "--clips", clips, *PLAN, "--json"], cwd=env_db.parent.parent,
                            env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def running_run(db_path: Path, stages: tuple[str, ...]):
    """The first run of the only experiment that is running in one of `stages`, else None."""
    if not db_path.exists() or only_experiment(db_path) is None:
        return None
    runs = runs_of(db_path)
    busy = runs[(runs["status"] == "running") & runs["progress_stage"].isin(stages)
                & runs["worker_pid"].notna()]
    return None if busy.empty else busy.iloc[0].to_dict()


def test_fault_worker_sigkill(env, media, reap):
    """A worker killed mid-job: its run fails within seconds with the reason, the plan goes on."""
    proc = start_cli_run(env, media, "a:0:12,b:0:0.3")
    reap.append(proc)
    run = wait_for(lambda: running_run(env, ("decode", "upscale")), 120)
    os.kill(int(run["worker_pid"]), signal.SIGKILL)
    killed_at = datetime.now(timezone.utc).replace(tzinfo=None)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    runs = runs_of(env).set_index("clip")
    assert runs.loc["a", "status"] == "failed" and "died" in runs.loc["a", "error"]
    assert (runs.loc["a", "finished_at"] - killed_at).total_seconds() < 5
    assert runs.loc["b", "status"] == "succeeded"
    assert json.loads(out)["runs"][0]["status"] == "failed"
    assert not output_path(env.parent, runs.loc["a", "experiment_id"], runs.loc["a", "id"]).exists()


def test_fault_parent_sigkill(env, media, reap):
    """The CLI (the workers' parent) killed mid-job: the worker stops within 2 s, uploads
    nothing, and every run ends interrupted instead of queued or running forever."""
    proc = start_cli_run(env, media, "a:0:12,b:0:0.3")
    reap.append(proc)
    run = wait_for(lambda: running_run(env, ("upscale",)), 120)
    worker = int(run["worker_pid"])
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    killed = time.monotonic()
    wait_for(lambda: not alive(worker), 2.0, step=0.02)
    assert time.monotonic() - killed < 2.0
    time.sleep(0.5)  # an upload, had one been made, would have landed by now
    assert not output_path(env.parent, run["experiment_id"], run["id"]).exists()
    outcome = cli("history", "--json")
    runs = {r["clip"]: r for r in json.loads(outcome.stdout)["experiments"][0]["runs"]}
    assert runs["a"]["status"] == "interrupted" and str(worker) in runs["a"]["error"]
    assert runs["b"]["status"] == "interrupted" and "never started" in runs["b"]["error"]


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _disk_full_story(env_db: Path, media: Path, fill, free) -> None:
    """Store an import, fill the disk, check refusals are one line and nothing is lost, free the
    disk, check later writes work (an import and a whole run)."""
    sample = env_db.parent.parent / "sample.json"
    sample.write_text(json.dumps(E6_SAMPLE))
    assert cli("import", sample).code == 0
    before = cli("history", "--json").stdout
    fill()
    for argv in (("import", sample),
                 ("run", "--source", media / "clip.mp4", "--clips", "a:0:0.3", *PLAN)):
        outcome = cli(*argv)
        assert outcome.code == 2, outcome.stderr
        assert "full" in outcome.one_line_error() or "No space" in outcome.stderr
    assert cli("history", "--json").stdout == before  # what was stored is intact
    free()
    assert cli("import", sample).code == 0
    ran = cli("run", "--source", media / "clip.mp4", "--clips", "a:0:0.3", *PLAN, "--json")
    assert ran.code == 0, ran.stderr
    statuses = [r["status"] for e in json.loads(cli("history", "--json").stdout)["experiments"]
                for r in e["runs"]]
    assert "queued" not in statuses and "running" not in statuses
    assert statuses.count("succeeded") >= 2 * 6 + 1


def test_fault_disk_full_tmpfs(tmp_path, monkeypatch, media):
    """A real full disk: BENCH_DATA_DIR on a 3 MB tmpfs (needs root; else see the injected test)."""
    from tests.ui_helpers import isolate_env

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root); test_fault_disk_full_injected covers it")
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("BENCH_OFFLINE", "1")
        db = isolate_env(monkeypatch, mount)
        filler: list[Path] = []

        def free() -> None:  # delete the filler and grow the disk: 3 MB barely holds a database
            filler.pop().unlink()
            subprocess.run(["mount", "-o", "remount,size=32m", str(mount)], check=True)

        _disk_full_story(db, media, fill=lambda: filler.append(_fill(mount)), free=free)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_fault_disk_full_injected(env, media, monkeypatch):
    """The same story with ENOSPC injected where the disk is written: DuckDB's commits and
    checkpoints, and object copies."""
    import duckdb

    import core.atomic
    import store.db

    full = {"on": False}
    enospc = 'IO Error: Could not write file "bench.duckdb.wal": No space left on device'

    class FullDiskCursor:
        def __init__(self, cursor):
            self._cursor = cursor

        def execute(self, sql, *args):
            words = sql.split()
            if full["on"] and words and words[0] in ("COMMIT", "DETACH"):
                # DuckDB's own behaviour: a commit that cannot reach the log is rolled back; a
                # detach whose checkpoint finds no room still detaches, then raises.
                self._cursor.execute("ROLLBACK" if words[0] == "COMMIT" else sql, *args)
                raise duckdb.IOException(enospc)
            return self._cursor.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._cursor, name)

    real_cursor, real_copy = store.db._Host.cursor, core.atomic.shutil.copyfile

    def copyfile(src, dst, *args, **kwargs):
        if full["on"] or full.get("objects"):
            Path(dst).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(store.db._Host, "cursor", lambda self: FullDiskCursor(real_cursor(self)))
    monkeypatch.setattr(core.atomic.shutil, "copyfile", copyfile)
    # First only the object store is full: the runs are stored, failed with the reason.
    full["objects"] = True
    outcome = cli("run", "--source", media / "clip.mp4", "--clips", "a:0:0.3,b:0.3:0.6", *PLAN)
    assert outcome.code == 2 and "No space left on device" in outcome.one_line_error()
    runs = runs_of(env)
    assert len(runs) == 2 and set(runs["status"]) == {"failed"}
    assert all("No space left on device" in error for error in runs["error"])
    full["objects"] = False
    _disk_full_story(env, media, fill=lambda: full.update(on=True),
                     free=lambda: full.update(on=False))
    assert not list(env.parent.rglob("*.part"))  # no partial copy left looking like an object


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fault_storage_unreachable(env, media, monkeypatch):
    """R2 configured but unreachable: bounded retries, then the runs are stored failed with the
    reason, in one line, with no credential anywhere."""
    secret = "planted-r2-secret-0123456789"
    monkeypatch.setenv("R2_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("R2_BUCKET", "bench")
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "planted-key-id")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", secret)
    began = time.monotonic()
    outcome = cli("run", "--source", media / "clip.mp4", "--clips", "a:0:0.3,b:0.3:0.6", *PLAN)
    assert time.monotonic() - began < 30
    assert outcome.code == 2 and "cannot reach the R2 endpoint" in outcome.one_line_error()
    runs = runs_of(env)
    assert set(runs["status"]) == {"failed"} and all("R2 endpoint" in e for e in runs["error"])
    assert secret not in outcome.stderr + outcome.stdout + str(runs.to_dict())


HOLDER = """
import sys, time
from store.db import Database
db = Database(sys.argv[1])
with db.connect():
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(db_path: Path, seconds: float) -> subprocess.Popen:
    from store.db import Database

    Database(db_path)  # created and migrated first
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path), str(seconds)],
                              env=process_env(), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_fault_database_held(env, tmp_path, reap):
    """Another process holds the database: a write waits and lands."""
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(E6_SAMPLE))
    holder = _hold(env, 2.0)
    reap.append(holder)
    began = time.monotonic()
    outcome = cli("import", sample)
    assert outcome.code == 0, outcome.stderr
    assert time.monotonic() - began > 0.5  # it waited for the holder
    holder.wait(timeout=30)
    assert len(runs_of(env, outcome.stdout.strip())) == len(E6_SAMPLE["results"])


def test_fault_database_held_past_timeout(env, reap):
    """Held longer than the wait allows: one line that names the file, nothing half-written."""
    from core.errors import StorageError
    from store import runs as store_runs
    from store.db import Database

    holder = _hold(env, 1.5)
    reap.append(holder)
    with pytest.raises(StorageError, match="stayed locked") as caught:
        store_runs.create_experiment(Database(env, timeout=0.5),
                                     store_runs.ExperimentRecord(name="late"))
    assert "\n" not in str(caught.value) and str(env) in str(caught.value)
    holder.wait(timeout=30)
    assert store_runs.list_experiments(Database(env)).empty


DASHBOARD = """
import sys, time
from pathlib import Path
from bench.orchestrator import create_experiment, launch_detached, prepare_source
from bench.plan import build_plan
from store.config import load_storage_config
from store.db import Database
from store.objects import open_object_store

db_path, source, mode, clips, repeats = Path(sys.argv[1]), *sys.argv[2:6]
plan = build_plan(None, source=source, clips=clips, gpus="cpu", model="animevideov3",
                  weights="random", repeats=int(repeats))
key = prepare_source(plan.source, open_object_store(load_storage_config()))
experiment_id, _ = create_experiment(Database(db_path), plan, key)
pid = launch_detached(db_path, experiment_id) if mode == "launch" else 0
print(experiment_id, pid, flush=True)
time.sleep(600)
"""


def _dashboard(env_db: Path, media: Path, mode: str, clips: str = "a:0:0.3,b:0.3:0.6",
               repeats: int = 2, source: str = "clip.mp4") -> tuple[subprocess.Popen, str, int]:
    """A process doing what the Run page does on launch (store the runs, start the executor) that
    then waits to be killed; returns it, the experiment id and the executor's pid."""
    proc = subprocess.Popen([sys.executable, "-c", DASHBOARD, str(env_db), str(media / source),
                             mode, clips, str(repeats)], cwd=env_db.parent.parent,
                            env=process_env(), stdout=subprocess.PIPE, text=True)
    experiment_id, pid = proc.stdout.readline().split()
    return proc, experiment_id, int(pid)


def _settled(env_db: Path, experiment_id: str, count: int) -> None:
    """Every run present once, final, and with an output exactly when it succeeded."""
    runs = runs_of(env_db, experiment_id)
    assert len(runs) == count and runs["id"].is_unique
    assert set(runs["status"]) <= {"succeeded", "interrupted"}, runs[["status", "error"]]
    for run in runs.itertuples():
        assert output_path(env_db.parent, experiment_id, run.id).exists() == (run.status == "succeeded")


def test_fault_dashboard_restarted(env, media, reap):
    """The dashboard dies right after launching an experiment and comes back: the executor it
    started owns the runs, so the new dashboard's recovery leaves them be, and all complete."""
    from bench.liveness import recover_gone_runs
    from store.db import Database

    dashboard, experiment_id, executor = _dashboard(env, media, "launch")
    reap.append(dashboard)
    dashboard.kill()
    dashboard.wait()
    assert recover_gone_runs(Database(env)) == 0  # what the restarted Run page does
    wait_for(lambda: not alive(executor), 120, step=0.2)
    _settled(env, experiment_id, 4)
    assert set(runs_of(env, experiment_id)["status"]) == {"succeeded"}


def test_fault_executor_restarted(env, media, reap):
    """The background executor is killed mid-experiment and started again: its running run is
    marked interrupted (nothing uploaded for it), the rest run once, none is lost or doubled."""
    from bench.liveness import recover_gone_runs
    from bench.orchestrator import launch_detached
    from store.db import Database

    dashboard, experiment_id, executor = _dashboard(env, media, "launch", "a:0:8,b:0:0.3", 1,
                                                    "long.mp4")
    reap.append(dashboard)
    run = wait_for(lambda: running_run(env, ("decode", "upscale")), 120)
    worker = int(run["worker_pid"])
    os.kill(executor, signal.SIGKILL)
    wait_for(lambda: not alive(worker), 2.0, step=0.02)
    second = launch_detached(env, experiment_id)
    recover_gone_runs(Database(env))
    wait_for(lambda: not alive(second), 120, step=0.2)
    recover_gone_runs(Database(env))
    dashboard.kill()
    dashboard.wait()
    _settled(env, experiment_id, 2)
    assert runs_of(env, experiment_id).set_index("id").loc[run["id"], "status"] == "interrupted"


def test_fault_creator_killed_before_claim(env, media, reap):
    """The process that stored the runs dies before any executor claimed them: they end
    interrupted ('never started'), not queued forever, and a later execute runs none twice."""
    dashboard, experiment_id, _ = _dashboard(env, media, "create-only")
    reap.append(dashboard)
    dashboard.kill()
    dashboard.wait()
    history = cli("history", "--json")
    runs = json.loads(history.stdout)["experiments"][0]["runs"]
    assert {r["status"] for r in runs} == {"interrupted"}
    assert all("never started" in r["error"] for r in runs)
    assert cli("execute", experiment_id).code == 1  # nothing left to run; the runs did not succeed
    _settled(env, experiment_id, 4)


def test_fault_interrupted_before_upload(env, media, tmp_path):
    """A job whose requester is gone by the time it would upload uploads nothing."""
    from core.job import Job
    from store.objects import LocalDirectoryStore
    from workers.pipeline import run_job

    storage = LocalDirectoryStore(tmp_path / "objects")
    storage.put(media / "clip.mp4", "u/clip.mp4")
    job = Job(job_id="j", user_id="u", input_key="clip.mp4", output_key="out.mp4",
              model="animevideov3", weights="random", device="cpu", fps=10.0,
              trim_start=0.0, trim_end=0.3)
    result = run_job(job, storage, still_wanted=lambda: False)
    assert result.status == "failed" and "nothing was uploaded" in result.error
    assert not storage.exists("u/out.mp4") and result.output_key is None


def test_fault_held_by_another_executor(env, media, reap):
    """`execute` while another live process executes the experiment: one line saying that
    process holds the runs (exit 2), nothing run twice, and the holder finishes them all."""
    dashboard, experiment_id, executor = _dashboard(env, media, "launch", "a:0:4,b:0:0.3", 1,
                                                    "long.mp4")
    reap.append(dashboard)
    wait_for(lambda: running_run(env, ("model_load", "decode", "upscale")), 300)
    outcome = cli("execute", experiment_id)
    assert outcome.code == 2, (outcome.code, outcome.stdout, outcome.stderr)
    line = outcome.one_line_error()
    assert "another live process" in line and f"{executor}@" in line, line
    wait_for(lambda: not alive(executor), 300, step=0.2)
    dashboard.kill()
    dashboard.wait()
    _settled(env, experiment_id, 2)
    assert set(runs_of(env, experiment_id)["status"]) == {"succeeded"}


def _full_after_first_run(monkeypatch, commits: int | None):
    """Make the database's disk full once the first run's result is stored: the next `commits`
    COMMITs fail as DuckDB fails them with no room (None: every one until the test frees it)."""
    import duckdb

    import bench.orchestrator
    import store.db

    full = {"left": 0}
    enospc = 'IO Error: Could not write file "bench.duckdb.wal": No space left on device'

    class FullDiskCursor:
        def __init__(self, cursor):
            self._cursor = cursor

        def execute(self, sql, *args):
            if full["left"] and sql.split()[:1] == ["COMMIT"]:
                full["left"] -= 1
                self._cursor.execute("ROLLBACK")
                raise duckdb.IOException(enospc)
            return self._cursor.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._cursor, name)

    real_cursor, real_finished = store.db._Host.cursor, bench.orchestrator.StoreSink.finished

    def finished(self, outcome):
        real_finished(self, outcome)
        if not full.get("done"):
            full.update(done=True, left=commits if commits is not None else 10**9)

    monkeypatch.setattr(store.db._Host, "cursor", lambda self: FullDiskCursor(real_cursor(self)))
    monkeypatch.setattr(bench.orchestrator.StoreSink, "finished", finished)
    return full


@pytest.mark.parametrize("lasting", [False, True], ids=["one-write", "until-freed"])
def test_fault_disk_full_mid_run(env, media, monkeypatch, lasting):
    """The disk fills up after the first run is stored: the error says what was kept (the
    experiment and each run's state) instead of "nothing was stored"; the unfinished runs are
    stored failed with the reason where the disk lets them, and otherwise the line says they were
    not (they then read as interrupted)."""
    full = _full_after_first_run(monkeypatch, None if lasting else 1)
    outcome = cli("run", "--source", media / "clip.mp4", "--clips", "a:0:0.3,b:0.3:0.6,c:0.6:0.9",
                  *PLAN, "--json")
    full["left"] = 0
    assert outcome.code == 2, (outcome.code, outcome.stderr)
    line = outcome.one_line_error()
    experiment_id = only_experiment(env)
    assert "nothing was stored" not in line and "full" in line
    assert f"experiment {experiment_id} is kept with its 3 run(s)" in line and "1 succeeded" in line
    if lasting:  # what a later process sees once this one (which answers for them) is gone
        from store import runs as store_runs
        from store.db import Database

        store_runs.recover_interrupted(Database(env), lambda run: False)
    history = {r["clip"]: r for r in json.loads(cli("history", "--json").stdout)["experiments"][0]["runs"]}
    assert history["a"]["status"] == "succeeded"
    if lasting:
        assert "could not be marked failed" in line
        assert {history[c]["status"] for c in "bc"} == {"interrupted"}
    else:
        assert "stored failed with this reason" in line
        assert {history[c]["status"] for c in "bc"} == {"failed"}
        assert all("full" in history[c]["error"] for c in "bc")


BUG_WITHOUT_LOGS = """
import sys
import bench.commands.history_cmd as history
history.render = lambda data: 1 / 0  # a planted bug
from bench.__main__ import main
sys.exit(main(["history"]))
"""


def test_fault_logs_unwritable_during_a_bug(env, tmp_path):
    """A bug while data/logs cannot be created (the data folder is a file): still one line and
    exit 3, not a double traceback."""
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(E6_SAMPLE))
    assert cli("import", sample).code == 0
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the data folder should be")
    done = subprocess.run([sys.executable, "-c", BUG_WITHOUT_LOGS], capture_output=True, text=True,
                          env=process_env(BENCH_DATA_DIR=str(blocked)), timeout=120)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "ZeroDivisionError" in done.stderr


def test_every_fault_has_its_test():
    from tests.reliability.cases import FAULTS

    names = {name for name in globals() if name.startswith("test_fault_")}
    assert names == {f"test_fault_{fault}" for fault in FAULTS}


