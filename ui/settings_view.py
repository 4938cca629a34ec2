"""The Settings page's data, pure (no st.* calls; unit-tested directly): the price table as the
editor shows it and the edits read back, the database file's facts and run counts, and which
credentials are set (never their values).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from bench.formatting import format_cost, format_rate
from bench.pricing import DEFAULT_PRICES, PriceTable
from core.errors import InputError
from core.status import RUN_STATUSES

GPU, RATE, HOURLY, MEMORY, MODAL, CATALOG = ("GPU", "$ per second", "$ per hour", "Memory (GB)",
                                             "Modal GPU string", "Catalog $ per second")
"""Columns of the price editor."""


def price_frame(prices: PriceTable, catalog: PriceTable = DEFAULT_PRICES) -> pd.DataFrame:
    """The price table as the editor shows it: one row per GPU with its rate (the number edited),
    the hourly price, memory, Modal's GPU string and the catalog's rate for comparison (both
    written by bench.formatting, as every other page writes money)."""
    rows = []
    for name, gpu in prices.gpus.items():
        base = catalog.gpus.get(name)
        rows.append({GPU: name, RATE: gpu.usd_per_second,
                     HOURLY: format_cost(gpu.usd_per_second * 3600),
                     MEMORY: gpu.memory_gb, MODAL: gpu.modal_gpu,
                     CATALOG: format_rate(base.usd_per_second) if base else "—"})
    return pd.DataFrame(rows, columns=[GPU, RATE, HOURLY, MEMORY, MODAL, CATALOG])


def changed_rates(frame: pd.DataFrame, prices: PriceTable) -> dict[str, float]:
    """{GPU: new $/s} for the rows of the edited frame whose rate differs from `prices`.
    Raises InputError (via with_overrides later) only for bad values; a blank rate is an error
    here too."""
    changed = {}
    for row in frame.to_dict("records"):
        name, rate = str(row[GPU]), row[RATE]
        if rate is None or (isinstance(rate, float) and math.isnan(rate)):
            raise InputError(f"price for {name} is empty; give a positive number of $/s")
        if name in prices.gpus and not math.isclose(float(rate), prices.gpus[name].usd_per_second,
                                                    rel_tol=1e-12, abs_tol=0.0):
            changed[name] = float(rate)
    return changed


def apply_price_edits(frame: pd.DataFrame, prices: PriceTable) -> PriceTable:
    """The price table with the edited rates (dated 'user override' when anything changed).
    Raises InputError for an empty or non-positive rate."""
    return prices.with_overrides(changed_rates(frame, prices))


def human_size(size: int) -> str:
    """'12.3 MB' style byte counts (1 kB = 1000 B)."""
    if size < 1000:
        return f"{size} B"
    value, unit = float(size), "B"
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            break
    return f"{value:.1f} {unit}"


def database_facts(path: Path) -> dict[str, Any]:
    """What the Settings page says about the database file: path, whether it exists, its size
    (the file plus DuckDB's write-ahead log)."""
    path = Path(path)
    files = [p for p in (path, path.with_name(path.name + ".wal")) if p.is_file()]
    return {"path": str(path.resolve()), "exists": path.is_file(),
            "size": sum(p.stat().st_size for p in files)}


def run_counts(experiments: pd.DataFrame) -> dict[str, int]:
    """{'experiments': N, 'runs': N, 'succeeded': N, ...} (one entry per run status) from
    list_experiments."""
    counts = {"experiments": int(len(experiments)),
              "runs": int(experiments["runs"].sum()) if len(experiments) else 0}
    for status in RUN_STATUSES:
        counts[status] = int(experiments[status].sum()) if len(experiments) else 0
    return counts


def credential_frame(status: Mapping[str, bool]) -> pd.DataFrame:
    """{variable: set?} as a two-column table saying 'set' / 'not set' (never a value)."""
    return pd.DataFrame([{"Setting": name, "State": "set" if ok else "not set"}
                         for name, ok in status.items()], columns=["Setting", "State"])
