"""The container a worker runs in, as both sides must agree on it: the Modal class requests this
size and the all-in cost (bench.pricing) bills it."""

import os

DEFAULT_CPU_CORES = 4.0
"""CPU cores per worker container (decode and H.264 encode run beside the GPU)."""
DEFAULT_MEMORY_GIB = 16.0
"""Memory per worker container, in GiB."""
DEFAULT_SCALEDOWN_WINDOW_SECONDS = 120
"""Seconds an idle worker container stays up (and billed) waiting for the next job, unless a plan
says otherwise (Modal accepts 2 to 3600)."""
THREADS_PER_CORE = 2
"""Hardware threads per CPU core as Modal counts them (1 physical core = 2 vCPUs): CPU seconds
measured by the kernel count threads, Modal bills cores."""


def cpu_cores() -> float:
    """CPU cores this process may run on (its affinity; a container's limit where set)."""
    try:
        return float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return float(os.cpu_count() or 1)
