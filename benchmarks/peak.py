"""The card's ceilings, measured in the same call as the model numbers they are compared with:
a bf16 8192^3 matrix product (TFLOP/s) and a device-to-device copy (TB/s, bytes read + written).

    python benchmarks/peak.py
"""

from __future__ import annotations

import torch


def timed(fn, repeats: int = 10) -> float:
    """Median seconds of fn() over repeats, after three warm-ups, timed with CUDA events."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    matmul = 2 * n ** 3 / timed(lambda: a @ b) / 1e12
    src = torch.randn(2 * 1024 ** 3 // 4, device="cuda")
    dst = torch.empty_like(src)
    copy = 2 * src.numel() * 4 / timed(lambda: dst.copy_(src)) / 1e12
    print(f"{torch.cuda.get_device_name()}: bf16 matmul {matmul:.0f} TFLOP/s, copy {copy:.2f} TB/s")


if __name__ == "__main__":
    main()
