"""Load: a 200-run plan on the local backend (real upscales: animevideov3 with random weights, 3
frames of a 32x32 clip each) completes with every row while two other CLIs read and write the
same database and the dashboard's History page renders. Nothing is lost: every run succeeded with
its output, every import landed whole, and no reader saw the plan go backwards."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from tests.e6_samples import E6_SAMPLE
from tests.reliability.cases import LOAD_CLIENTS, LOAD_RUNS
from tests.reliability.conftest import cli_process, process_env

REPEATS = LOAD_RUNS // 2
PAUSE = 1.0
"""Seconds each client waits between commands (two shared cores: a client in a tight loop of
process start-ups would only measure the machine)."""


def test_200_run_plan_with_two_clis_and_the_dashboard(env, media, tmp_path):
    from store import runs as store_runs
    from store.db import Database
    from tests.ui_helpers import app, assert_no_exception

    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(E6_SAMPLE))
    plan = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--source", str(media / "clip.mp4"), "--clips",
         "a:0:0.1,b:0.1:0.2", "--repeats", str(REPEATS), "--gpus", "cpu", "--model",
         "animevideov3", "--weights", "random", "--json", "--name", "load"],
        cwd=tmp_path, env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()
    seen: list[int] = []
    imports: list[str] = []
    failures: list[str] = []

    def reader() -> None:  # a CLI reading the history over and over
        while not done.is_set():
            outcome = cli_process("history", "--json", "--limit", "50")
            if outcome.code != 0:
                failures.append(outcome.stderr)
                continue
            load = [e for e in json.loads(outcome.stdout)["experiments"] if e["name"] == "load"]
            if load:
                seen.append(sum(r["status"] == "succeeded" for r in load[0]["runs"]))
            done.wait(PAUSE)

    def writer() -> None:  # a CLI importing results files over and over
        while not done.is_set():
            outcome = cli_process("import", sample)
            if outcome.code != 0:
                failures.append(outcome.stderr)
            else:
                imports.append(outcome.stdout.strip())
            done.wait(PAUSE)

    clients = [threading.Thread(target=reader), threading.Thread(target=writer)]
    assert len(clients) == LOAD_CLIENTS
    began = time.monotonic()
    for client in clients:
        client.start()
    renders = 0
    try:
        while plan.poll() is None and renders < 2:  # the dashboard reads too
            time.sleep(5)
            assert_no_exception(app("ui/history_page.py"))
            renders += 1
        out, err = plan.communicate(timeout=600)
    finally:
        done.set()
        for client in clients:
            client.join(timeout=120)
    elapsed = time.monotonic() - began
    assert plan.returncode == 0, err[-2000:]
    assert not failures, failures[:3]

    result = json.loads(out)
    db = Database(env)
    runs = store_runs.list_runs(db, experiment_id=result["experiment_id"])
    assert len(runs) == LOAD_RUNS and runs["id"].is_unique
    assert set(runs["status"]) == {"succeeded"} and (runs["frames_out"] == 3).all()
    outputs = list((env.parent / "objects" / "bench" / "outputs" / result["experiment_id"]).iterdir())
    assert len(outputs) == LOAD_RUNS
    assert imports and len(seen) >= 2 and seen == sorted(seen)  # readers never saw it go back
    for experiment_id in imports:
        assert len(store_runs.list_runs(db, experiment_id=experiment_id)) == len(E6_SAMPLE["results"])
    assert len(store_runs.list_experiments(db)) == 1 + len(imports)
    print(f"load: {LOAD_RUNS} runs in {elapsed:.0f} s with {len(seen)} history reads, "
          f"{len(imports)} imports and {renders} dashboard renders alongside")
