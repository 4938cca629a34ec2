"""What each catalog card can do, from NVIDIA's datasheets: dense tensor-core TFLOP/s at fp16 and
fp8 and memory bandwidth. The estimate scales a time measured on one card to another by these
(never presented as measured). Figures are the datasheets' dense numbers (their sparsity figures
halved), for the SXM part where a card has several (Modal's A100, H100, H200 and B200 are SXM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CARDS_DATE = "2026-12"
"""When the figures below were copied from the datasheets."""


@dataclass(frozen=True)
class CardSpec:
    """One card's peak figures."""

    name: str
    """Catalog name (bench.pricing.DEFAULT_PRICES)."""
    fp16_tflops: float
    """Dense fp16 tensor-core TFLOP/s."""
    fp8_tflops: float | None
    """Dense fp8 tensor-core TFLOP/s; None for cards without fp8 tensor cores."""
    bandwidth_gbs: float
    """Memory bandwidth, GB/s."""
    source: str
    """The datasheet the figures come from."""

    @property
    def throughput(self) -> float:
        """The speed figure the estimate scales by: the geometric mean of fp16 TFLOP/s and GB/s
        (Real-ESRGAN's convolutions are bound by both at video sizes)."""
        return math.sqrt(self.fp16_tflops * self.bandwidth_gbs)


CARDS: dict[str, CardSpec] = {c.name: c for c in (
    CardSpec("T4", 65.0, None, 320.0, "NVIDIA T4 Tensor Core GPU datasheet (2019)"),
    CardSpec("L4", 121.0, 242.5, 300.0, "NVIDIA L4 Tensor Core GPU datasheet (2023)"),
    CardSpec("A10", 125.0, None, 600.0, "NVIDIA A10 Tensor Core GPU datasheet (2021)"),
    CardSpec("L40S", 362.05, 733.0, 864.0, "NVIDIA L40S GPU datasheet (2023)"),
    CardSpec("A100-40GB", 312.0, None, 1555.0, "NVIDIA A100 Tensor Core GPU datasheet (2021), SXM"),
    CardSpec("A100-80GB", 312.0, None, 2039.0, "NVIDIA A100 Tensor Core GPU datasheet (2021), SXM"),
    CardSpec("H100", 989.5, 1979.0, 3350.0, "NVIDIA H100 Tensor Core GPU datasheet (2023), SXM"),
    CardSpec("H200", 989.5, 1979.0, 4800.0, "NVIDIA H200 Tensor Core GPU datasheet (2024), SXM"),
    CardSpec("B200", 2250.0, 4500.0, 8000.0, "NVIDIA HGX B200 datasheet (2024), per GPU"),
)}
"""Catalog card -> its peak figures."""


def speed_ratio(measured_on: str, target: str) -> float | None:
    """How many times faster `target` should be than `measured_on` by their throughput figures;
    None when either card is not in CARDS. Raises nothing."""
    a, b = CARDS.get(measured_on), CARDS.get(target)
    if a is None or b is None:
        return None
    return b.throughput / a.throughput
