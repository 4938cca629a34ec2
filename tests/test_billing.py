"""bench.billing: container lifetimes, CPU and memory at max(request, use), idle gaps, shares per
run, and the monthly projection with container reuse."""

from __future__ import annotations

import math

import pytest

from bench.analysis import GpuFit
from bench.billing import (
    billed_runs,
    container_bill,
    experiment_bill,
    reuse_projection,
)
from bench.figures import figures_of
from bench.plan import build_plan
from bench.pricing import DEFAULT_PRICES
from core.errors import InputError

T4 = DEFAULT_PRICES.rate("T4")


def run(run_id: str, container: str, started: float, seconds: float, booted: float = 0.0,
        **extra) -> dict:
    row = {"id": run_id, "gpu": "T4", "price_gpu": "T4", "container_id": container,
           "container_started_at": booted, "job_started_at": started,
           "job_finished_at": started + seconds, "cpu_cores": 4.0, "memory_gib": 16.0,
           "cold": False, "status": "succeeded", "frames_out": 10}
    row.update(extra)
    return read(row)


def read(row: dict, candidate: str | None = None) -> dict:
    """A run as bench.experiments.read_runs gives it (its figures added)."""
    return {**row, **figures_of(row, candidate or str(row["gpu"]), DEFAULT_PRICES).to_dict()}


def test_one_container_boot_busy_idle_tail() -> None:
    rows = [run("a", "ta-1", 30.0, 10.0), run("b", "ta-1", 42.0, 8.0), run("c", "ta-1", 50.0, 5.0)]
    bill = experiment_bill(rows, DEFAULT_PRICES, scaledown_window=60)
    (c,) = bill.containers
    assert (c.boot_seconds, c.busy_seconds, c.idle_seconds, c.tail_seconds) == (30.0, 23.0, 2.0, 60.0)
    assert c.lifetime_seconds == 115.0  # boot at 0, last job ends at 55, + 60
    rate = T4 + DEFAULT_PRICES.container_rate()
    assert bill.steady_cost == pytest.approx(23.0 * rate)
    assert bill.billed_cost == pytest.approx(115.0 * rate)
    assert (bill.boot_cost, bill.idle_cost, bill.tail_cost) == pytest.approx(
        (30 * rate, 2 * rate, 60 * rate))
    assert bill.run_seconds == pytest.approx({"a": 10 + 92 / 3, "b": 8 + 92 / 3, "c": 5 + 92 / 3})
    assert sum(bill.run_seconds.values()) == pytest.approx(c.lifetime_seconds)


def test_cpu_and_memory_are_billed_at_the_larger_of_request_and_use() -> None:
    hungry = run("a", "ta-1", 10.0, 20.0, cpu_used_cores=6.5, peak_memory_gib=20.0)
    bill = experiment_bill([hungry], DEFAULT_PRICES, scaledown_window=30)
    job_rate = T4 + 6.5 * DEFAULT_PRICES.cpu_core_per_second + 20 * DEFAULT_PRICES.memory_gib_per_second
    idle_rate = T4 + 4.0 * DEFAULT_PRICES.cpu_core_per_second + 20 * DEFAULT_PRICES.memory_gib_per_second
    assert bill.steady_cost == pytest.approx(20 * job_rate)
    assert bill.billed_cost == pytest.approx(20 * job_rate + (10 + 30) * idle_rate)
    modest = run("a", "ta-1", 10.0, 20.0, cpu_used_cores=1.0, peak_memory_gib=3.0)
    assert experiment_bill([modest], DEFAULT_PRICES, 30).steady_cost == pytest.approx(
        20 * (T4 + DEFAULT_PRICES.container_rate(4.0, 16.0)))


def test_model_load_inside_a_job_is_overhead_and_unknown_runs_are_counted() -> None:
    # 12 s span: 9 s of job, 3 s of model load inside it (none of it measurement).
    local = run("a", "host:1", 2.0, 12.0, total_seconds=12.0, model_load_seconds=3.0)
    lost = read({"id": "b", "gpu": "T4", "price_gpu": "T4"})  # failed before any container
    bill = experiment_bill([local, lost], DEFAULT_PRICES, scaledown_window=0)
    rate = T4 + DEFAULT_PRICES.container_rate()
    assert bill.in_job_overhead_cost == pytest.approx(3 * rate)
    assert bill.billed_cost - bill.steady_cost == pytest.approx((2 + 3) * rate)
    assert bill.unaccounted_runs == 1 and bill.cold_boots == 1
    with pytest.raises(InputError):
        experiment_bill([local], DEFAULT_PRICES, scaledown_window=-1)
    with pytest.raises(InputError, match="exactly one container"):
        container_bill([], 0)


def test_measurement_after_the_job_is_billed_but_never_steady() -> None:
    # 10 s span: 7 s job (total), then 3 s of fidelity scoring after the upload.
    row = run("a", "ta-1", 0.0, 10.0, total_seconds=7.0, fidelity_seconds=3.0)
    bill = experiment_bill([row], DEFAULT_PRICES, scaledown_window=0)
    rate = T4 + DEFAULT_PRICES.container_rate()
    assert row["job_seconds"] == 7.0
    assert bill.steady_cost == pytest.approx(7 * rate) == pytest.approx(row["cost_all_in"])
    assert bill.measurement_cost == pytest.approx(3 * rate)
    assert bill.billed_cost == pytest.approx(10 * rate)


def test_a_warm_container_from_an_earlier_experiment_pays_no_boot_and_a_reused_tail_is_cut() -> None:
    rows = [run("a", "ta-1", 500.0, 10.0, booted=100.0)]
    earlier = experiment_bill(rows, DEFAULT_PRICES, 120)
    warm = experiment_bill(rows, DEFAULT_PRICES, 120, warm={"ta-1"})
    assert earlier.containers[0].boot_seconds == 400.0 and earlier.cold_boots == 1
    assert warm.containers[0].boot_seconds == 0.0 and warm.cold_boots == 0
    assert warm.billed_cost < earlier.billed_cost
    cut = experiment_bill(rows, DEFAULT_PRICES, 120, warm={"ta-1"}, reused_at={"ta-1": 540.0})
    assert cut.containers[0].tail_seconds == 30.0


def test_the_bill_groups_by_candidate_and_adds_up() -> None:
    # One worker process served two engines (two candidates): each is billed for its own runs.
    fast = read({**run("a", "host:1", 1.0, 4.0), "engine": "fast"}, "cpu · fast")
    ref = read({**run("b", "host:1", 5.0, 8.0), "engine": "reference"}, "cpu · reference")
    bill = experiment_bill([ref, fast], DEFAULT_PRICES, scaledown_window=30)
    per = {c.gpu: c for c in bill.gpus}
    assert per["cpu · fast"].runs == 1 and per["cpu · reference"].runs == 1
    assert sum(c.billed_cost for c in bill.gpus) == pytest.approx(bill.billed_cost)
    assert sum(c.cost for c in bill.containers) == pytest.approx(bill.billed_cost)
    assert bill.steady_cost <= bill.billed_cost
    assert bill.containers[0].candidates == ("cpu · fast", "cpu · reference")
    assert [r.candidate for r in billed_runs([fast], DEFAULT_PRICES)[0]] == ["cpu · fast"]


def test_reuse_projection_models_cold_starts_and_idle_tails() -> None:
    fit = GpuFit(overhead_s=2.0, throughput_fps=10.0, per_frame_s=0.1, r2=1.0, points=3, note="")
    rate = 0.001
    mix = {180.0: 1.0}  # every clip 180 frames: 20 s of job
    rare = reuse_projection({"T4": fit}, {"T4": rate}, clips_per_day=24, mix=mix,
                            scaledown_window=120, cold_seconds={"T4": 40.0})["T4"]
    per_second = 24 / 86400
    assert rare.cold_share == pytest.approx(math.exp(-per_second * 120))
    assert rare.idle_seconds_per_clip == pytest.approx((1 - math.exp(-per_second * 120)) / per_second)
    assert rare.steady_monthly_cost == pytest.approx(20 * rate * 24 * 30)
    assert rare.monthly_cost == pytest.approx(
        (20 + rare.idle_seconds_per_clip + rare.cold_share * 40) * rate * 24 * 30)
    assert rare.cold_share > 0.96 and rare.idle_seconds_per_clip == pytest.approx(120, rel=0.02)
    busy = reuse_projection({"T4": fit}, {"T4": rate}, clips_per_day=86400, mix=mix,
                            scaledown_window=120, cold_seconds={"T4": 40.0})["T4"]
    assert busy.cold_share < 1e-50 and busy.idle_seconds_per_clip == pytest.approx(1.0, rel=1e-6)
    none = reuse_projection({"T4": fit}, {"T4": rate}, 0, mix, 120, {})["T4"]
    assert none.monthly_cost == 0.0
    with pytest.raises(InputError):
        reuse_projection({"T4": fit}, {}, 10, mix, 120, {})
    with pytest.raises(InputError):
        reuse_projection({"T4": fit}, {"T4": rate}, 10, {}, 120, {})


def test_plan_carries_container_reuse_window_and_queue_limit() -> None:
    plan = build_plan("e6")
    assert (plan.container_reuse, plan.scaledown_window_seconds, plan.queue_wait_limit_seconds) == \
        ("sequential", 120, 900.0)
    custom = build_plan("e6", container_reuse="parallel", scaledown_window_seconds="30",
                        queue_wait_limit_seconds=60)
    again = type(custom).from_dict(custom.to_dict())
    assert again == custom and again.scaledown_window_seconds == 30
    for bad in (dict(container_reuse="always"), dict(scaledown_window_seconds=1),
                dict(scaledown_window_seconds=4000), dict(queue_wait_limit_seconds=0)):
        with pytest.raises(InputError):
            build_plan("e6", **bad)
