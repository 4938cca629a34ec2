"""One answer: a run's seconds, fps and cost, each candidate's per-clip time and cost, the bill and
the verdict are the same numbers in every view (the CLI's table, `run --json`, `history`, both
exports, Compare's analysis, History, Run detail and the live view).

Experiments are generated (hypothesis): 1-3 candidates (devices, engine variants), repeats, cold
and warm runs, failures, local and Modal results, each finished through the orchestrator's own
StoreSink (Modal results through bench.backends.modal_results), so the store holds what a real
run leaves.
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bench.backends.base import Finished
from bench.backends.modal_results import finished_from_result
from bench.commands.history_cmd import render
from bench.escape import page_text
from bench.experiments import (
    analyse_experiment,
    experiment_bill_in,
    history_with_figures,
    load_experiment,
    read_runs,
    read_runs_in,
    run_titles,
)
from bench.formatting import format_cost, format_seconds
from bench.orchestrator import StoreSink
from bench.plan import build_plan
from bench.pricing import DEFAULT_PRICES
from bench.report import export_experiment, run_summaries
from core.job import JobResult
from core.stages import startup_seconds
from store import runs as store_runs
from store.db import Database
from ui import history_view, live_run, run_detail_view

CLIPS = (("1s", 0.0, 1.0, 30), ("2s", 0.0, 2.0, 60))

@st.composite
def experiments(draw):
    """(backend, candidates [(device, engine)], repeats, per-run draws)."""
    backend = draw(st.sampled_from(["local", "modal"]))
    if backend == "local":
        candidates = draw(st.sampled_from([[("cpu", "reference"), ("cpu", "fast")],
                                           [("cpu", "fast")]]))
    else:
        gpus = draw(st.lists(st.sampled_from(["T4", "L4", "A10"]), min_size=1, max_size=3,
                             unique=True))
        candidates = [(g, "fast") for g in gpus]
    repeats = draw(st.integers(1, 2))
    n = len(candidates) * len(CLIPS) * repeats
    runs = draw(st.lists(st.fixed_dictionaries({
        "seconds": st.floats(0.5, 30.0), "load": st.sampled_from([0.0, 0.0, 2.5]),
        "fidelity": st.floats(0.0, 2.0), "boot": st.floats(0.5, 20.0),
        "failed": st.sampled_from([False, False, False, True])}), min_size=n, max_size=n))
    return backend, candidates, repeats, runs


def _store(db: Database, backend: str, candidates, repeats: int, draws) -> str:
    """An experiment whose runs finished through the orchestrator's StoreSink."""
    engines = sorted({e for _, e in candidates})
    gpus = list(dict.fromkeys(d for d, _ in candidates))
    plan = build_plan("demo", backend=backend, gpus=",".join(gpus),
                      clips=",".join(f"{n}:{a}:{b}" for n, a, b, _ in CLIPS),
                      engine=",".join(engines), repeats=repeats)
    experiment_id = store_runs.create_experiment(db, store_runs.ExperimentRecord(
        name="gen", backend=backend, plan_json=plan.to_dict(),
        price_table_json=DEFAULT_PRICES.to_dict(), price_table_date=DEFAULT_PRICES.date))
    specs = [store_runs.RunSpec(clip=name, gpu=device, clip_start=a, clip_end=b,
                                frames_expected=frames, repeat_index=r,
                                price_gpu=device if backend == "modal" else None, engine=engine)
             for r in range(repeats) for name, a, b, frames in CLIPS
             for device, engine in candidates]
    ids = store_runs.add_runs(db, experiment_id, specs)
    sink = StoreSink(db, DEFAULT_PRICES)
    clock = 1_900_000_000.0
    containers: dict[str, tuple[str, float]] = {}
    for run_id, spec, draw in zip(ids, specs, draws):
        key = f"{spec.gpu}/{spec.engine}" if backend == "modal" else spec.gpu
        cold = key not in containers
        if cold:
            containers[key] = (f"ta-{uuid.uuid4().hex[:6]}", clock)
            clock += draw["boot"]
        container, booted = containers[key]
        total = draw["seconds"] + draw["load"]
        status = "failed" if draw["failed"] else "succeeded"
        frames = 0 if draw["failed"] else spec.frames_expected
        result = JobResult(
            job_id=run_id, status=status, error="boom" if draw["failed"] else None,
            stages={"fetch": 0.1, "model_load": draw["load"], "upscale": draw["seconds"] * 0.8,
                    "fidelity": draw["fidelity"], "total": total},
            frames_in=frames, frames_out=frames, device_name="NVIDIA " + spec.gpu
            if backend == "modal" else "AMD EPYC", engine=spec.engine, model="animevideov3",
            cpu_cores=4.0, container_id=container, worker_started_at=booted, started_at=clock,
            finished_at=clock + total + draw["fidelity"])
        clock += total + draw["fidelity"] + 0.5
        if backend == "modal":
            facts = {"container_started_at": booted, "container_booted_at": booted,
                     "cold": cold, "cpu_request": 4.0, "memory_request_gib": 16.0,
                     "cpu_used_cores": 1.5, "peak_memory_gib": 3.0}
            finished = finished_from_result(run_id, {**result.to_dict(), **facts}, None)
        else:
            before = result.started_at - booted if cold else 0.0
            finished = Finished(run_id=run_id, result=result, client_wall_seconds=total + 1.0,
                                cold=cold, startup_seconds=startup_seconds(result.stages, before))
        sink.finished(finished)
    return experiment_id


def _per_clip_from_md(md: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(clip, candidate) -> (job time, GPU cost) as the markdown findings' table writes them."""
    out = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 11 and cells[0] not in ("Clip", "---"):
            candidate = cells[2].replace(" **(cheapest)**", "").replace("\\", "")
            out[(cells[0], candidate)] = (cells[4], cells[7])
    return out


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.generate])
@given(experiments())
def test_every_view_gives_the_same_numbers_and_verdict(generated) -> None:
    backend, candidates, repeats, draws = generated
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.duckdb")
        experiment_id = _store(db, backend, candidates, repeats, draws)
        experiment = load_experiment(db, experiment_id)
        analysis, why, runs = analyse_experiment(db, experiment_id)
        read = {r["id"]: r for r in
                read_runs(store_runs.list_runs(db, experiment_id=experiment_id), experiment)}
        assert list(runs["id"]) == list(read)

        # Each run: one job seconds, fps and cost in every view.
        cli = {r["id"]: r for r in run_summaries(db, experiment_id)}
        hist = {r["id"]: r for e in history_with_figures(db)["experiments"] for r in e["runs"]}
        export = json.loads(json.dumps(export_experiment(db, experiment_id, "json")))
        exported = {r["run_id"]: r for r in export["bench"]["runs"]}
        by_title = read_runs_in(db, store_runs.list_runs(db, experiment_id=experiment_id))
        display = history_view.runs_display(by_title)
        display.index = list(by_title["id"])
        titles = run_titles(by_title)
        for run_id, run in read.items():
            for view in (cli, hist, exported):
                assert view[run_id]["job_seconds"] == run["job_seconds"]
                assert view[run_id]["fps"] == run["fps"]
                assert view[run_id]["cost"] == run["cost"]
                assert view[run_id]["candidate"] == run["candidate"]
            if run["status"] == "succeeded":
                assert run["fps"] == run["frames_out"] / run["job_seconds"]
                # the job's clock leaves out model load and the measurement stage
                assert run["job_seconds"] == run["total_seconds"] - run["model_load_seconds"]
            row = display.loc[run_id]
            assert row[history_view.JOB_TIME] == run["job_seconds"] or (
                run["job_seconds"] is None and row[history_view.JOB_TIME] != row[history_view.JOB_TIME])
            assert row["GPU cost"] == format_cost(run["cost"])
            progress = live_run.progress_row(run, titles[run_id]).text
            if run["status"] == "succeeded":  # the progress line is Markdown, its words escaped
                assert page_text(format_seconds(run["job_seconds"])) in progress
                assert page_text(format_cost(run["cost"])) in progress
            facts = dict(run_detail_view.run_facts(run).values.tolist())
            if run["cost"] is not None:
                assert facts["GPU cost"].startswith(format_cost(run["cost"]))
        assert render({"experiments": [e for e in history_with_figures(db)["experiments"]]})

        # The bill adds up and counts every run once, under its candidate.
        bill = experiment_bill_in(db, experiment, list(read.values()))
        assert bill.steady_cost <= bill.billed_cost + 1e-12
        assert abs(sum(c.cost for c in bill.containers) - bill.billed_cost) < 1e-12
        assert abs(sum(c.billed_cost for c in bill.gpus) - bill.billed_cost) < 1e-12
        assert sum(c.runs for c in bill.gpus) == len(read) - bill.unaccounted_runs
        assert export["bench"]["bill"] == json.loads(json.dumps(bill.to_dict()))
        steady = sum(r["cost_all_in"] or 0.0 for r in read.values()
                     if r["status"] == "succeeded")
        assert abs(steady + _failed_job_cost(read.values()) - bill.steady_cost) < 1e-12

        # One verdict: Compare/Start/the live view (analyse_experiment), `run --json`, both exports.
        md = export_experiment(db, experiment_id, "md")
        if analysis is None:
            assert "No verdict" in md and why
            return
        verdict = analysis.verdict.to_dict()
        assert export["bench"]["analysis"]["rule"] == verdict["rule"]
        assert export["bench"]["analysis"]["choice"] == verdict["choice"]
        assert export["comparisons"]["verdict"]["rule"] == verdict["rule"]
        assert f"**{verdict['rule']}**: use " in md
        table = _per_clip_from_md(md)
        for summary in analysis.summaries:
            for stats in summary.stats:
                time_cell, cost_cell = table[(summary.clip, stats.gpu)]
                assert time_cell == f"{stats.median_seconds:.1f}"
                assert cost_cell == format_cost(stats.cost)
                assert stats.fps == summary.frames / stats.median_seconds
        per_clip = {c["clip"]: c for c in export["bench"]["analysis"]["per_clip"]}
        for summary in analysis.summaries:
            assert per_clip[summary.clip]["times"] == summary.times
            assert per_clip[summary.clip]["costs"] == summary.costs
        assert re.search(r"\d", md)


def _failed_job_cost(runs) -> float:
    """All-in cost of the job seconds of failed runs (billed on their container, not in the runs'
    own costs)."""
    return sum((r["job_seconds"] or 0.0) * (r["all_in_rate"] or 0.0) for r in runs
               if r["status"] != "succeeded")
