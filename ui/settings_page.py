"""Settings page: the price table (editable, dated), storage and credential status (never a secret),
the Modal token, and the database's location, size and contents.

The helpers above main() are pure (no st.* calls) and tested directly; Streamlit runs a page with
__name__ == "__main__", so importing this module from a test draws nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import streamlit as st

from bench.errors import UserError, one_line
from bench.price_settings import prices_path
from bench.pricing import DEFAULT_PRICES, PriceTable
from ui import state
from bench.formatting import format_rate

# (Comments, not docstrings: Streamlit's magic would print a bare string on the page.)
# Columns of the price editor.
GPU, RATE, HOURLY, MEMORY, MODAL, CATALOG = ("GPU", "$ per second", "$ per hour", "Memory (GB)",
                                             "Modal GPU string", "Catalog $ per second")


# --------------------------------------------------------------------------- pure helpers


def price_frame(prices: PriceTable, catalog: PriceTable = DEFAULT_PRICES) -> pd.DataFrame:
    """The price table as the editor shows it: one row per GPU with its rate, the hourly price,
    memory, Modal's GPU string and the catalog's rate for comparison."""
    rows = []
    for name, gpu in prices.gpus.items():
        base = catalog.gpus.get(name)
        rows.append({GPU: name, RATE: gpu.usd_per_second, HOURLY: gpu.usd_per_second * 3600,
                     MEMORY: gpu.memory_gb, MODAL: gpu.modal_gpu,
                     CATALOG: base.usd_per_second if base else math.nan})
    return pd.DataFrame(rows, columns=[GPU, RATE, HOURLY, MEMORY, MODAL, CATALOG])


def changed_rates(frame: pd.DataFrame, prices: PriceTable) -> dict[str, float]:
    """{GPU: new $/s} for the rows of the edited frame whose rate differs from `prices`.
    Raises InputError (via with_overrides later) only for bad values; a blank rate is an error
    here too."""
    from bench.errors import InputError

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
    """{'experiments': N, 'runs': N, 'succeeded': N, ...} from list_experiments."""
    from store.db import RUN_STATUSES

    counts = {"experiments": int(len(experiments)),
              "runs": int(experiments["runs"].sum()) if len(experiments) else 0}
    for status in RUN_STATUSES:
        counts[status] = int(experiments[status].sum()) if len(experiments) else 0
    return counts


def credential_frame(status: Mapping[str, bool]) -> pd.DataFrame:
    """{variable: set?} as a two-column table saying 'set' / 'not set' (never a value)."""
    return pd.DataFrame([{"Setting": name, "State": "set" if ok else "not set"}
                         for name, ok in status.items()], columns=["Setting", "State"])


# --------------------------------------------------------------------------- sections


def _prices_section() -> None:
    st.header("Prices")
    prices = state.prices()
    if prices.date == "user override":
        st.info(f"Prices in use: **user override**, saved in `{prices_path()}` and based on the "
                f"catalog of {DEFAULT_PRICES.date}. New runs, from here or the CLI, are costed "
                f"with these.")
    else:
        st.caption(f"Prices in use: catalog of **{prices.date}** — {prices.source}.")
    version = st.session_state.get("settings_price_version", 0)
    frame = st.data_editor(
        price_frame(prices), key=f"settings_prices_{version}", hide_index=True, width="stretch",
        disabled=[GPU, HOURLY, MEMORY, MODAL, CATALOG],
        column_config={
            RATE: st.column_config.NumberColumn(RATE, min_value=0.0, format="$%.6f", step=0.000001,
                                                help="What one GPU costs per second of run time"),
            HOURLY: st.column_config.NumberColumn(HOURLY, format="$%.2f"),
            CATALOG: st.column_config.NumberColumn(CATALOG, format="$%.6f"),
        })
    st.caption(f"CPU {format_rate(prices.cpu_core_per_second)} per core-second, memory "
               f"{format_rate(prices.memory_gib_per_second)} per GiB-second (these make the "
               "all-in cost; a local cpu run is priced at the core rate).")
    save, reset, _ = st.columns([1, 1, 4])
    if save.button("Save prices", type="primary", key="settings_save_prices", width="stretch"):
        try:
            updated = apply_price_edits(frame, prices)
        except UserError as exc:
            st.error(one_line(exc))
        else:
            if updated is prices:
                st.info("Nothing changed.")
            else:
                state.set_prices(updated)
                st.session_state["settings_price_version"] = version + 1
                st.rerun()
    if reset.button("Reset to catalog", key="settings_reset_prices", width="stretch",
                    disabled=prices == DEFAULT_PRICES):
        state.set_prices(DEFAULT_PRICES)
        st.session_state["settings_price_version"] = version + 1
        st.rerun()


def _storage_section() -> None:
    from bench.backends.modal_backend import NO_TOKEN_MESSAGE, modal_token_present

    st.header("Storage and credentials")
    try:
        config = state.storage_config()
    except UserError as exc:
        st.error(f"Storage settings: {one_line(exc)}")
    else:
        st.markdown(f"Objects (sources and outputs) go to: **{config.describe()}**")
        st.caption(f"Storage kind `{config.kind}`; R2 settings read from: {config.source}. "
                   "Values are never shown.")
        st.dataframe(credential_frame(config.credential_status()), hide_index=True)
    if modal_token_present():
        st.success("Modal token found (MODAL_TOKEN_ID/MODAL_TOKEN_SECRET or ~/.modal.toml): "
                   "the Modal backend can launch.")
    else:
        st.warning(f"Modal backend unavailable: {NO_TOKEN_MESSAGE}.")


def _database_section() -> None:
    from store.runs import list_experiments

    st.header("Database")
    facts = database_facts(state.db_path())
    st.markdown(f"Run history: `{facts['path']}`")
    if not facts["exists"]:
        st.info("No database yet: it is created with the first run (Run page) or import "
                "(History page). Set BENCH_DB to use another file.")
        return
    try:
        counts = run_counts(list_experiments(state.database()))
    except UserError as exc:
        st.error(one_line(exc))
        return
    cols = st.columns(5)
    cols[0].metric("Size", human_size(facts["size"]))
    cols[1].metric("Experiments", counts["experiments"])
    cols[2].metric("Runs", counts["runs"])
    cols[3].metric("Succeeded", counts["succeeded"])
    cols[4].metric("Failed or interrupted", counts["failed"] + counts["interrupted"])
    active = counts["queued"] + counts["running"]
    if active:
        st.caption(f"{active} run(s) queued or running now.")


def main() -> None:
    st.title("Settings")
    _prices_section()
    _storage_section()
    _database_section()


if __name__ == "__main__":
    main()
