"""Where the product keeps its files on this machine. The one reader of BENCH_DATA_DIR, BENCH_DB
and BENCH_WEIGHTS_DIR: every layer asks here instead of reading the environment itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

DEFAULT_DATA_DIR = Path("data")
"""Where the database and the local object store live unless told otherwise (relative to the cwd)."""


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The data directory: $BENCH_DATA_DIR or ./data."""
    env = os.environ if env is None else env
    return Path(env.get("BENCH_DATA_DIR") or DEFAULT_DATA_DIR)


def default_db_path() -> Path:
    """$BENCH_DB, else data/bench.duckdb."""
    return Path(os.environ.get("BENCH_DB") or data_dir() / "bench.duckdb")


def prices_path() -> Path:
    """Where prices saved in Settings live: data/prices.json."""
    return data_dir() / "prices.json"


def run_log_path(db_path: Path | str, experiment_id: str) -> Path:
    """The log of an experiment executed in the background: logs/ beside its database."""
    return Path(db_path).parent / "logs" / f"{experiment_id}.log"


def object_cache_dir() -> Path:
    """Local copies of remote objects: data/cache/objects."""
    return data_dir() / "cache" / "objects"


def local_objects_dir(env: Mapping[str, str] | None = None) -> Path:
    """The local object store's root: data/objects."""
    return data_dir(env) / "objects"


def weights_dir() -> Path:
    """$BENCH_WEIGHTS_DIR, else ~/.cache/upscale-gpu-bench/weights."""
    env = os.environ.get("BENCH_WEIGHTS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "upscale-gpu-bench" / "weights"
