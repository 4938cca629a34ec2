"""Compare: one experiment (?experiment=ID, else the latest) or the runs picked on History.

Shows the verdict card (what to use, why, how settled, the rule as a tag; tolerance slider), the
per-clip table, the charts of ui/charts.py, which runs were cold, the monthly projection, an output
video, the same frame of each model/engine side by side, and the exports. On an empty history it
offers the bundled example experiments. The page only reads the store and draws; the analysis
comes from bench.experiments, the tables and numbers from ui.compare_view, the outputs from
ui.output_view.
"""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from bench import experiments
from bench.analysis import DEFAULT_TOLERANCE, Analysis
from bench.billing import BASES, DEFAULT_BASIS
from bench.escape import page_text
from core.errors import UserError, one_line
from core.status import ACTIVE_STATUSES
from store import runs as store_runs
from ui import (
    bill_view,
    charts,
    compare_view,
    delta_view,
    estimate_view,
    output_view,
    start_view,
    state,
    widgets,
)
from ui.labels import DETAIL_PATH, experiment_label, page_url, variant_label

# session_state key of the run ids picked on the History page (a docstring here would be
# drawn by Streamlit's magic).
COMPARE_RUNS_KEY = "compare_run_ids"
# Query parameters of a shared comparison: the experiments compared with ?experiment=ID, and the
# candidate chosen as the baseline.
WITH_PARAM = "with"
BASELINE_PARAM = "baseline"


def choose_subject(experiments: pd.DataFrame) -> tuple[str, str | list[str]] | None:
    """('runs', ids) for the History selection, ('experiment', id) otherwise; None if nothing."""
    picked = list(st.session_state.get(COMPARE_RUNS_KEY) or [])
    if picked:
        mode = st.radio("Compare", [f"the {len(picked)} runs picked on History", "an experiment"],
                        horizontal=True, key="compare_mode")
        if mode.startswith("the "):
            if st.button("Clear the picked runs", key="compare_clear"):
                st.session_state[COMPARE_RUNS_KEY] = []
                st.rerun()
            return "runs", picked
    if experiments.empty:
        return None
    ids = experiments["id"].tolist()
    labels = {row["id"]: experiment_label(row) for row in experiments.to_dict("records")}
    wanted = state.selected_experiment()
    index = ids.index(wanted) if wanted in ids else 0
    if wanted and wanted not in ids:
        st.warning(f"Experiment {page_text(wanted)} is not in the database; showing the latest "
                   f"instead.")
    chosen = st.selectbox("Experiment", ids, index=index, format_func=labels.get,
                          key="compare_experiment")
    if chosen != wanted:
        state.select_experiment(chosen)
    others = [i for i in ids if i != chosen]
    state.start_from_url("compare_with", [i for i in st.query_params.get_all(WITH_PARAM)
                                          if i in others])
    if "compare_with" in st.session_state:  # another experiment chosen above: never itself
        st.session_state["compare_with"] = [i for i in st.session_state["compare_with"]
                                            if i in others]
    with_ids = st.multiselect("Compare with", others, format_func=labels.get, key="compare_with",
                              placeholder="Add other experiments: their candidates join this one's")
    state.keep_in_url(**{WITH_PARAM: with_ids})
    if with_ids:
        return "experiments", [chosen, *with_ids]
    return "experiment", chosen


def experiment_caption(experiment_id: str) -> None:
    """One line about the experiment (source, model, engine, backend, price table), and what an
    imported file says about its own numbers."""
    row = store_runs.get_experiment(state.database(), experiment_id)
    if row is None:
        return
    parts = [f"source {row.source}" if row.source else None,
             f"model {row.model}" if row.model else None,
             f"engine {row.engine}" if row.engine else None,
             f"backend {row.backend}" if row.backend else None,
             f"prices of {row.price_table_date}" if row.price_table_date else None,
             "imported" if row.origin == "import" else None]
    st.caption(page_text(" · ".join(p for p in parts if p)))
    notes = experiments.plan_dict(row).get("notes") if row.origin == "import" else None
    if notes:
        st.info(page_text(notes), icon=":material/description:")


# Width of one of the bill's headline numbers: they wrap onto new lines instead of being cut.
METRIC_WIDTH = 230
# Width of the projection's clip-length mix (both its columns whole at 800 px).
PROJECTION_MIX_WIDTH = 360
LIVE_SECONDS = 3.0
# How often the page looks for runs that finished while it is open (seconds).


def active_note(runs: pd.DataFrame) -> None:
    """While runs are still going, say so and rerun the page when one of them finishes (a fragment
    polls the store; nothing blocks)."""
    if runs.empty:
        return
    active = runs[runs["status"].isin(ACTIVE_STATUSES)]
    if not active.empty:
        watch_runs(tuple(active["id"]))


@st.fragment(run_every=LIVE_SECONDS)
def watch_runs(active_ids: tuple[str, ...]) -> None:
    """Rerun the whole page once any of these runs has finished."""
    now = store_runs.list_runs(state.database(), run_ids=list(active_ids))
    still = now[now["status"].isin(ACTIVE_STATUSES)]
    if len(still) < len(active_ids):
        st.rerun(scope="app")
    st.info(f"{len(still)} run(s) still queued or running: the comparison shows the finished "
            f"ones and updates as the others finish (watch their progress on the Run page).")


def verdict_card(analysis: Analysis | None, why: str | None) -> None:
    """The decision (ui.widgets.verdict_card), or why there is none yet."""
    if analysis is None:
        st.subheader("Verdict")
        st.info(f"No verdict yet: {page_text(why)}. Runs that succeed appear here — start one on the Run page.")
        return
    widgets.verdict_card(analysis)


def any_imported(runs: pd.DataFrame) -> bool:
    """Whether some of the runs come from an imported results file."""
    db = state.database()
    for experiment_id in runs["experiment_id"].unique():
        row = store_runs.get_experiment(db, str(experiment_id))
        if row is not None and row.origin == "import":
            return True
    return False


def tables(analysis: Analysis, runs: pd.DataFrame) -> None:
    """Per-clip table, each candidate against the baseline, failed runs, cold/warm note."""
    st.subheader("Per clip")
    widgets.table(compare_view.clip_table(analysis), "per_clip", "per-clip", hide_index=True,
                  height="content",
                 column_config={
                     "Clip": st.column_config.TextColumn(pinned=True),
                     "GPU": st.column_config.TextColumn("GPU", pinned=True,
                                                        help="The candidate: a GPU or device, "
                                                             "with the engine or model when "
                                                             "several are compared"),
                     "Cheapest": st.column_config.TextColumn(width="medium"),
                     "Spread": st.column_config.TextColumn(
                         help="Fastest to slowest repeat"),
                 })
    st.caption(page_text(compare_view.cold_warm_note(runs, imported=any_imported(runs))))
    if len(analysis.gpus) > 1:
        st.subheader("Against the baseline")
        st.caption("Each candidate's cost and time against the baseline's on the same clip: "
                   "green is cheaper or faster, red dearer or slower.")
        deltas = delta_view.delta_table(analysis)
        widgets.table(delta_view.styled(deltas), "deltas", "against-baseline", hide_index=True,
                      height="content",
                      column_config={"Candidate": st.column_config.TextColumn(pinned=True)})
    failed = compare_view.failed_table(analysis)
    if not failed.empty:
        with st.expander(f"{len(failed)} run(s) not used (failed or unfinished)"):
            widgets.table(failed, "failed", "runs-not-used", hide_index=True, height="content",
                          column_config={"Reason": st.column_config.TextColumn(width="large")})


def chart_tabs(analysis: Analysis, runs: pd.DataFrame) -> None:
    """Every comparison chart, one tab each."""
    figures = {
        "Time": charts.time_bars(analysis),
        "FPS": charts.fps_bars(analysis),
        "Cost": charts.cost_bars(analysis),
        "Break-even": charts.break_even_chart(analysis),
        "Cost vs length": charts.cost_curves(analysis),
        "Stages": charts.stage_breakdown(runs),
        "Cold vs warm": charts.cold_warm_chart(runs),
        "Cost vs latency": charts.cost_latency_scatter(analysis),
    }
    tabs = st.tabs(list(figures))
    for tab, (name, fig) in zip(tabs, figures.items()):
        with tab:
            if name == "Cost vs latency" and len(analysis.summaries) > 1:
                clips = [s.clip for s in analysis.summaries if s.stats]
                clip = st.selectbox("Clips", ["All clips", *clips], key="scatter_clip")
                if clip != "All clips":
                    fig = charts.cost_latency_scatter(analysis, clip)
            st.plotly_chart(charts.names_as_text(fig), key=f"chart_{name}")


def projection_section(analysis: Analysis) -> None:
    """Clips per day x an editable mix of clip lengths -> $ per month per GPU."""
    st.subheader("Monthly projection")
    with st.container(horizontal=True, wrap=True):  # the inputs wrap on a narrow screen
        per_day = st.number_input("Clips per day", min_value=0.0, value=100.0, step=10.0,
                                  key="projection_per_day", width=200)
        mix = st.data_editor(compare_view.default_mix(analysis), num_rows="dynamic", hide_index=True,
                             key="projection_mix", width=PROJECTION_MIX_WIDTH, column_config={
                                 compare_view.MIX_LENGTH: st.column_config.NumberColumn(
                                     min_value=0.0, format="%.1f s"),
                                 compare_view.MIX_SHARE: st.column_config.NumberColumn(
                                     min_value=0.0, format="%.1f %%")})
    try:
        chosen = compare_view.mix_from_table(mix, analysis.fps)
        costs = compare_view.projection(analysis, per_day, chosen)
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    st.session_state[MIX_STATE] = chosen
    st.plotly_chart(charts.names_as_text(charts.monthly_projection_chart(costs, per_day)),
                    key="chart_projection")
    st.caption(page_text(compare_view.projection_sentence(costs)) + " Steady state, all-in (GPU, CPU and "
               "memory), from each candidate's fitted overhead + throughput in job seconds: the "
               "bill's 'Steady state per month' for the same mix.")


# session_state key of the projection's clip-length mix {frames: share}, which the bill's reuse
# table uses too. (A comment: Streamlit's magic would print a bare string on the page.)
MIX_STATE = "projection_mix_frames"


def projection_mix(analysis: Analysis) -> dict[float, float]:
    """The clip-length mix the projection uses: the user's (last drawn), else the default."""
    chosen = st.session_state.get(MIX_STATE)
    return chosen if chosen else compare_view.mix_from_table(compare_view.default_mix(analysis),
                                                             analysis.fps)


@st.cache_data(show_spinner=False, max_entries=64)
def frame_of(path: str, mtime: float, index: int):
    """Frame `index` of an output video (cached per file version)."""
    return output_view.read_frame(path, index)


def video_section(runs: pd.DataFrame) -> None:
    """An output video of a chosen run."""
    st.subheader("Output preview")
    done = output_view.runs_with_output(runs)
    if done.empty:
        st.info("No output videos stored for these runs yet (failed runs and imported results "
                "have none).")
        return
    rows = {r["id"]: r for r in done.to_dict("records")}
    pick, player = st.columns([1, 2])
    with pick:
        run_id = st.selectbox("Run", list(rows), key="preview_run",
                              format_func=lambda i: f"{rows[i]['clip']} · "
                                                    f"{variant_label(rows[i])}")
        row = rows[run_id]
        size = f"{int(row['output_width'])}x{int(row['output_height'])}" \
            if not pd.isna(row.get("output_width")) and not pd.isna(row.get("output_height")) else ""
        st.caption(page_text(" · ".join(p for p in (size, output_view.fidelity_text(row)) if p)))
        st.markdown(f"[Run details]({page_url(DETAIL_PATH, run=run_id)})")
    with player:
        widgets.output_video(row)


def side_by_side_section(runs: pd.DataFrame) -> None:
    """The same output frame of each model/engine on a clip, side by side, zoomable."""
    groups = output_view.side_by_side_clips(runs)
    if not groups:
        return
    st.subheader("Same frame, different models or engines")
    clip = st.selectbox("Clip", list(groups), key="sbs_clip") if len(groups) > 1 else \
        next(iter(groups))
    group = groups[clip]
    frames = int(group["frames_out"].min()) if group["frames_out"].notna().all() else 1
    top = st.columns(2)
    index = top[0].slider("Frame", 0, max(1, frames - 1), 0, key="sbs_frame",
                          disabled=frames < 2)
    zoom = top[1].slider("Zoom", 1.0, 8.0, 1.0, 0.5, key="sbs_zoom", format="%.1fx")
    bottom = st.columns(2)
    cx = bottom[0].slider("Zoom centre across (%)", 0, 100, 50, key="sbs_x", disabled=zoom == 1.0)
    cy = bottom[1].slider("Zoom centre down (%)", 0, 100, 50, key="sbs_y", disabled=zoom == 1.0)
    for column, row in zip(st.columns(len(group)), group.to_dict("records")):
        with column:
            try:
                path = widgets.output_path(row)
                image = frame_of(str(path), os.path.getmtime(path), index)
            except UserError as exc:
                st.error(page_text(one_line(exc)))
                continue
            crop = output_view.crop_region(image, zoom, cx / 100, cy / 100)
            st.image(output_view.enlarge(crop, int(zoom)),
                     caption=page_text(variant_label(row)), width="stretch")
            st.caption(page_text(output_view.fidelity_text(row)))


def exports_section(subject: tuple[str, str | list[str]]) -> None:
    """E6 JSON and markdown findings of the experiment."""
    st.subheader("Export")
    kind, value = subject
    if kind != "experiment":
        st.caption("Exports are per experiment: choose an experiment above to download its E6 JSON "
                   "and markdown findings.")
        return
    try:
        files, missing = compare_view.export_files(state.database(), str(value))
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    with widgets.button_row():
        for f in files:
            st.download_button(f"Download {f['label']}", f["data"], file_name=f["file_name"],
                               mime=f["mime"], key=f"export_{f['file_name']}", wrap=True,
                               icon=":material/download:")
    for reason in missing:
        st.caption(f"Not available — {page_text(reason)}")


def bill_section(runs: pd.DataFrame) -> None:
    """Steady-state cost beside this experiment's bill, queue waits, cold boots and containers,
    and the monthly cost with container reuse."""
    st.subheader("The bill")
    if runs.empty:
        return
    ids = list(dict.fromkeys(str(e) for e in runs["experiment_id"]))
    if len(ids) > 1:
        st.caption("A bill is per experiment: these runs come from several, so each bill is on "
                   "its own experiment's Compare page.")
        return
    db = state.database()
    experiment = store_runs.get_experiment(db, ids[0])
    records = runs.to_dict("records")
    try:
        bill = experiments.experiment_bill_in(db, experiment, records)
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    if not bill.containers:
        st.caption("No run of these came back with its container's facts (imported results, or "
                   "runs that failed before a container started), so there is no bill to show.")
        return
    with st.container(horizontal=True, wrap=True):  # whole labels and values at any width
        for label, value, help_text in bill_view.metrics(bill):
            st.metric(label, value, help=help_text, width=METRIC_WIDTH)
    st.caption(page_text(bill_view.breakdown_sentence(bill)))
    widgets.table(bill_view.gpu_table(bill), "bill_gpus", "bill-per-gpu", hide_index=True)
    with st.expander(f"{len(bill.containers)} container(s): boot, busy, idle and tail"):
        widgets.table(bill_view.container_table(bill), "bill_containers", "containers",
                      hide_index=True)
    try:
        steady = experiments.analyse_runs(experiment, records, basis="steady")
        per_day = float(st.session_state.get("projection_per_day", 100.0))
        table = bill_view.reuse_table(steady, bill, per_day, projection_mix(steady))
    except UserError:
        return
    if not table.empty:
        st.markdown(f"**A month of {per_day:g} clips/day with container reuse** (clips arriving "
                    f"at random; a container idles up to {bill.scaledown_window:g} s, then "
                    f"scales down)")
        widgets.table(table, "bill_reuse", "month-with-reuse", hide_index=True)


def estimate_section(runs: pd.DataFrame) -> None:
    """The estimate stored when the experiment was created against what its runs took."""
    ids = list(dict.fromkeys(str(e) for e in runs["experiment_id"])) if not runs.empty else []
    if len(ids) != 1:
        return
    plan = experiments.plan_dict(store_runs.get_experiment(state.database(), ids[0]))
    table = estimate_view.checks_table(plan, runs.to_dict("records"))
    if not table.empty:
        st.subheader("Estimate vs actual")
        st.caption("What `estimate` said before the runs (job seconds and all-in cost of the runs "
                   "that succeeded) against what they took; later estimates use these runs.")
        st.dataframe(table, hide_index=True)


def analyse(subject: tuple[str, str | list[str]], tolerance: float, basis: str = DEFAULT_BASIS,
            baseline: str | None = None):
    """(analysis, why not, runs) of the chosen experiment(s) or runs, on a cost basis, against
    the baseline given (else the plan's)."""
    kind, value = subject
    if kind == "runs":
        return experiments.analyse_selection(state.database(), list(value), tolerance, basis,
                                             baseline)
    if kind == "experiments":
        return experiments.analyse_experiments(state.database(), list(value), tolerance, basis,
                                               baseline)
    return experiments.analyse_experiment(state.database(), str(value), tolerance, basis,
                                          baseline)


def choose_baseline(analysis: Analysis | None) -> str | None:
    """The baseline picker (the analysis's candidates; the plan's first by default), kept in the
    URL. Returns the candidate chosen when it is not the default one, else None."""
    if analysis is None or len(analysis.gpus) < 2:
        return None
    options = list(analysis.gpus)
    if st.session_state.get("compare_baseline") not in options:
        shared = st.query_params.get(BASELINE_PARAM)
        st.session_state["compare_baseline"] = shared if shared in options else \
            analysis.baseline_gpu
    chosen = st.selectbox("Baseline: the candidate the others are measured against", options,
                          key="compare_baseline")
    state.keep_in_url(**{BASELINE_PARAM: None if chosen == analysis.baseline_gpu else chosen})
    return None if chosen == analysis.baseline_gpu else chosen


def main() -> None:
    widgets.page_style()
    st.title("Compare")
    try:
        experiments = store_runs.list_experiments(state.database())
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    subject = choose_subject(experiments)
    if subject is None:
        st.markdown(start_view.INTRO)
        st.info("No experiments yet — load the bundled examples, start one on the Run page, or "
                "import an E6 results file on the History page.")
        widgets.examples_offer("compare_load_examples")
        return
    if subject[0] == "experiment":
        experiment_caption(str(subject[1]))
    with st.container(border=True):
        percent = st.slider("Tolerance: costs within this of the cheapest count as equal", 0, 50,
                            int(round(DEFAULT_TOLERANCE * 100)), format="%d%%",
                            key="compare_tolerance")
        basis = st.radio("Costs the verdict judges", list(BASES), format_func=BASES.get,
                         horizontal=True, key="compare_basis",
                         index=list(BASES).index(DEFAULT_BASIS))
        try:
            analysis, why, runs = analyse(subject, percent / 100, basis)
            baseline = choose_baseline(analysis)
            if baseline is not None:
                analysis, why, runs = analyse(subject, percent / 100, basis, baseline)
        except UserError as exc:
            st.error(page_text(one_line(exc)))
            return
        verdict_card(analysis, why)
    active_note(runs)
    if analysis is not None:
        tables(analysis, runs)
        chart_tabs(analysis, runs)
        projection_section(analysis)
        bill_section(runs)
        estimate_section(runs)
    video_section(runs)
    side_by_side_section(runs)
    exports_section(subject)


main()
