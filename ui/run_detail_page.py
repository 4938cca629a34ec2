"""Run detail (/run-detail?run=ID, a permalink): one run's outcome, where it ran (device,
container, worker), its stages, what the background process logged about it, its output video
and fidelity. Reached from the links of the Run page's progress rows, History and Compare. The
data comes from ui.run_detail_view and ui.live_run."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bench.escape import page_text
from bench.experiments import read_runs_in, run_titles
from core.errors import UserError, one_line
from core.status import CANCELLED, FAILED, INTERRUPTED, SUCCEEDED
from store import runs as store_runs
from ui import charts, live_run, output_view, run_detail_view, state, widgets
from ui.labels import COMPARE_PATH, RUN_PATH, run_label_long

# Query parameter naming the run (a comment, not a docstring: Streamlit's magic would draw it).
RUN_PARAM = "run"
# How many recent runs the picker offers when the URL names none.
RECENT_RUNS = 50


def _pick_run() -> str | None:
    """The run named in the URL, else one picked from the latest runs (then put in the URL)."""
    wanted = st.query_params.get(RUN_PARAM)
    if wanted:
        return wanted
    runs = store_runs.list_runs(state.database(), limit=RECENT_RUNS) \
        if state.db_path().exists() else pd.DataFrame()
    if runs.empty:
        st.info("No runs yet: start one on the Run page.")
        return None
    labels = {r["id"]: run_label_long(r) for r in runs.to_dict("records")}
    chosen = st.selectbox("Run", list(labels), format_func=labels.get, index=None,
                          placeholder="Choose one of the latest runs", key="detail_pick")
    if chosen:
        st.query_params[RUN_PARAM] = chosen
    return chosen


def _summary(row: dict, title: str) -> None:
    kind = {SUCCEEDED: st.success, FAILED: st.error, INTERRUPTED: st.warning,
            CANCELLED: st.warning}.get(
        row["status"], st.info)
    kind(live_run.progress_row(row, title).text)


def main() -> None:
    widgets.page_style()
    st.title("Run detail")
    try:
        run_id = _pick_run()
        if run_id is None:
            return
        runs = store_runs.list_runs(state.database(), run_ids=[run_id])
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    if runs.empty:
        st.warning(page_text(f"No run {run_id} in {state.db_path()}."))
        return
    experiment_id = str(runs["experiment_id"].iloc[0])
    # Read among its experiment's runs: named and priced as there ('cpu · fast · ...').
    siblings = read_runs_in(state.database(),
                            store_runs.list_runs(state.database(), experiment_id=experiment_id))
    row = next(r for r in siblings.to_dict("records") if str(r["id"]) == run_id)
    title = run_titles(siblings)[run_id]
    st.subheader(page_text(title))
    st.caption(page_text(f"Experiment: {row.get('experiment_name')} · run {run_id}"))
    link = run_detail_view.permalink(st.context.url, run_id)
    st.markdown(f"Permalink: [{page_text(link)}]({link})")
    with widgets.button_row():
        widgets.page_link(widgets.RUN_PAGE, RUN_PATH, "Its experiment, live",
                          icon=":material/play_arrow:", **{state.EXPERIMENT_PARAM: experiment_id})
        widgets.page_link(widgets.COMPARE_PAGE, COMPARE_PATH, "Its comparison",
                          icon=":material/bar_chart:", **{state.EXPERIMENT_PARAM: experiment_id})
    _summary(row, title)

    st.subheader("Where and what ran")
    # a static table wraps long values (storage keys, sha256) instead of cutting them at 800 px
    # st.table draws its cells as Markdown: each value is shown as text
    st.table(run_detail_view.run_facts(row).set_index("Fact").map(page_text))
    left, right = st.columns(2)
    with left:
        st.subheader("Stages")
        stages = run_detail_view.stage_table(row)
        if stages.empty:
            st.caption("No stage timings recorded (the run did not start, or it was imported).")
        else:
            st.dataframe(stages, hide_index=True, height="content")
            # Labelled among its experiment's runs ('cpu · fast'), drawn alone.
            alone = charts.stage_breakdown(siblings[siblings["id"] == run_id])
            st.plotly_chart(charts.names_as_text(alone), key="detail_stages")
    with right:
        st.subheader("Output")
        fidelity = output_view.fidelity_text(row)
        st.markdown(f"Fidelity: {page_text(fidelity)}")
        if output_view.runs_with_output(runs).empty:
            st.caption("No output video stored for this run.")
        else:
            widgets.output_video(row)

    st.subheader("Log")
    lines = live_run.run_log_lines(state.db_path(), experiment_id, run_id)
    if lines:
        st.code("\n".join(lines), language=None)
    else:
        st.caption("No log lines about this run: runs started from the CLI print to its terminal, "
                   "and imported runs have none.")


main()
