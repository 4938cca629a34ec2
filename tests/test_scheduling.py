"""Spreading a plan's runs over the cards of one machine (bench/backends/scheduling.py)."""

from __future__ import annotations

from bench.backends.base import Submission
from bench.backends.scheduling import POOL, RunQueue, is_device_fault
from core.job import Job


def sub(run_id: str, gpu: str) -> Submission:
    return Submission(run_id, Job(job_id=run_id, user_id="u", input_key="i.mp4", output_key="o.mp4"), gpu)


def drain(queue: RunQueue, order: list[str]) -> dict[str, list[str]]:
    """Hand out runs to devices taking turns in `order` until none is left."""
    done: dict[str, list[str]] = {d: [] for d in order}
    while True:
        progressed = False
        for device in order:
            item = queue.next_for(device)
            if item:
                done[device].append(item.run_id)
                progressed = True
        if not progressed:
            return done


def test_pooled_runs_keep_every_card_busy_and_own_runs_stay_put():
    runs = [sub(f"p{i}", POOL) for i in range(6)] + [sub("c", "cpu"), sub("k1", "cuda:1")]
    queue = RunQueue(runs, cards=("cuda:0", "cuda:1", "cuda:2"))
    assert queue.devices() == ["cpu", "cuda:1", "cuda:0", "cuda:2"]
    done = drain(queue, ["cpu", "cuda:0", "cuda:1", "cuda:2"])
    assert done["cpu"] == ["c"]
    assert done["cuda:1"][0] == "k1"  # its own run first
    assert sorted(done["cuda:0"] + done["cuda:1"][1:] + done["cuda:2"]) == [f"p{i}" for i in range(6)]
    assert all(len(done[card]) >= 2 for card in ("cuda:0", "cuda:2"))


def test_a_failing_card_leaves_the_pool_and_its_run_goes_to_another_card_once():
    queue = RunQueue([sub("p1", POOL), sub("p2", POOL)], cards=("cuda:0", "cuda:1"))
    first = queue.next_for("cuda:0")
    assert queue.pooled_run_failed("cuda:0", first, "CUDA error: an illegal memory access") is True
    assert queue.next_for("cuda:0") is None  # the card left the pool
    assert {queue.next_for("cuda:1").run_id, queue.next_for("cuda:1").run_id} == {"p1", "p2"}
    # the retried run failing again (a second card fault) is reported, not retried forever
    assert queue.pooled_run_failed("cuda:1", first, "CUDA out of memory") is False


def test_job_errors_are_not_blamed_on_the_card():
    queue = RunQueue([sub("p1", POOL)], cards=("cuda:0", "cuda:1"))
    run = queue.next_for("cuda:0")
    assert queue.pooled_run_failed("cuda:0", run, "trim end 40 s is past the end of the video") is False
    assert not is_device_fault("no object at 'x'") and is_device_fault("the cuda:1 worker process died")


def test_runs_nobody_can_take_are_handed_back():
    queue = RunQueue([sub("p1", POOL), sub("p2", POOL)], cards=("cuda:0",))
    run = queue.next_for("cuda:0")
    assert queue.pooled_run_failed("cuda:0", run, "CUDA error") is False  # no other card
    assert [s.run_id for s in queue.stranded()] == ["p2"] and queue.stranded() == []
