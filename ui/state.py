"""What every page shares: the database, the storage settings, the price table in use.

Pages call these instead of building their own, so the database location and prices are the same
everywhere. Nothing here keeps a DuckDB connection open (store.db opens one per operation).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from bench.escape import page_text
from bench.price_settings import load_prices, save_prices
from bench.pricing import DEFAULT_PRICES, PriceTable
from core.errors import UserError, one_line
from core.paths import default_db_path
from store.config import StorageConfig, load_storage_config
from store.db import Database

EXPERIMENT_PARAM = "experiment"
"""Query parameter naming the experiment a page shows (survives reloads)."""


def db_path() -> Path:
    """$BENCH_DB, else data/bench.duckdb."""
    return default_db_path()


def database() -> Database:
    """The run history (migrated on first use in this process)."""
    return _database(str(db_path()))


@st.cache_resource(show_spinner=False)
def _database(path: str) -> Database:
    return Database(path)


def storage_config() -> StorageConfig:
    """Storage settings from the environment / .streamlit/secrets.toml (secrets never shown)."""
    return load_storage_config()


def prices() -> PriceTable:
    """The price table in use: the one saved in Settings (data/prices.json), else the catalog
    (with a warning on the page when the saved file is unreadable)."""
    try:
        return load_prices()
    except UserError as exc:
        st.warning(page_text(one_line(exc)))
        return DEFAULT_PRICES


def set_prices(table: PriceTable) -> None:
    """Save the table for every later run, from the dashboard or the CLI."""
    save_prices(table)


def selected_experiment() -> str | None:
    """The experiment named in the URL (?experiment=ID), if any."""
    return st.query_params.get(EXPERIMENT_PARAM)


def select_experiment(experiment_id: str | None) -> None:
    if experiment_id:
        st.query_params[EXPERIMENT_PARAM] = experiment_id
    elif EXPERIMENT_PARAM in st.query_params:
        del st.query_params[EXPERIMENT_PARAM]


def keep_in_url(**params: str | list[str] | None) -> None:
    """Mirror choices in the URL's query parameters, so a shared link opens the same view; None,
    '' or [] removes a parameter."""
    for name, value in params.items():
        if value:
            st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]


def start_from_url(key: str, value: object) -> None:
    """Start the widget `key` at a value read from the URL, the first time it is drawn in this
    session (later the widget keeps what the user chose)."""
    if key not in st.session_state and value:
        st.session_state[key] = value
