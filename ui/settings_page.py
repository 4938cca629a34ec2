"""Settings page: the price table (editable, dated), storage and credential status (never a secret),
the Modal token, the Modal and R2 checks of `python -m bench doctor`, and the database's location,
size and contents.

Its data (price table rows, database facts, run counts, credential table) comes from
ui.settings_view. Streamlit runs a page with __name__ == "__main__", so importing this module
draws nothing.
"""

from __future__ import annotations

import streamlit as st

from bench.escape import page_text
from bench.formatting import format_rate
from bench.price_settings import prices_path
from bench.pricing import DEFAULT_PRICES
from core.errors import UserError, one_line
from core.status import ACTIVE_STATUSES, FAILED_STATUSES
from ui import state, widgets
from ui.settings_view import (
    CATALOG,
    GPU,
    HOURLY,
    MEMORY,
    MODAL,
    RATE,
    apply_price_edits,
    credential_frame,
    database_facts,
    human_size,
    price_frame,
    run_counts,
)

# Width of one metric tile: they wrap onto a new line instead of cutting their numbers.
METRIC_WIDTH = 170


def _prices_section() -> None:
    st.header("Prices")
    prices = state.prices()
    if prices.date == "user override":
        st.info(f"Prices in use: **user override**, saved in {page_text(prices_path())} and based on the "
                f"catalog of {DEFAULT_PRICES.date}. New runs, from here or the CLI, are costed "
                f"with these.")
    else:
        st.caption(f"Prices in use: catalog of **{page_text(prices.date)}** — "
                   f"{page_text(prices.source)}.")
    version = st.session_state.get("settings_price_version", 0)
    frame = st.data_editor(
        price_frame(prices), key=f"settings_prices_{version}", hide_index=True, width="stretch",
        disabled=[GPU, HOURLY, MEMORY, MODAL, CATALOG],
        column_config={
            GPU: st.column_config.TextColumn(GPU, pinned=True),
            RATE: st.column_config.NumberColumn(RATE, min_value=0.0, format="$%.7g", step=0.000001,
                                                help="What one GPU costs per second of run time"),
        })
    st.caption(page_text(f"CPU {format_rate(prices.cpu_core_per_second)} per core-second, memory "
                         f"{format_rate(prices.memory_gib_per_second)} per GiB-second (these make "
                         "the all-in cost; a local cpu run is priced at the core rate). Saved "
                         "prices apply to experiments created from now on: every stored "
                         "experiment keeps the price card it was created with, so its costs "
                         "never change."))
    buttons = widgets.button_row()
    if buttons.button("Save prices", type="primary", key="settings_save_prices", wrap=True,
                      icon=":material/save:"):
        try:
            updated = apply_price_edits(frame, prices)
        except UserError as exc:
            st.error(page_text(one_line(exc)))
        else:
            if updated is prices:
                st.info("Nothing changed.")
            else:
                state.set_prices(updated)
                st.session_state["settings_price_version"] = version + 1
                st.rerun()
    if buttons.button("Reset to catalog", key="settings_reset_prices", wrap=True,
                      icon=":material/restart_alt:", disabled=prices == DEFAULT_PRICES):
        state.set_prices(DEFAULT_PRICES)
        st.session_state["settings_price_version"] = version + 1
        st.rerun()


def _storage_section() -> None:
    from bench.backends.modal_credentials import modal_credentials

    st.header("Storage and credentials")
    try:
        config = state.storage_config()
    except UserError as exc:
        st.error(f"Storage settings: {page_text(one_line(exc))}")
    else:
        st.markdown(f"Objects (sources and outputs) go to: **{page_text(config.describe())}**")
        st.caption(f"Storage kind {page_text(config.kind)}; R2 settings read from: "
                   f"{page_text(config.source)}. Values are never shown.")
        st.dataframe(credential_frame(config.credential_status()), hide_index=True)
    credentials = modal_credentials()
    if credentials.present and not credentials.problem:
        st.success(f"{page_text(credentials.describe())}: the Modal backend can launch.")
    else:
        st.warning(f"Modal backend unavailable: {page_text(credentials.describe())}.")


# session_state key of the last doctor results, a list of Check dicts (a comment: a bare string
# here would be drawn on the page by Streamlit's magic).
DOCTOR_KEY = "settings_doctor_checks"


def _doctor_section() -> None:
    """The checks of `python -m bench doctor`, run on demand (they ask Modal and R2)."""
    from bench.doctor import run_checks

    st.header("Modal and R2 checks")
    st.caption("Before a live run: the Modal token, the r2-credentials secret (names only), the "
               "deployed app's code version against this checkout, the R2 bucket and the weights "
               "volume. Starts no container and costs nothing.")
    if st.button("Run the checks", key="settings_doctor"):
        with st.spinner("Asking Modal and R2..."):
            st.session_state[DOCTOR_KEY] = [c.to_dict() for c in run_checks(timeout=10.0, prices=state.prices())]
    for check in st.session_state.get(DOCTOR_KEY) or []:
        text = f"**{page_text(check['name'])}**: {page_text(check['line'])}"
        show = {"ok": st.success, "warn": st.warning, "fail": st.error}.get(check["status"], st.info)
        show(text)
        if check["fix"] and check["status"] in ("warn", "fail"):
            st.caption(f"Fix: {page_text(check['fix'])}")


def _database_section() -> None:
    from store.runs import list_experiments

    st.header("Database")
    facts = database_facts(state.db_path())
    st.markdown(f"Run history: {page_text(facts['path'])}")
    if not facts["exists"]:
        st.info("No database yet: it is created with the first run (Run page) or import "
                "(History page). Set BENCH_DB to use another file.")
        return
    try:
        counts = run_counts(list_experiments(state.database()))
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    with st.container(horizontal=True, wrap=True):  # wraps instead of cutting the numbers
        for label, value in (("Size", human_size(facts["size"])),
                             ("Experiments", counts["experiments"]), ("Runs", counts["runs"]),
                             ("Succeeded", counts["succeeded"]),
                             ("Failed or interrupted", sum(counts[s] for s in FAILED_STATUSES))):
            st.metric(label, value, width=METRIC_WIDTH, border=True)
    active = sum(counts[s] for s in ACTIVE_STATUSES)
    if active:
        st.caption(f"{active} run(s) queued or running now.")


def main() -> None:
    widgets.page_style()
    st.title("Settings")
    _prices_section()
    _storage_section()
    _doctor_section()
    _database_section()


if __name__ == "__main__":
    main()
