"""GPU catalog with Modal's per-second prices, user overrides, and the cost of a run.

Prices are Modal's as published on its pricing page in mid-2026 (dated, sourced, overridable).
Modal bills a container for every second it is up, GPU plus CPU cores plus memory; the "GPU-only"
cost is the original experiment's method, "all-in" adds the container's CPU and memory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from core.errors import InputError
from core.resources import DEFAULT_CPU_CORES, DEFAULT_MEMORY_GIB

PRICE_DATE = "2026-06"
PRICE_SOURCE = "Modal pricing page as published mid-2026 (https://modal.com/pricing)"
MIN_RATE, MAX_RATE = 1e-9, 1.0
"""Cheapest and dearest GPU price accepted anywhere (Settings, prices.json, imported results
files), $ per second ($1/s is $3,600 an hour); CPU and memory rates are bounded by MAX_RATE too."""
MAX_MEMORY_GB = 10_000
"""Most GPU memory a price table may state for one card."""


def check_rate(rate: Any, what: str) -> float:
    """rate as a float when it is a number of $/s from MIN_RATE to MAX_RATE. Raises InputError
    naming `what` otherwise."""
    try:
        value = math.nan if isinstance(rate, (bool, str)) else float(rate)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not MIN_RATE <= value <= MAX_RATE:  # NaN is refused too
        raise InputError(f"{what} must be a number of $/s from {MIN_RATE:g} to {MAX_RATE:g}, "
                         f"got {str(rate)[:40]}")
    return value



@dataclass(frozen=True)
class GpuPrice:
    """One GPU of the catalog."""

    name: str
    """Catalog name, e.g. 'A100-80GB'."""
    usd_per_second: float
    """Price of one GPU for one second, in US dollars."""
    modal_gpu: str
    """The string handed to Modal's with_options(gpu=...) to get exactly this card."""
    memory_gb: int
    """GPU memory in GB."""


def _catalog(*rows: tuple[str, float, str, int]) -> dict[str, GpuPrice]:
    return {name: GpuPrice(name, rate, modal, mem) for name, rate, modal, mem in rows}


@dataclass(frozen=True)
class PriceTable:
    """A dated set of prices: GPUs by catalog name, plus CPU and memory."""

    date: str
    """When the prices were published ('2026-06'), or 'user override' once edited."""
    source: str
    """Where the prices come from."""
    gpus: dict[str, GpuPrice] = field(default_factory=dict)
    """Catalog name -> price, in catalog order (cheapest first)."""
    cpu_core_per_second: float = 0.0
    """US dollars per CPU core per second."""
    memory_gib_per_second: float = 0.0
    """US dollars per GiB of memory per second."""

    def rate(self, gpu: str) -> float:
        """$/s of one GPU, by catalog name or alias. Raises InputError for an unknown GPU."""
        return self.gpus[canonical_gpu(gpu, self)].usd_per_second

    def cpu_rate(self, cores: float) -> float:
        """$/s of `cores` CPU cores (the price of a CPU-only run). Raises InputError if cores <= 0."""
        if not _positive(cores):
            raise InputError(f"CPU cores {cores!r} must be a positive number")
        return cores * self.cpu_core_per_second

    def container_rate(self, cpu_cores: float = DEFAULT_CPU_CORES,
                       memory_gib: float = DEFAULT_MEMORY_GIB) -> float:
        """$/s of a container's CPU cores and memory (without any GPU).

        Raises InputError for negative or non-finite sizes."""
        for label, value in (("CPU cores", cpu_cores), ("memory GiB", memory_gib)):
            if not _non_negative(value):
                raise InputError(f"{label} {value!r} must be a non-negative number")
        return cpu_cores * self.cpu_core_per_second + memory_gib * self.memory_gib_per_second

    def with_overrides(self, rates: Mapping[str, float]) -> "PriceTable":
        """A copy whose GPU rates ($/s) are replaced by `rates`; its date becomes 'user override'.

        Raises InputError for an unknown GPU or a rate that is not a positive number."""
        if not rates:
            return self
        gpus = dict(self.gpus)
        for name, rate in rates.items():
            key = canonical_gpu(name, self)
            old = gpus[key]
            gpus[key] = GpuPrice(old.name, check_rate(rate, f"price for {key}"), old.modal_gpu,
                                 old.memory_gb)
        return PriceTable("user override", f"{self.source}, edited by the user", gpus,
                          self.cpu_core_per_second, self.memory_gib_per_second)

    def for_placement(self, region: str | None = None) -> "PriceTable":
        """The table as Modal bills a container pinned to `region`: every rate (GPU, CPU, memory)
        x region_multiplier(region); the table itself without a region. Raises InputError for a
        malformed region."""
        factor = region_multiplier(region)
        if factor == 1.0:
            return self
        gpus = {n: GpuPrice(g.name, g.usd_per_second * factor, g.modal_gpu, g.memory_gb)
                for n, g in self.gpus.items()}
        return PriceTable(self.date, f"{self.source}; region {region} x{factor:g}", gpus,
                          self.cpu_core_per_second * factor, self.memory_gib_per_second * factor)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict (inverse of from_dict)."""
        return {
            "date": self.date,
            "source": self.source,
            "gpus": {n: {"usd_per_second": g.usd_per_second, "modal_gpu": g.modal_gpu,
                         "memory_gb": g.memory_gb} for n, g in self.gpus.items()},
            "cpu_core_per_second": self.cpu_core_per_second,
            "memory_gib_per_second": self.memory_gib_per_second,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PriceTable":
        """Parse to_dict's output. Raises InputError for a malformed table."""
        try:
            gpus = {}
            for name, row in dict(data["gpus"]).items():
                rate = check_rate(float(row["usd_per_second"]), f"rate of {str(name)[:40]}")
                memory = float(row.get("memory_gb") or 0)
                if not (_non_negative(memory) and memory <= MAX_MEMORY_GB):
                    raise ValueError(f"memory_gb of {str(name)[:40]} must be from 0 to "
                                     f"{MAX_MEMORY_GB}, got {str(memory)[:40]}")
                gpus[str(name)] = GpuPrice(str(name), rate, str(row.get("modal_gpu") or name),
                                           int(memory))
            cpu = float(data.get("cpu_core_per_second", 0.0))
            mem = float(data.get("memory_gib_per_second", 0.0))
            if not (_non_negative(cpu) and _non_negative(mem) and max(cpu, mem) <= MAX_RATE):
                raise ValueError(f"CPU and memory rates must be from 0 to {MAX_RATE:g} $/s")
            return cls(str(data.get("date", "")), str(data.get("source", "")), gpus, cpu, mem)
        except InputError as exc:
            raise InputError(f"malformed price table: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise InputError(f"malformed price table: {' '.join(str(exc).split())[:200]}") from exc


REGION_MULTIPLIERS = {"broad": 1.5, "narrow": 1.75}
"""What Modal charges on every rate of a container pinned to a region: a broad one (a continent
or country code, 'us', 'eu') or a narrow one (a cloud region, 'us-east-1'); Modal pricing page,
mid-2026."""
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)*")


def region_multiplier(region: str | None) -> float:
    """1.0 without a region, else REGION_MULTIPLIERS' broad ('us', no dash) or narrow
    ('us-east-1') factor. Raises InputError for text that is not a region name."""
    if not region:
        return 1.0
    if not _REGION.fullmatch(region):
        raise InputError(f"region {region!r} must look like 'us' (broad) or 'us-east-1' (narrow)")
    return REGION_MULTIPLIERS["narrow" if "-" in region else "broad"]


DEFAULT_PRICES = PriceTable(
    date=PRICE_DATE,
    source=PRICE_SOURCE,
    gpus=_catalog(
        ("T4", 0.000164, "T4", 16),
        ("L4", 0.000222, "L4", 24),
        ("A10", 0.000306, "A10", 24),
        ("L40S", 0.000542, "L40S", 48),
        ("A100-40GB", 0.000583, "A100-40GB", 40),
        ("A100-80GB", 0.000694, "A100-80GB", 80),
        # "H100!" stops Modal from silently upgrading the container to an H200: a benchmark must
        # measure the card it names.
        ("H100", 0.001097, "H100!", 80),
        ("H200", 0.001261, "H200", 141),
        ("B200", 0.001736, "B200", 180),
    ),
    cpu_core_per_second=0.0000131,
    memory_gib_per_second=0.00000222,
)
"""Modal's prices as published mid-2026."""

_ALIASES = {
    "A100": "A100-40GB",
    "A100-40": "A100-40GB",
    "A100-80": "A100-80GB",
    "A10G": "A10",
    "H100!": "H100",
}
"""Other spellings users (and Modal's own docs) use for catalog cards."""


def _squash(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip()).upper()


def canonical_gpu(name: str, table: PriceTable = DEFAULT_PRICES) -> str:
    """The catalog name for `name`, case-insensitively ('h100' -> 'H100', 'a100' -> 'A100-40GB',
    'a100_80gb' -> 'A100-80GB', 'A10G' -> 'A10').

    Raises InputError naming the catalog when `name` is not in it."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"GPU name {name!r} is empty; choose one of {', '.join(table.gpus)}")
    key = _squash(name)
    by_upper = {n.upper(): n for n in table.gpus}
    if key in by_upper:
        return by_upper[key]
    alias = _ALIASES.get(key)
    if alias in table.gpus:
        return alias
    raise InputError(f"unknown GPU {name!r}; choose one of {', '.join(table.gpus)}")


_DEVICE_PATTERNS = (
    (r"\bB200\b", "B200"),
    (r"\bH200\b", "H200"),
    (r"\bH100\b", "H100"),
    (r"\bA100\b.*\b80\s?GB\b", "A100-80GB"),
    (r"\bA100\b", "A100-40GB"),
    (r"\bL40S\b", "L40S"),
    (r"\bA10G?\b", "A10"),
    (r"\bL4\b", "L4"),
    (r"\bT4\b", "T4"),
)


def gpu_for_device(device_name: str) -> str | None:
    """The catalog card matching a CUDA device name ('NVIDIA H100 80GB HBM3' -> 'H100',
    'NVIDIA A100-SXM4-80GB' -> 'A100-80GB', 'Tesla T4' -> 'T4'); None when nothing matches.
    Raises nothing."""
    text = (device_name or "").upper().replace("-", " ")
    for pattern, card in _DEVICE_PATTERNS:
        if re.search(pattern, text):
            return card
    return None


@dataclass(frozen=True)
class RunRates:
    """What one run costs per second of its job, by its price card and its container."""

    card: float
    """$/s of the price card: the GPU's rate, or a CPU device's cores at the core rate."""
    all_in: float
    """$/s of the card plus the container's CPU (at max(request, use), unless the card already
    is the CPU) and memory (at max(request, peak))."""


def run_rates(prices: PriceTable, card_rate: float, cpu_device: bool,
              cpu_cores: float | None = None, cpu_used_cores: float | None = None,
              memory_gib: float | None = None, peak_memory_gib: float | None = None) -> RunRates:
    """The rates of one run, as Modal bills a container: CPU cores (physical) at the larger of
    request (`cpu_cores`, else DEFAULT_CPU_CORES) and use, memory at the larger of request (else
    DEFAULT_MEMORY_GIB) and peak. A CPU device's card already prices its cores, so all-in adds
    only memory. Raises InputError for a negative or non-finite rate or size."""
    if not _non_negative(card_rate):
        raise InputError(f"rate {card_rate!r} $/s must be a non-negative number")
    cores = max(cpu_cores or DEFAULT_CPU_CORES, cpu_used_cores or 0.0)
    memory = max(memory_gib or DEFAULT_MEMORY_GIB, peak_memory_gib or 0.0)
    container = prices.container_rate(0.0 if cpu_device else cores, memory)
    return RunRates(card_rate, card_rate + container)


def run_cost(seconds: float, rate: float) -> float:
    """$ of `seconds` at `rate` $/s: the one way any cost in this product is computed (job
    seconds x a RunRates rate). Raises InputError for negative or non-finite inputs."""
    _check_seconds_rate(seconds, rate)
    return seconds * rate


def _check_seconds_rate(seconds: float, rate: float) -> None:
    if not _non_negative(seconds):
        raise InputError(f"billed seconds {seconds!r} must be a non-negative number")
    if not _non_negative(rate):
        raise InputError(f"rate {rate!r} $/s must be a non-negative number")


def _non_negative(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value >= 0


def _positive(value: Any) -> bool:
    return _non_negative(value) and value > 0
