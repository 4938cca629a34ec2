"""History: every experiment and run, filters (GPU, model, status, date), picking runs or an
experiment to compare, failed runs with their reasons, and importing an E6 results file."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.errors import UserError, one_line
from core.status import ACTIVE_STATUSES, RUN_STATUSES
from store import runs as store_runs
from ui import history_view, state
from ui.labels import experiment_label, run_label_long, text_of

# session_state key the Compare page reads the picked run ids from, and the Compare page's
# script as registered with st.navigation in dashboard.py (comments, not docstrings: Streamlit's
# magic would draw a bare string).
COMPARE_RUNS_KEY = "compare_run_ids"
COMPARE_PAGE = "ui/compare_page.py"


def go_to_compare(experiment_id: str | None = None) -> None:
    """Open the Compare page (on the experiment, when given). Run standalone (no navigation),
    say where to go instead."""
    try:
        st.switch_page(COMPARE_PAGE, query_params={state.EXPERIMENT_PARAM: experiment_id}
                       if experiment_id else None)
    except StreamlitAPIException:
        st.info("Saved: open the Compare page to see the comparison.")


def import_section() -> None:
    """Upload an E6 results JSON and store it as an experiment."""
    with st.expander("Import an E6 results file"):
        upload = st.file_uploader("E6 results JSON", type=["json"], key="history_upload")
        if st.button("Import", key="history_import", disabled=upload is None):
            try:
                experiment_id = history_view.import_e6_upload(state.database(),
                                                              upload.getvalue(), upload.name)
            except UserError as exc:
                st.error(one_line(exc))
                return
            st.success(f"Imported {upload.name} as experiment {experiment_id}.")


def experiments_section(experiments: pd.DataFrame) -> None:
    """The experiments, newest first, and a button to compare one."""
    st.subheader("Experiments")
    table = pd.DataFrame([{
        "Experiment": experiment_label(r), "Preset": text_of(r.get("preset")),
        "Backend": text_of(r.get("backend")), "Model": text_of(r.get("model")),
        "Origin": r.get("origin"), "Runs": r.get("runs"), "Succeeded": r.get("succeeded"),
        "Failed": r.get("failed"), "Active": sum(int(r.get(s, 0)) for s in ACTIVE_STATUSES),
    } for r in experiments.to_dict("records")])
    st.dataframe(table, hide_index=True)
    labels = {r["id"]: experiment_label(r) for r in experiments.to_dict("records")}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    with left:
        chosen = st.selectbox("Experiment to compare", list(labels), format_func=labels.get,
                              key="history_experiment")
    with right:
        if st.button("Compare experiment", key="history_compare_experiment"):
            st.session_state[COMPARE_RUNS_KEY] = []
            state.select_experiment(chosen)
            go_to_compare(chosen)


def filters(facets: dict[str, list[str]]) -> dict:
    """The filter widgets (choices from store_runs.run_facets); returns the keyword arguments of
    history_view.runs_query."""
    st.subheader("Runs")
    cols = st.columns(5)
    gpus = cols[0].multiselect("GPU", facets["gpu"], key="filter_gpu")
    models = cols[1].multiselect("Model", facets["model"], key="filter_model")
    statuses = cols[2].multiselect("Status", list(RUN_STATUSES), key="filter_status")
    start = cols[3].date_input("From", value=None, key="filter_from")
    end = cols[4].date_input("To", value=None, key="filter_to")
    return dict(gpus=gpus, models=models, statuses=statuses, start=start, end=end)


def runs_section(runs: pd.DataFrame) -> None:
    """The filtered runs, and picking some of them to compare."""
    if runs.empty:
        st.info("No runs match these filters — clear some of them.")
        return
    if len(runs) >= history_view.HISTORY_RUN_LIMIT:
        st.caption(f"The newest {len(runs)} matching runs; narrow the filters to reach older ones.")
    else:
        st.caption(f"{len(runs)} run(s)")
    st.dataframe(history_view.runs_display(runs), hide_index=True)
    labels = {r["id"]: f"{r['experiment_name']} · {run_label_long(r)}"
              for r in runs.to_dict("records")}
    picked = st.multiselect("Runs to compare", list(labels), format_func=labels.get,
                            key="history_pick",
                            placeholder="Choose runs (e.g. the same clip on several GPUs)")
    if st.button(f"Compare {len(picked)} picked run(s)", key="history_compare_runs",
                 disabled=not picked):
        st.session_state[COMPARE_RUNS_KEY] = list(picked)
        go_to_compare()


def failed_section(runs: pd.DataFrame) -> None:
    """Failed and interrupted runs with their reasons."""
    failed = history_view.failed_runs(runs)
    st.subheader("Failed runs")
    if failed.empty:
        st.caption("No failed runs among these.")
        return
    st.dataframe(failed, hide_index=True)


def main() -> None:
    st.title("History")
    import_section()
    try:
        db = state.database()
        experiments = store_runs.list_experiments(db)
        if experiments.empty:
            st.info("No experiments yet — start one on the Run page, or import an E6 results file "
                    "above.")
            return
        experiments_section(experiments)
        chosen = filters(store_runs.run_facets(db))
        runs = store_runs.list_runs(db, **history_view.runs_query(**chosen))
    except UserError as exc:
        st.error(one_line(exc))
        return
    runs_section(runs)
    failed_section(runs)


main()
