"""The Run page's live view of one experiment (progress of every run, the verdict and charts so far,
polled from the store by a fragment) and, without one, the experiments running now and the latest.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bench.escape import page_text
from bench.experiments import analyse_experiment
from bench.liveness import recover_gone_runs
from core.status import CANCELLED, FAILED_STATUSES
from store import runs as store_runs
from ui import charts, live_run, manage_section, state, widgets
from ui.labels import DETAIL_PATH, RUN_PATH, experiment_label, page_url

# (Comments, not docstrings: Streamlit's magic would print a bare string on the page.)
# How often the live view reads the store while runs are active.
POLL_SECONDS = 1.0
# How many of the latest experiments the page lists when none is selected.
RECENT = 5


# --------------------------------------------------------------------------- live view


def _titled(figure, title: str):
    """The figure with a title short enough for a half-width column."""
    figure.update_layout(title_text=title)
    return figure


def _live_charts(analysis, runs: pd.DataFrame) -> None:
    st.caption("Bars are medians over repeats; whiskers span the fastest to the slowest repeat. "
               "The Compare page has every chart.")
    left, right = st.columns(2)
    left.plotly_chart(charts.names_as_text(_titled(charts.time_bars(analysis), "Time per clip")),
                      width="stretch", key="live_time")
    right.plotly_chart(charts.names_as_text(_titled(charts.cost_bars(analysis), "GPU cost per clip")),
                       width="stretch", key="live_cost")
    left.plotly_chart(charts.names_as_text(_titled(charts.fps_bars(analysis),
                                                  "Frames per second per clip")),
                      width="stretch", key="live_fps")
    right.plotly_chart(charts.names_as_text(charts.stage_breakdown(runs)), width="stretch",
                       key="live_stages")


def _overall_bar(overall: live_run.ExperimentProgress) -> None:
    """The experiment's progress bar; red once runs have failed (runs the user cancelled are not
    failures)."""
    value = overall.fraction if not overall.finished else 1.0
    if overall.failures > overall.counts.get(CANCELLED, 0):
        with st.container(key=widgets.FAILED_PROGRESS_KEY):
            st.progress(value, text=f":red[{page_text(overall.headline())}]")
    else:
        st.progress(value, text=page_text(overall.headline()))


def _live_view(experiment_id: str, was_active: bool) -> None:
    """Progress of every run (elapsed time and the time left) and the charts so far; reruns the
    page once everything has ended."""
    analysis, why, runs = analyse_experiment(state.database(), experiment_id)
    overall = live_run.experiment_progress(runs)
    _overall_bar(overall)
    rows = live_run.progress_rows(runs)
    for row in rows:  # failures first and always in view, with their reasons
        if row.status == CANCELLED:
            st.warning(row.text + _details(row.run_id))
        elif row.status in FAILED_STATUSES:
            st.error(row.text + _details(row.run_id))
    going = [r for r in rows if r.status not in FAILED_STATUSES]
    # Counted the way the headline counts: of every run, those listed here (the others are the
    # failures above).
    ended = ", all ended" if overall.finished else ""
    label = (f"Each run ({len(rows)}{ended})" if len(going) == len(rows) else
             f"The other runs ({len(going)} of {len(rows)}{ended})")
    with st.expander(label, expanded=not overall.finished, icon=":material/list:"):
        for row in going:
            st.progress(row.fraction, text=row.text + _details(row.run_id))
    if analysis is None:
        st.caption("Charts appear here as soon as a run succeeds." if not overall.finished
                   else f"No charts: {page_text(why)}.")
    else:
        widgets.verdict_card(analysis, "Verdict" if overall.finished else "Verdict so far")
        _live_charts(analysis, runs)
    if was_active and overall.finished:
        st.rerun()


def _details(run_id: str) -> str:
    return f" · [details]({page_url(DETAIL_PATH, run=run_id)})"


def _reattach_offer(experiment_id: str, runs) -> None:
    """Modal runs go on remotely when the process polling them stops: offer to collect them again."""
    orphans = live_run.orphaned_modal_runs(runs)
    if not orphans:
        return
    st.warning(f"{len(orphans)} Modal run(s) are still running remotely, but the process that "
               f"collects their results has stopped.")
    if st.button("Reattach and collect their results", key="run_reattach"):
        from bench.orchestrator import launch_detached

        launch_detached(state.db_path(), experiment_id)
        st.rerun()


def experiment_section(experiment_id: str) -> None:
    """The experiment's title, actions, live view and background log."""
    db = state.database()
    experiment = store_runs.get_experiment(db, experiment_id)
    if experiment is None:
        st.warning(page_text(f"No experiment {experiment_id} in {state.db_path()}: start a run "
                             f"below."))
        return
    st.subheader(f"Experiment: {page_text(experiment.name)}")
    st.caption(page_text(f"id {experiment.id} · {experiment.backend or 'unknown'} backend · "
                         f"started {experiment.created_at:%Y-%m-%d %H:%M:%S} UTC · prices "
                         f"{experiment.price_table_date}"))
    runs = store_runs.list_runs(db, experiment_id=experiment_id)
    active = not live_run.experiment_progress(runs).finished
    with widgets.button_row():
        if active:
            manage_section.stop_button(experiment_id)
        if st.button("Compare", key="run_compare", icon=":material/bar_chart:", wrap=True,
                     help="Open the comparison of this experiment."):
            widgets.switch_page(widgets.COMPARE_PAGE, **{state.EXPERIMENT_PARAM: experiment_id})
        if st.button("Close", key="run_close", icon=":material/close:", wrap=True,
                     help="Back to the running and latest experiments and a new run."):
            state.select_experiment(None)
            st.rerun()
    manage_section.manage_panel(experiment, active)
    if active:
        recover_gone_runs(db)
        _reattach_offer(experiment_id, runs)
    st.fragment(run_every=POLL_SECONDS if active else None)(_live_view)(experiment_id, active)
    log = live_run.launch_log_tail(state.db_path(), experiment_id)
    with st.expander("Background process log"):
        if log:
            st.code(log, language=None)
        else:
            st.caption("Nothing logged: runs started from the CLI print to its terminal instead.")


def recent_section() -> None:
    """What is running now and the latest experiments, each a link to its live view."""
    if not state.db_path().exists():  # drawing the page never creates the database
        return
    db = state.database()
    active = store_runs.active_runs(db)
    recent = store_runs.list_experiments(db, limit=RECENT)
    if recent.empty:
        return
    running = set(active["experiment_id"]) if not active.empty else set()
    st.subheader("Running now" if running else "Latest experiments")
    rows = recent.to_dict("records")
    for row in sorted(rows, key=lambda r: r["id"] not in running):
        widgets.page_link(widgets.RUN_PAGE, RUN_PATH,
                          ("Running: " if row["id"] in running else "") + experiment_label(row),
                          icon=":material/autorenew:" if row["id"] in running else
                          ":material/history:", **{state.EXPERIMENT_PARAM: row["id"]})
