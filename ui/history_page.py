"""History: every experiment and run (each row linked to its comparison or its detail page),
filters (GPU, model, status, date), picking runs or an experiment to compare, failed runs with
their reasons, and importing an E6 results file. The tables come from ui.history_view."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bench.escape import page_text
from bench.experiments import read_runs_in
from core.errors import UserError, one_line
from core.status import RUN_STATUSES
from store import runs as store_runs
from ui import history_view, state, widgets
from ui.labels import COMPARE_PATH, experiment_label, run_label_long

# session_state key the Compare page reads the picked run ids from (a comment, not a docstring:
# Streamlit's magic would draw a bare string).
COMPARE_RUNS_KEY = "compare_run_ids"
# Width of one filter box: they wrap onto a new line instead of shrinking until cut.
FILTER_WIDTH = 220


def go_to_compare(experiment_id: str | None = None) -> None:
    """Open the Compare page (on the experiment, when given). Run standalone (no navigation),
    say where to go instead."""
    query = {state.EXPERIMENT_PARAM: experiment_id} if experiment_id else {}
    if not widgets.switch_page(widgets.COMPARE_PAGE, **query):
        st.info("Saved: open the Compare page to see the comparison.")


def link_column(label: str, help_text: str, pinned: bool = True) -> st.column_config.LinkColumn:
    """A column of links showing the short id they lead to."""
    return st.column_config.LinkColumn(label, display_text=history_view.LINK_ID_PATTERN,
                                       help=help_text, pinned=pinned, width="small")


def import_section() -> None:
    """Upload an E6 results JSON and store it as an experiment; link to its comparison."""
    with st.expander("Import an E6 results file", icon=":material/upload:"):
        upload = st.file_uploader("E6 results JSON", type=["json"], key="history_upload")
        if st.button("Import", key="history_import", disabled=upload is None, wrap=True):
            try:
                experiment_id = history_view.import_e6_upload(state.database(),
                                                              upload.getvalue(), upload.name)
            except UserError as exc:
                st.error(page_text(one_line(exc)))
                return
            st.session_state["history_imported"] = (upload.name, experiment_id)
        imported = st.session_state.get("history_imported")
        if imported:
            name, experiment_id = imported
            st.success(f"Imported {page_text(name)} as experiment {experiment_id[:8]}, dated by the file's "
                       "own timestamp.")
            widgets.page_link(widgets.COMPARE_PAGE, COMPARE_PATH, "Open its comparison",
                              icon=":material/bar_chart:", **{state.EXPERIMENT_PARAM: experiment_id})


def experiments_section(experiments: pd.DataFrame) -> None:
    """The experiments, newest first, each linked to its comparison (searchable by name, notes
    and tags), and a button to compare one."""
    st.subheader("Experiments")
    state.start_from_url("history_search", st.query_params.get("q"))
    text = st.text_input("Search names, notes and tags", key="history_search",
                         placeholder="e.g. h200 fast", icon=":material/search:")
    state.keep_in_url(q=text.strip())
    experiments = history_view.search_experiments(experiments, text)
    if experiments.empty:
        st.info("No experiment matches the search.")
        return
    widgets.table(history_view.experiments_display(experiments), "history_experiments",
                  "experiments", hide_index=True,
                 column_config={
                     "Experiment": st.column_config.TextColumn(pinned=True),
                     "Notes": st.column_config.TextColumn(width="large"),
                     history_view.EXPERIMENT_LINK: link_column(
                         history_view.EXPERIMENT_LINK, "Open the experiment's comparison",
                         pinned=False),
                 })
    labels = {r["id"]: experiment_label(r) for r in experiments.to_dict("records")}
    with widgets.button_row():
        chosen = st.selectbox("Experiment to compare", list(labels), format_func=labels.get,
                              key="history_experiment", width=420)
        if st.button("Compare experiment", key="history_compare_experiment", wrap=True,
                     icon=":material/bar_chart:"):
            st.session_state[COMPARE_RUNS_KEY] = []
            state.select_experiment(chosen)
            go_to_compare(chosen)


def filters(facets: dict[str, list[str]]) -> dict:
    """The filter widgets (choices from store_runs.run_facets), wrapping on narrow screens, set
    from the URL and written back to it (a filtered view can be shared); returns the keyword
    arguments of history_view.runs_query."""
    st.subheader("Runs")
    choices = {"gpu": facets["gpu"], "model": facets["model"], "status": list(RUN_STATUSES)}
    for name, options in choices.items():
        state.start_from_url(f"filter_{name}",
                             [v for v in st.query_params.get_all(name) if v in options])
    for name in ("from", "to"):
        state.start_from_url(f"filter_{name}", history_view.parse_date(st.query_params.get(name)))
    with st.container(horizontal=True, wrap=True):
        gpus = st.multiselect("GPU", facets["gpu"], key="filter_gpu", width=FILTER_WIDTH)
        models = st.multiselect("Model", facets["model"], key="filter_model", width=FILTER_WIDTH)
        statuses = st.multiselect("Status", list(RUN_STATUSES), key="filter_status",
                                  width=FILTER_WIDTH)
        start = st.date_input("From", value=None, key="filter_from", width=FILTER_WIDTH)
        end = st.date_input("To", value=None, key="filter_to", width=FILTER_WIDTH)
    state.keep_in_url(gpu=gpus, model=models, status=statuses,
                      **{"from": start.isoformat() if start else None,
                         "to": end.isoformat() if end else None})
    return dict(gpus=gpus, models=models, statuses=statuses, start=start, end=end)


def runs_section(runs: pd.DataFrame) -> None:
    """The filtered runs (each linked to its detail page), and picking some of them to compare."""
    if runs.empty:
        st.info("No runs match these filters — clear some of them.")
        return
    if len(runs) >= history_view.HISTORY_RUN_LIMIT:
        st.caption(f"The newest {len(runs)} matching runs; narrow the filters to reach older ones.")
    else:
        st.caption(f"{len(runs)} run(s); open one for its stages, log, output and device.")
    widgets.table(history_view.runs_display(runs), "history_runs", "runs", hide_index=True,
                 column_config={
                     history_view.RUN_LINK: link_column("Run", "Open the run's detail page"),
                     "Clip": st.column_config.TextColumn(pinned=True),
                     "Candidate": st.column_config.TextColumn(pinned=True),
                     history_view.JOB_TIME: st.column_config.NumberColumn(
                         history_view.JOB_TIME, format="%.1f s",
                         help="Job seconds: fetch to the end of the upload, less model load and "
                              "compile"),
                     "Device": st.column_config.TextColumn(width="medium"),
                     "Experiment": st.column_config.TextColumn(width="large"),
                 })
    labels = {r["id"]: run_label_long(r) for r in runs.to_dict("records")}
    picked = st.multiselect("Runs to compare", list(labels), format_func=labels.get,
                            key="history_pick",
                            placeholder="Choose runs (e.g. the same clip on several GPUs)")
    if st.button(f"Compare {len(picked)} picked run(s)", key="history_compare_runs",
                 disabled=not picked, wrap=True, icon=":material/bar_chart:"):
        st.session_state[COMPARE_RUNS_KEY] = list(picked)
        go_to_compare()


def failed_section(runs: pd.DataFrame) -> None:
    """Failed and interrupted runs with their reasons."""
    failed = history_view.failed_runs(runs)
    st.subheader("Failed runs")
    if failed.empty:
        st.caption("No failed runs among these.")
        return
    widgets.table(failed, "history_failed", "failed-runs", hide_index=True,
                 column_config={
                     history_view.RUN_LINK: link_column("Run", "Open the run's detail page"),
                     "Reason": st.column_config.TextColumn(width="large"),
                 })


def main() -> None:
    widgets.page_style()
    st.title("History")
    import_section()
    try:
        db = state.database()
        experiments = store_runs.list_experiments(db)
        if experiments.empty:
            st.info("No experiments yet — start one on the Run page, or import an E6 results file "
                    "above.")
            widgets.examples_offer("history_load_examples")
            return
        experiments_section(experiments)
        chosen = filters(store_runs.run_facets(db))
        runs = read_runs_in(db, store_runs.list_runs(db, **history_view.runs_query(**chosen)))
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    runs_section(runs)
    failed_section(runs)


main()
