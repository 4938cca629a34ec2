"""A hand-made Modal experiment through fakes (issue 9, Done-when): 2 GPUs x 3 clips x 3 repeats,
run by the real orchestrator and ModalBackend against a fake Modal client (every call bound to
modal 1.6.4's signatures) whose containers boot, serve and idle exactly as the test says. The
steady-state cost and the bill differ by exactly the boots and scaledown tails put in; the export,
the CLI table and the Compare page show both costs, the queue wait, the cold boots and the
container count."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.backends.modal_backend import ContainerPolicy, ModalBackend
from bench.experiments import analyse_experiment, load_experiment, stored_bill
from bench.orchestrator import create_experiment, execute_experiment
from bench.plan import build_plan
from bench.pricing import DEFAULT_PRICES
from bench.report import export_experiment
from core.job import JobResult
from store import runs as store_runs
from store.config import StorageConfig
from store.db import Database
from tests.modal_fakes import FakeModal, Spawned, use_modal_config
from tests.ui_helpers import app, assert_no_exception, isolate_env, page_text  # noqa: F401
from workers.modal_app import ContainerFacts

FPS = 30.0
CLIPS = "6s:3:9,15s:3:18,30s:3:33"
"""180, 450 and 900 frames."""
SPEED = {"T4": 9.0, "L4": 12.0}
"""Frames per second of each card's job (steady state), so T4's 6 s clip takes 20 s."""
JOB_OVERHEAD = 2.0
"""Seconds of fetch/encode/upload in every job, on top of the frames."""
QUEUE = {"T4": 4.0, "L4": 25.0}
"""Seconds from the spawn to the container's boot (waiting for the card)."""
BOOT = {"T4": 31.0, "L4": 17.5}
"""Seconds from the container's boot to its first job (image start, imports, model load)."""
WINDOW = 120
"""The plan's scaledown window: every container idles this long after its last job."""
START = 1_800_000_000.0


@dataclass
class Container:
    """One fake container of the test's making."""

    container_id: str
    gpu: str
    booted_at: float
    free_at: float
    jobs: int = 0


@dataclass
class World:
    """Containers that boot and serve exactly as the constants above say, with the client seeing
    each result the moment its job finishes (event order, no polling delay): a GPU's next run is
    spawned when its last one finishes, so on a warm container it starts at once (no idle gap).
    Idle time then comes only from what the test puts in: the boots and the scaledown tails."""

    reuse: str = "sequential"
    runs_per_gpu: int = 9
    clock: list[float] = field(default_factory=lambda: [START])
    containers: list[Container] = field(default_factory=list)
    results: dict[str, tuple[dict, float, str]] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)
    spawned_per_gpu: dict[str, int] = field(default_factory=dict)
    owed: set[str] = field(default_factory=set)

    def now(self) -> float:
        return self.clock[0]

    def on_spawn(self, spawned: Spawned) -> None:
        """Schedule the job: a new container boots QUEUE after the spawn and serves BOOT later;
        a warm one starts it when free (at once, in event order)."""
        gpu = "T4" if spawned.options["gpu"] == "T4" else "L4"
        self.owed.discard(gpu)
        self.spawned_per_gpu[gpu] = self.spawned_per_gpu.get(gpu, 0) + 1
        job = spawned.job
        trim = job["segment_data"]["trimRange"]
        frames = round((trim["end"] - trim["start"]) * FPS)
        submitted = self.now()
        container = next((c for c in self.containers if c.gpu == gpu), None) \
            if self.reuse == "sequential" else None
        if container is None:
            booted = submitted + QUEUE[gpu]
            container = Container(f"ta-{gpu}-{len(self.containers) + 1}", gpu, booted,
                                  booted + BOOT[gpu])
            self.containers.append(container)
        cold = container.jobs == 0
        started = max(container.free_at, submitted)
        assert started == container.free_at or cold  # no idle gap the test did not put in
        seconds = JOB_OVERHEAD + frames / SPEED[gpu]
        container.free_at = started + seconds
        container.jobs += 1
        result = JobResult(job_id=job["job_id"], status="succeeded",
                           stages={"fetch": 0.5, "model_load": 0.0, "decode": 1.0,
                                   "upscale": frames / SPEED[gpu], "encode": 1.0, "upload": 0.5,
                                   "total": seconds},
                           frames_in=frames, frames_out=frames, output_width=810,
                           output_height=1440, output_key=job["output_key"], output_bytes=1000,
                           device_name=f"NVIDIA {gpu}", model="x4plus", engine="fast",
                           precision="fp16", weights_provenance="official",
                           container_id=container.container_id, started_at=started,
                           finished_at=started + seconds).to_dict()
        result.update(ContainerFacts(
            container_started_at=container.booted_at + 2.0, gpu_name_nvidia_smi=f"NVIDIA {gpu}",
            cold=cold, model_load_seconds=BOOT[gpu] - 2.0, container_booted_at=container.booted_at,
            cpu_request=4.0, memory_request_gib=16.0, cpu_used_cores=3.1,
            peak_memory_gib=9.5).to_dict())
        self.results[spawned.call_id] = (result, started + seconds, gpu)

    def serve(self, spawned: Spawned) -> Any:
        """The result once it is the next event (and no lane still owes its next spawn)."""
        result, finish, gpu = self.results[spawned.call_id]
        if spawned.call_id in self.delivered:
            return result
        outstanding = [f for call_id, (_, f, _) in self.results.items()
                       if call_id not in self.delivered]
        if self.owed or finish > min(outstanding):
            return TimeoutError()
        self.delivered.add(spawned.call_id)
        self.clock[0] = max(self.clock[0], finish)
        if self.reuse == "sequential" and self.spawned_per_gpu[gpu] < self.runs_per_gpu:
            self.owed.add(gpu)
        return result


@pytest.fixture
def modal_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request) -> dict:
    """The experiment, run to the end through the fakes; reuse from the test's parameter."""
    reuse = getattr(request, "param", "sequential")
    db_path = isolate_env(monkeypatch, tmp_path)
    use_modal_config(monkeypatch, None)
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
    db = Database(db_path)
    plan = build_plan(None, source="user-1/sources/match.mp4", clips=CLIPS, gpus="T4,L4",
                      backend="modal", repeats=3, fps=FPS, model="x4plus", engine="fast",
                      container_reuse=reuse, scaledown_window_seconds=WINDOW)
    experiment_id, run_ids = create_experiment(db, plan, "user-1/sources/match.mp4", DEFAULT_PRICES,
                                               "hand-made 2x3x3")
    world = World(reuse=reuse)
    sdk = FakeModal(world.serve)
    sdk.on_spawn = world.on_spawn
    backend = ModalBackend(poll_interval=0.0, sdk=sdk, policy=ContainerPolicy.of(plan),
                           clock=world.now)
    execute_experiment(db, experiment_id, StorageConfig(), backend=backend)
    return {"db": db, "db_path": db_path, "id": experiment_id, "runs": run_ids, "world": world,
            "sdk": sdk, "plan": plan}


def _bill(db, experiment_id: str):
    """The experiment's bill as every view computes it."""
    return stored_bill(db, experiment_id)


def _idle_rate(gpu: str) -> float:
    """$/s of a container of this card while not running a job: GPU, the CPU request, memory at
    max(request 16 GiB, peak 9.5 GiB)."""
    return DEFAULT_PRICES.rate(gpu) + DEFAULT_PRICES.container_rate(4.0, 16.0)


def test_steady_and_billed_differ_by_exactly_the_boots_and_tails(modal_experiment) -> None:
    db, experiment_id, world = modal_experiment["db"], modal_experiment["id"], modal_experiment["world"]
    runs = store_runs.list_runs(db, experiment_id=experiment_id)
    assert len(runs) == 18 and set(runs["status"]) == {"succeeded"}
    assert len(world.containers) == 2  # sequential reuse: one warm container per GPU
    bill = _bill(db, experiment_id)
    put_in = sum((BOOT[c.gpu] + WINDOW) * _idle_rate(c.gpu) for c in world.containers)
    assert bill.billed_cost - bill.steady_cost == pytest.approx(put_in, rel=1e-12, abs=1e-15)
    assert bill.boot_cost == pytest.approx(sum(BOOT[c.gpu] * _idle_rate(c.gpu)
                                               for c in world.containers))
    assert bill.tail_cost == pytest.approx(sum(WINDOW * _idle_rate(c.gpu) for c in world.containers))
    assert bill.idle_cost == 0.0 and bill.in_job_overhead_cost == 0.0
    # Steady state is every job at its rate (CPU used 3.1 < 4 requested, memory 9.5 < 16 GiB).
    steady = sum((JOB_OVERHEAD + frames / SPEED[gpu]) * _idle_rate(gpu) * 3
                 for gpu in SPEED for frames in (180, 450, 900))
    assert bill.steady_cost == pytest.approx(steady)
    assert bill.cold_boots == 2 and bill.unaccounted_runs == 0
    per_gpu = {g.gpu: g for g in bill.gpus}
    # Queue wait: the cold run waited for a container, the warm ones were picked up at once.
    assert per_gpu["T4"].queue_wait_max == pytest.approx(QUEUE["T4"])
    assert per_gpu["L4"].queue_wait_max == pytest.approx(QUEUE["L4"])
    assert per_gpu["T4"].queue_wait_median == 0.0
    assert per_gpu["L4"].boot_seconds == pytest.approx(BOOT["L4"])
    # Each run records its container, its boot and its queue wait (the first one cold).
    first_t4 = runs[(runs["gpu"] == "T4")].sort_values("job_started_at").iloc[0]
    assert first_t4["cold"] and first_t4["queue_wait_seconds"] == pytest.approx(QUEUE["T4"])
    assert first_t4["container_started_at"] == pytest.approx(world.containers[0].booted_at)
    assert runs["container_id"].nunique() == 2
    assert (runs["cpu_cores"] == 4.0).all() and (runs["memory_gib"] == 16.0).all()
    # What the fakes received: one lane per GPU, each container bounded to one.
    options = [c.kwargs for c in modal_experiment["sdk"].of("Cls.with_options")]
    assert len(options) == 18 and all(o["max_containers"] == 1 and o["scaledown_window"] == WINDOW
                                      and o["cpu"] == 4.0 and o["memory"] == 16384
                                      for o in options)


@pytest.mark.parametrize("modal_experiment", ["parallel"], indirect=True)
def test_parallel_reuse_pays_a_boot_and_a_tail_per_run(modal_experiment) -> None:
    db, experiment_id, world = modal_experiment["db"], modal_experiment["id"], modal_experiment["world"]
    bill = _bill(db, experiment_id)
    assert len(world.containers) == bill.cold_boots == 18
    put_in = sum((BOOT[c.gpu] + WINDOW) * _idle_rate(c.gpu) for c in world.containers)
    assert bill.billed_cost - bill.steady_cost == pytest.approx(put_in, rel=1e-12)
    options = [c.kwargs for c in modal_experiment["sdk"].of("Cls.with_options")]
    assert all("max_containers" not in o for o in options)
    assert json.loads(load_experiment(db, experiment_id).plan_json)["container_reuse"] == "parallel"


def test_the_verdict_basis_switches_between_steady_and_billed(modal_experiment) -> None:
    db, experiment_id = modal_experiment["db"], modal_experiment["id"]
    steady, _, runs = analyse_experiment(db, experiment_id)
    billed, _, _ = analyse_experiment(db, experiment_id, basis="billed")
    t4_6s = steady.summaries[0].get("T4")
    assert t4_6s.median_seconds == pytest.approx(JOB_OVERHEAD + 180 / SPEED["T4"])
    # On the bill each run carries a ninth of its container's boot and tail.
    share = (BOOT["T4"] + WINDOW) / 9
    assert billed.summaries[0].get("T4").median_seconds == pytest.approx(
        JOB_OVERHEAD + 180 / SPEED["T4"] + share)
    bill = _bill(db, experiment_id)
    assert sum(bill.run_seconds.values()) == pytest.approx(
        sum(c.lifetime_seconds for c in bill.containers))


def test_export_and_cli_show_both_costs(modal_experiment, capsys) -> None:
    from bench.commands import run_cmd

    db, experiment_id = modal_experiment["db"], modal_experiment["id"]
    document = export_experiment(db, experiment_id, "json")
    bill = document["bench"]["bill"]
    assert bill["containers"] == bill["cold_boots"] == 2
    assert bill["billed_cost"] > bill["steady_cost"] > 0
    assert bill["scaledown_window_seconds"] == WINDOW and bill["container_reuse"] == "sequential"
    assert {g["gpu"]: g["queue_wait_max"] for g in bill["per_gpu"]} == pytest.approx(QUEUE)
    run = document["bench"]["runs"][0]
    assert {"queue_wait_seconds", "container_id", "container_started_at", "job_seconds",
            "startup_seconds"} <= set(run)
    assert document["config"]["scaledown_window_seconds"] == WINDOW  # stored with the experiment
    markdown = export_experiment(db, experiment_id, "md")
    assert "### The bill" in markdown and "Steady state (warm containers)" in markdown

    args = argparse.Namespace(json=False, tolerance=0.10, basis="steady")
    run_cmd._report(db, experiment_id, modal_experiment["plan"], args)
    out = capsys.readouterr().out
    assert "the bill:" in out and "Steady state (warm containers): $" in out
    assert "this experiment's bill: $" in out and "2 container(s), 2 booted here" in out
    assert "queue wait median 0.0 s (max 25.0 s)" in out


def test_compare_page_shows_the_bill(modal_experiment) -> None:
    at = app("ui/compare_page.py", query={"experiment": modal_experiment["id"]})
    assert_no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    bill = _bill(modal_experiment["db"], modal_experiment["id"])
    from bench.formatting import format_cost

    assert metrics["Steady state"] == format_cost(bill.steady_cost)
    assert metrics["This experiment's bill"] == format_cost(bill.billed_cost)
    assert metrics["Cold boots"] == "2"
    assert metrics["Queue wait (median / max)"] == "0.0 s / 25.0 s"
    text = page_text(at)
    assert "The bill exceeds steady state by" in text and "scaledown tails" in text
    assert "with container reuse" in text
    at.radio(key="compare_basis").set_value("billed").run()
    assert_no_exception(at)


# ---------------------------------------------------------------------------------------------
# Reconciliation with Modal's billing report (modal 1.6.4: Workspace.billing.report).


def _report_items(bill, extra: float) -> list:
    """Rows as modal.types.BillingReportItem (the real class): our bill spread over the hours,
    plus `extra` dollars Modal counted that we did not, and a row of another app."""
    from datetime import datetime, timezone
    from decimal import Decimal

    from modal.types import BillingReportItem

    from bench.reconcile import cost_in_window, hour_window

    start, end = hour_window(bill)
    rows = []
    hour = start.timestamp()
    while hour < end.timestamp():
        cost = sum(cost_in_window(c, hour, hour + 3600) for c in bill.containers)
        if hour == start.timestamp():
            cost += extra
        rows.append(BillingReportItem(
            object_id="ap-123", description="upscale-gpu-bench", environment_name="main",
            interval_start=datetime.fromtimestamp(hour, timezone.utc), cost=Decimal(repr(cost)),
            cost_by_resource={"GPU": Decimal(repr(cost * 0.9)), "CPU": Decimal(repr(cost * 0.1))},
            tags={"code_version": "v123"}))
        hour += 3600
    rows.append(BillingReportItem(object_id="ap-999", description="someone-else",
                                  environment_name="main", interval_start=start,
                                  cost=Decimal("5"), cost_by_resource={}, tags={}))
    return rows


def test_reconcile_beside_modals_billing_report(modal_experiment, capsys) -> None:
    from datetime import datetime, timedelta, timezone

    from bench.reconcile import reconcile, render

    db, experiment_id, sdk = modal_experiment["db"], modal_experiment["id"], modal_experiment["sdk"]
    bill = _bill(db, experiment_id)
    sdk.billing_items = _report_items(bill, extra=0.0123)
    later = lambda: datetime.fromtimestamp(START, timezone.utc) + timedelta(days=1)  # noqa: E731
    rec = reconcile(db, experiment_id, sdk=sdk, now=later)
    assert rec.note is None and rec.rows >= 1
    assert rec.ours == pytest.approx(bill.billed_cost)
    assert rec.modal_cost == pytest.approx(bill.billed_cost + 0.0123)
    assert rec.difference == pytest.approx(0.0123)
    assert rec.modal_by_resource["GPU"] == pytest.approx((bill.billed_cost + 0.0123) * 0.9)
    (call,) = sdk.of("Workspace.billing.report")
    assert call.kwargs["resolution"] == "h" and call.kwargs["tag_names"] == ["code_version"]
    assert call.kwargs["start"].tzinfo == timezone.utc and call.kwargs["start"].minute == 0
    assert call.kwargs["end"] - call.kwargs["start"] >= timedelta(hours=1)
    assert sdk.of("Workspace.from_context")
    text = render(rec)
    assert "Modal's billing report for the app: $" in text and "difference (Modal - ours):" in text
    assert "+$0.0123" in text


def test_reconcile_degrades_to_one_line(modal_experiment, monkeypatch) -> None:
    import modal.exception as mx

    from bench.commands import reconcile_cmd
    from bench.reconcile import reconcile

    db, experiment_id, sdk = modal_experiment["db"], modal_experiment["id"], modal_experiment["sdk"]
    sdk.billing_items = mx.PermissionDeniedError("billing reports need a workspace manager")
    rec = reconcile(db, experiment_id, sdk=sdk)
    assert rec.modal_cost is None and rec.ours > 0
    assert rec.note.startswith("this workspace or token may not read Modal's billing report "
                               "(PermissionDeniedError: billing reports need a workspace manager)")
    assert "\n" not in rec.note
    # The command without a token: one line, exit 1.
    monkeypatch.delenv("MODAL_TOKEN_ID")
    monkeypatch.delenv("MODAL_TOKEN_SECRET")
    args = argparse.Namespace(experiment_id=experiment_id, timeout=5.0, db=modal_experiment["db_path"],
                              json=True)
    assert reconcile_cmd.main(args) == 1
