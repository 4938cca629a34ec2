"""The GPU catalog, names, overrides and cost helpers."""

from __future__ import annotations

import pytest

from bench.pricing import (
    DEFAULT_PRICES,
    PriceTable,
    canonical_gpu,
    gpu_for_device,
    run_cost,
    run_rates,
)
from core.errors import InputError


def test_catalog_rates_date_and_source():
    rates = {name: g.usd_per_second for name, g in DEFAULT_PRICES.gpus.items()}
    assert rates == {"T4": 0.000164, "L4": 0.000222, "A10": 0.000306, "L40S": 0.000542,
                     "A100-40GB": 0.000583, "A100-80GB": 0.000694, "H100": 0.001097,
                     "H200": 0.001261, "B200": 0.001736}
    assert DEFAULT_PRICES.cpu_core_per_second == 0.0000131
    assert DEFAULT_PRICES.memory_gib_per_second == 0.00000222
    assert DEFAULT_PRICES.date == "2026-06" and "Modal" in DEFAULT_PRICES.source
    assert DEFAULT_PRICES.gpus["A100-80GB"].modal_gpu == "A100-80GB"
    assert DEFAULT_PRICES.gpus["H100"].memory_gb == 80


@pytest.mark.parametrize("name, canonical", [
    ("T4", "T4"), ("t4", "T4"), ("h100", "H100"), ("A100", "A100-40GB"), ("a100-80gb", "A100-80GB"),
    ("A100_80GB", "A100-80GB"), (" l40s ", "L40S"), ("A10G", "A10"), ("H100!", "H100"),
])
def test_canonical_gpu(name, canonical):
    assert canonical_gpu(name) == canonical


@pytest.mark.parametrize("name", ["V100", "", "cuda:0", "A100-120GB"])
def test_unknown_gpu_lists_the_catalog(name):
    with pytest.raises(InputError) as err:
        canonical_gpu(name)
    assert "T4, L4, A10, L40S, A100-40GB, A100-80GB, H100, H200, B200" in str(err.value)


def test_rate_and_unknown_rate():
    assert DEFAULT_PRICES.rate("l4") == 0.000222
    with pytest.raises(InputError, match="unknown GPU 'K80'"):
        DEFAULT_PRICES.rate("K80")


def test_overrides_are_dated_and_validated():
    table = DEFAULT_PRICES.with_overrides({"l4": 0.0002, "H100": 0.001})
    assert table.rate("L4") == 0.0002 and table.rate("H100") == 0.001
    assert table.rate("T4") == 0.000164
    assert table.date == "user override"
    assert DEFAULT_PRICES.rate("L4") == 0.000222  # the catalog itself is untouched
    with pytest.raises(InputError):
        DEFAULT_PRICES.with_overrides({"L4": -1.0})
    with pytest.raises(InputError):
        DEFAULT_PRICES.with_overrides({"V100": 0.001})


def test_to_dict_round_trip_and_bad_table():
    table = DEFAULT_PRICES.with_overrides({"T4": 0.0001})
    assert PriceTable.from_dict(table.to_dict()) == table
    with pytest.raises(InputError, match="malformed price table"):
        PriceTable.from_dict({"gpus": {"T4": {"usd_per_second": "cheap"}}})
    with pytest.raises(InputError):
        PriceTable.from_dict({"date": "x"})


def test_run_cost_and_rates():
    assert run_cost(185, 0.000164) == pytest.approx(0.03034)
    container = DEFAULT_PRICES.container_rate()
    gpu = run_rates(DEFAULT_PRICES, 0.000164, cpu_device=False)
    assert gpu.all_in == pytest.approx(0.000164 + container)
    # CPU at the larger of request and use (physical cores), memory at request or peak.
    busy = run_rates(DEFAULT_PRICES, 0.000222, False, cpu_cores=2, cpu_used_cores=3,
                     memory_gib=8, peak_memory_gib=4)
    assert busy.all_in == pytest.approx(0.000222 + DEFAULT_PRICES.container_rate(3, 8))
    # A CPU device's card already prices its cores: all-in adds memory only.
    cpu = run_rates(DEFAULT_PRICES, DEFAULT_PRICES.cpu_rate(2), True, cpu_cores=2)
    assert cpu.all_in == pytest.approx(DEFAULT_PRICES.cpu_rate(2) + DEFAULT_PRICES.container_rate(0, 16))
    with pytest.raises(InputError):
        run_cost(-1, 0.000164)
    with pytest.raises(InputError):
        run_cost(float("nan"), 0.000164)
    with pytest.raises(InputError):
        run_rates(DEFAULT_PRICES, -1.0, False)
    assert DEFAULT_PRICES.cpu_rate(2) == pytest.approx(2 * 0.0000131)


@pytest.mark.parametrize("device, card", [
    ("NVIDIA H100 80GB HBM3", "H100"), ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
    ("NVIDIA A100-SXM4-40GB", "A100-40GB"), ("Tesla T4", "T4"), ("NVIDIA L4", "L4"),
    ("NVIDIA A10G", "A10"), ("NVIDIA L40S", "L40S"), ("NVIDIA H200", "H200"),
    ("NVIDIA B200", "B200"), ("AMD EPYC 7763 64-Core Processor", None), ("", None),
])
def test_gpu_for_device(device, card):
    assert gpu_for_device(device) == card


def test_a_region_multiplies_every_rate_and_reaches_modal():
    from bench.estimate import estimate_plan
    from bench.plan import build_plan
    from bench.pricing import region_multiplier
    from workers.modal_app import container_options

    assert region_multiplier(None) == 1.0
    assert region_multiplier("us") == 1.5 and region_multiplier("us-east-1") == 1.75
    with pytest.raises(InputError, match="must look like"):
        region_multiplier("US East")
    placed = DEFAULT_PRICES.for_placement("us-east-1")
    assert placed.rate("L4") == pytest.approx(1.75 * DEFAULT_PRICES.rate("L4"))
    assert placed.container_rate() == pytest.approx(1.75 * DEFAULT_PRICES.container_rate())
    assert "region us-east-1 x1.75" in placed.source
    assert DEFAULT_PRICES.for_placement(None) is DEFAULT_PRICES

    fields = dict(backend="modal", gpus="L4", source="u/a.mp4", clips="a:0:1")
    anywhere = estimate_plan(build_plan(None, **fields), [], DEFAULT_PRICES)
    pinned = estimate_plan(build_plan(None, region="us", **fields), [], DEFAULT_PRICES)
    assert pinned.candidates[0].bill.overhead_cost == \
        pytest.approx(1.5 * anywhere.candidates[0].bill.overhead_cost)
    with pytest.raises(InputError, match="for the Modal backend"):
        build_plan(None, source="demo", clips="a:0:1", gpus="cpu", region="us")
    assert container_options("L4", region="eu")["region"] == "eu"
    assert "region" not in container_options("L4")
