"""The estimate before a plan runs (bench.estimate, `python -m bench estimate`, `run --max-cost`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cards import speed_ratio
from bench.estimate import (
    ASSUMED_MODAL_STARTUP_SECONDS,
    SCALED_SPREAD,
    MeasuredRun,
    check_cap,
    estimate_plan,
)
from bench.plan import build_plan
from bench.pricing import DEFAULT_PRICES, run_cost, run_rates
from core.errors import InputError
from store import runs as store_runs
from store.db import Database

ROOT = Path(__file__).resolve().parents[1]
E6_FILE = ROOT / "examples" / "e6-original-t4-l4.json"


def plan(gpus: str = "T4,L4,H100", **more):
    fields = dict(backend="modal", gpus=gpus, source="u/src.mp4", clips="short:0:2,long:0:10",
                  model="x4plus", engine="fast", fps=10.0, output_width=640, output_height=480)
    return build_plan(None, **{**fields, **more})


def run_of(card: str, frames: int, seconds: float, startup: float | None = None,
           **more) -> MeasuredRun:
    fields = dict(card=card, model="x4plus", engine="fast", precision="fp16", output=(640, 480),
                  frames=frames, job_seconds=seconds, startup_seconds=startup)
    fields.update(more)
    return MeasuredRun(**fields)


# L4: 2 s + 0.1 s/frame, twice each length (0.9x and 1.1x of the line at 100 frames).
HISTORY = [run_of("L4", 20, 4.0, startup=30.0), run_of("L4", 100, 10.8), run_of("L4", 100, 13.2),
           run_of("L4", 20, 4.0),
           # another shape and another model on T4: never a measurement of this plan
           run_of("T4", 20, 99.0, output=(320, 240)), run_of("T4", 20, 99.0, model="x2plus")]


def test_the_three_bases():
    estimate = estimate_plan(plan(), HISTORY, DEFAULT_PRICES)
    by = {c.candidate: c for c in estimate.candidates}
    l4 = {c.clip: c for c in by["L4"].clips}
    assert l4["long"].basis == "measured"
    assert l4["long"].seconds == pytest.approx(12.0)  # the fit at 100 frames
    assert l4["long"].seconds_low == pytest.approx(12.0 * 0.9)  # the runs' spread about it
    assert l4["long"].seconds_high == pytest.approx(12.0 * 1.1)
    rates = run_rates(DEFAULT_PRICES, DEFAULT_PRICES.rate("L4"), False)
    assert l4["long"].cost == pytest.approx(run_cost(12.0, rates.card))
    assert l4["long"].cost_all_in == pytest.approx(run_cost(12.0, rates.all_in))

    h100 = {c.clip: c for c in by["H100"].clips}["long"]  # measured only on the L4
    assert h100.basis == "scaled"
    assert h100.seconds == pytest.approx(12.0 / speed_ratio("L4", "H100"))
    assert h100.seconds_low == pytest.approx(h100.seconds / SCALED_SPREAD)
    assert h100.seconds_high >= 12.0  # never promised faster than the card it was measured on

    t4 = {c.clip: c for c in by["T4"].clips}["long"]  # the T4 runs are of another shape
    assert t4.basis == "scaled"
    none = estimate_plan(plan(model="x2plus"), HISTORY[:4], DEFAULT_PRICES)
    assert {c.basis for cand in none.candidates for c in cand.clips} == {"none"}
    assert none.total_cost is None and none.total_cost_high is None
    assert "no estimate for T4 on short" in none.summary()


def test_the_bill_follows_reuse_and_history_start_up():
    sequential = estimate_plan(plan("L4", repeats=2), HISTORY, DEFAULT_PRICES).candidates[0]
    bill = sequential.bill
    assert (bill.runs, bill.containers) == (4, 1)
    assert (bill.startup_seconds, bill.startup_basis) == (30.0, "measured")
    assert bill.tail_seconds == 120.0
    rate = run_rates(DEFAULT_PRICES, DEFAULT_PRICES.rate("L4"), False).all_in
    steady = 2 * sum(c.cost_all_in for c in sequential.clips)
    assert bill.cost == pytest.approx(steady + (30.0 + 120.0) * rate)
    assert bill.cost_high > bill.cost

    parallel = estimate_plan(plan("H100", repeats=2, container_reuse="parallel"), HISTORY,
                             DEFAULT_PRICES).candidates[0].bill
    assert parallel.containers == 4  # every run its own cold container and tail
    assert parallel.startup_basis == "other card"

    unknown = estimate_plan(plan("H100"), [run_of("L4", 20, 4.0)], DEFAULT_PRICES)
    assert unknown.candidates[0].bill.startup_seconds == ASSUMED_MODAL_STARTUP_SECONDS
    assert unknown.candidates[0].bill.startup_basis == "assumed"


def test_check_cap_refuses_the_high_end_and_the_unknown():
    estimate = estimate_plan(plan("L4"), HISTORY, DEFAULT_PRICES)
    check_cap(estimate, estimate.total_cost_high + 0.01)
    with pytest.raises(InputError, match="may cost more than --max-cost"):
        check_cap(estimate, estimate.total_cost_high * 0.99)
    with pytest.raises(InputError, match="cannot be checked"):
        check_cap(estimate_plan(plan(model="x2plus"), HISTORY[:4], DEFAULT_PRICES), 100.0)


def bench(*args: str, env_db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args, "--db", str(env_db)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture()
def e6_db(tmp_path: Path) -> Path:
    db = tmp_path / "bench.duckdb"
    proc = subprocess.run([sys.executable, "-m", "bench", "import", str(E6_FILE), "--db", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return db


def test_an_imported_file_is_measured_within_15_percent(e6_db: Path):
    proc = bench("estimate", "--preset", "e6", "--gpus", "T4,L4,H200", "--json", env_db=e6_db)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"candidates", "total_cost", "total_cost_high"}
    measured = {(r["gpu"], r["clip"]): r["elapsed"]
                for r in json.loads(E6_FILE.read_text())["results"]}
    for candidate in out["candidates"]:
        assert set(candidate) == {"candidate", "clips", "bill"}
        for clip in candidate["clips"]:
            assert set(clip) == {"clip", "seconds", "seconds_low", "seconds_high", "cost",
                                 "cost_all_in", "basis"}
            if candidate["candidate"] == "H200":
                assert clip["basis"] == "scaled"  # never presented as measured
                continue
            actual = measured[(candidate["candidate"], clip["clip"])]
            assert clip["basis"] == "measured"
            assert clip["seconds"] == pytest.approx(actual, rel=0.15)
            assert clip["seconds_low"] <= clip["seconds"] <= clip["seconds_high"]
    assert out["total_cost_high"] > out["total_cost"] > 0


def test_max_cost_refuses_before_anything_is_stored(e6_db: Path):
    db = Database(e6_db)
    before = len(store_runs.list_experiments(db))
    proc = bench("run", "--preset", "e6", "--max-cost", "0.05", env_db=e6_db)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--max-cost $0.05" in lines[0] and "estimated (up to $" in lines[0]
    assert "Traceback" not in proc.stderr
    assert len(store_runs.list_experiments(db)) == before

    proc = bench("run", "--max-cost", "10", env_db=e6_db)  # the demo: nothing measured yet
    assert proc.returncode == 2 and "cannot be checked" in proc.stderr
    assert len(store_runs.list_experiments(db)) == before


def test_max_cost_on_a_fresh_database_creates_nothing(tmp_path: Path):
    db = tmp_path / "fresh.duckdb"
    proc = bench("run", "--max-cost", "10", env_db=db)
    assert proc.returncode == 2 and "no estimate for cpu · reference on 0.3s" in proc.stderr
    assert not db.exists()


def test_the_estimate_is_stored_with_the_experiment_and_checked_against_its_runs(tmp_path: Path):
    from bench.estimate import PLAN_KEY, estimate_checks
    from bench.experiments import plan_dict, plan_of
    from bench.orchestrator import create_experiment
    from ui.estimate_view import checks_table

    the_plan = plan("L4")
    estimate = estimate_plan(the_plan, HISTORY, DEFAULT_PRICES)
    db = Database(tmp_path / "b.duckdb")
    experiment_id, run_ids = create_experiment(db, the_plan, "u/src.mp4", DEFAULT_PRICES, None,
                                               estimate)
    experiment = store_runs.get_experiment(db, experiment_id)
    stored = plan_dict(experiment)[PLAN_KEY]
    assert stored == json.loads(json.dumps(estimate.to_dict()))
    assert plan_of(experiment) == the_plan  # the plan still reads back as it was

    long_clip = {c.clip: c for c in estimate.candidates[0].clips}["long"]
    runs = [{"candidate": "L4", "clip": "long", "status": "succeeded", "job_seconds": 15.0,
             "cost_all_in": 0.01},
            {"candidate": "L4", "clip": "short", "status": "failed", "job_seconds": None}]
    (check,) = estimate_checks(stored, runs)
    assert check.runs == 1 and check.basis == "measured"
    assert check.error == pytest.approx(long_clip.seconds / 15.0 - 1)
    assert check.cost_error == pytest.approx(long_clip.cost_all_in / 0.01 - 1)
    table = checks_table(plan_dict(experiment), runs)
    assert list(table["Time error"]) == [f"{long_clip.seconds / 15.0 - 1:+.0%}"]
    assert checks_table({}, runs).empty  # experiments from before the estimate


def test_clips_past_the_sources_end_are_refused_before_any_worker_starts(tmp_path: Path):
    db = tmp_path / "b.duckdb"
    # the demo source is 1.5 s long: a clip to 3 s fails on this machine, not in a container
    proc = bench("run", "--source", "demo", "--gpus", "cpu", "--clips", "late:1:3",
                 "--model", "animevideov3", "--weights", "random", env_db=db)
    assert proc.returncode == 2, proc.stderr
    assert "clip late ends at 3 s, past the end of the source (1.5 s)" in proc.stderr
    runs = store_runs.list_runs(Database(db))
    assert list(runs["status"]) == ["failed"] and runs["started_at"].isna().all()
