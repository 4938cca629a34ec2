"""Several cards on one machine (issue 13), simulated on the CPU: the local backend gets fake cards
whose workers run on 'cpu' (LocalBackend's run_on), so the scheduling is real and the jobs tiny."""

from __future__ import annotations

import functools
from typing import Callable

import pytest

from bench.backends.base import Submission
from bench.backends.local import LocalBackend
from bench.backends.scheduling import POOL
from bench.plan import parse_gpus
from core.job import Job
from store.objects import LocalDirectoryStore
from tests.jobs import tiny_job
from tests.sinks import Sink

CARDS = ("cuda:0", "cuda:1", "cpu")


def job(run_id: str) -> Job:
    """A tiny job, shorter still (3 frames, no fidelity): these tests run many."""
    return tiny_job(run_id, trim_start=0.0, trim_end=0.3, fidelity_samples=0)


@pytest.fixture()
def store(storage: LocalDirectoryStore) -> Callable[[], LocalDirectoryStore]:
    """What a worker process calls to open the store holding the tiny clip."""
    return functools.partial(LocalDirectoryStore, storage.root)


def test_pooled_runs_spread_over_every_card_and_record_the_card(store):
    backend = LocalBackend(store, devices=CARDS, run_on={"cuda:0": "cpu", "cuda:1": "cpu"})
    sink = Sink()
    backend.execute([Submission(f"p{i}", job(f"p{i}"), POOL) for i in range(6)], sink)
    assert not sink.failures and all(r.ok for r in sink.results.values()), sink.results
    cards = {r.device_name.rsplit("(", 1)[-1].rstrip(")") for r in sink.results.values()}
    assert cards == {"cuda:0", "cuda:1"}  # both cards took runs
    assert len({r.container_id for r in sink.results.values()}) == 2  # one warm worker per card


def test_a_failing_card_fails_only_its_own_runs_and_the_pool_carries_on(store):
    # cuda:0's worker is pointed at a card this machine lacks: every job there faults
    backend = LocalBackend(store, devices=CARDS, run_on={"cuda:0": "cuda:7", "cuda:1": "cpu"})
    sink = Sink()
    runs = [Submission("own0", job("own0"), "cuda:0")] + \
        [Submission(f"p{i}", job(f"p{i}"), POOL) for i in range(4)]
    backend.execute(runs, sink)
    assert set(sink.results) == {"own0", "p0", "p1", "p2", "p3"}
    assert not sink.results["own0"].ok and "cuda:7" in sink.results["own0"].error
    pooled = [sink.results[f"p{i}"] for i in range(4)]
    assert all(r.ok for r in pooled) and all(r.device_name.endswith("(cuda:1)") for r in pooled)


def test_all_cards_is_one_candidate_of_the_plan():
    (choice,) = parse_gpus("cuda:all=H200", "local")
    assert (choice.label, choice.price_gpu) == (POOL, "H200")
    with pytest.raises(Exception, match="no local device"):
        LocalBackend(lambda: None, devices=("cpu",)).preflight([POOL])
    LocalBackend(lambda: None, devices=CARDS).preflight([POOL, "cuda:1", "cpu"])
