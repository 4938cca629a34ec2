"""Run page: set up a benchmark (source, clips, crop, output, models and engines, GPUs, repeats,
backend), launch it in the background, and watch its runs and charts fill in live.

Nothing long runs in this script: Run stores the experiment and starts `python -m bench execute`
(orchestrator.launch_detached); a fragment polls the store every second. The experiment id lives in
the URL (?experiment=ID), so a reload (or a new tab) picks the live view up again. The live view
comes first on the page, the form folded under it; without an experiment the page lists the ones
running now and the latest, then the form.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from bench.experiments import analyse_experiment
from bench.formatting import format_rate
from bench.liveness import recover_gone_runs
from bench.plan import BACKENDS, PRESETS, Plan
from core.errors import UserError, one_line
from core.job import ENGINES, PRECISIONS
from core.status import FAILED_STATUSES
from store import runs as store_runs
from ui import charts, crop_preview, live_run, run_form, state, widgets
from ui.labels import DETAIL_PATH, RUN_PATH, experiment_label, page_url
from workers.catalog import MODELS

# (Comments, not docstrings: Streamlit's magic would print a bare string on the page.)
# How often the live view reads the store while runs are active.
POLL_SECONDS = 1.0
# Form fields kept in session_state as 'run_<field>' (the widgets' keys).
FORM_KEYS = ("source_kind", "source", "scale_output", "output_width", "output_height", "fps",
             "models", "engines", "backend", "repeats")
# Form widgets keep their values while hidden (Modal and back) and across pages.
KEEP = "session"
# How many of the latest experiments the page lists when none is selected.
RECENT = 5


# --------------------------------------------------------------------------- cached look-ups


@st.cache_resource(show_spinner="Looking for local devices…")
def _local_devices() -> list[str]:
    from bench.backends.local import local_devices

    return local_devices()


@st.cache_data(show_spinner=False, max_entries=32)
def _source_info(kind: str, source: str, mtime: float) -> run_form.SourceInfo | None:
    return run_form.source_info(kind, source)


@st.cache_data(show_spinner="Drawing the crop preview…", max_entries=16)
def _crop_preview(kind: str, source: str, mtime: float, plan_json: dict,
                  info: run_form.SourceInfo) -> list:
    return crop_preview.crop_preview(kind, source, Plan.from_dict(plan_json), info)


def _mtime(kind: str, source: str) -> float:
    if kind != "file":
        return 0.0
    try:
        return os.path.getmtime(Path(source).expanduser())
    except OSError:
        return -1.0


# --------------------------------------------------------------------------- form state


def _apply_preset() -> None:
    """Fill the form from the preset chosen in the selectbox (on_change of 'run_preset')."""
    values = run_form.preset_form(st.session_state["run_preset"])
    for key in FORM_KEYS:
        st.session_state[f"run_{key}"] = values[key]
    gpus_key = "run_modal_gpus" if values["backend"] == "modal" else "run_local_gpus"
    st.session_state[gpus_key] = values["gpus"]
    st.session_state["run_clips_base"] = values["clips"]
    st.session_state["run_keyframes_base"] = values["keyframes"]
    st.session_state["run_table_version"] = st.session_state.get("run_table_version", 0) + 1


def _init_form() -> None:
    if "run_preset" not in st.session_state:
        st.session_state["run_preset"] = "demo"
        st.session_state.setdefault("run_modal_gpus", ["T4", "L4"])
        st.session_state.setdefault("run_local_gpus", ["cpu"])
        _apply_preset()
    if "run_clips_base" not in st.session_state:  # the tables' starting rows (not widgets)
        values = run_form.preset_form(st.session_state["run_preset"])
        st.session_state["run_clips_base"] = values["clips"]
        st.session_state["run_keyframes_base"] = values["keyframes"]


# --------------------------------------------------------------------------- the form


def _source_section() -> tuple[str, str]:
    st.subheader("Source")
    kind = st.radio("Source video", list(run_form.SOURCE_KINDS), key="run_source_kind",
                    format_func=run_form.SOURCE_KINDS.get, horizontal=True, persist_state=KEEP)
    if kind == "demo":
        st.caption(f"A synthetic clip ({run_form.DEMO_INFO.describe()}) with moving detail, "
                   "generated on this machine.")
        return kind, ""
    if kind == "file":
        source = st.text_input("Path to a video file on this machine", key="run_source",
                               placeholder="/path/to/video.mp4", persist_state=KEEP)
    else:
        source = st.text_input("Object key (USER/PATH in the configured storage)", key="run_source",
                               placeholder="modal_test/test_videos/clip.mp4", persist_state=KEEP)
    return kind, source.strip()


def _clips_section(fps: float) -> pd.DataFrame:
    st.subheader("Clips")
    st.caption("Trim ranges in seconds of the source (start inclusive, end exclusive).")
    version = st.session_state.get("run_table_version", 0)
    table = st.data_editor(
        st.session_state["run_clips_base"], key=f"run_clips_editor_{version}", num_rows="dynamic",
        hide_index=True, width="stretch",
        column_config={
            "name": st.column_config.TextColumn("Name", required=True),
            "start": st.column_config.NumberColumn("Start (s)", min_value=0.0, format="%.2f"),
            "end": st.column_config.NumberColumn("End (s)", min_value=0.0, format="%.2f"),
        })
    try:
        st.caption(run_form.clip_frames_text(run_form.clips_from_table(table), fps))
    except UserError:
        pass  # the problem is reported with the plan below
    return table


def _crop_section() -> pd.DataFrame:
    st.subheader("Crop keyframes")
    st.caption("A box (source pixels) per moment; boxes in between are interpolated. "
               "No rows: the whole frame.")
    version = st.session_state.get("run_table_version", 0)
    return st.data_editor(
        st.session_state["run_keyframes_base"], key=f"run_keyframes_editor_{version}",
        num_rows="dynamic", hide_index=True, width="stretch",
        column_config={
            "time": st.column_config.NumberColumn("Time (s)", min_value=0.0, format="%.2f"),
            "x": st.column_config.NumberColumn("x (px)", min_value=0, step=1),
            "y": st.column_config.NumberColumn("y (px)", min_value=0, step=1),
            "width": st.column_config.NumberColumn("Width (px)", min_value=1, step=1),
            "height": st.column_config.NumberColumn("Height (px)", min_value=1, step=1),
        })


def _output_section() -> None:
    st.subheader("Output, models and engines")
    left, middle, right = st.columns(3)
    with left:
        scale = st.checkbox("Keep the model's scale", key="run_scale_output", persist_state=KEEP,
                            help="Off: resize the upscaled frames to the size below.")
        size = st.columns(2)
        size[0].number_input("Width (px)", min_value=16, step=2, key="run_output_width",
                             disabled=scale, persist_state=KEEP)
        size[1].number_input("Height (px)", min_value=16, step=2, key="run_output_height",
                             disabled=scale, persist_state=KEEP)
    with middle:
        st.number_input("Frames per second", min_value=1.0, max_value=240.0, step=1.0,
                        key="run_fps", persist_state=KEEP,
                        help="Frame rate of the source's clips and of the output.")
        st.multiselect("Models (each is compared)", MODELS, key="run_models", persist_state=KEEP)
    with right:
        st.multiselect("Engines (each is compared)", ENGINES, key="run_engines", persist_state=KEEP,
                       help="fast: batched, half precision on GPUs; reference: the original "
                            "RealESRGANer loop, frame by frame. Every model x engine runs on "
                            "every GPU, each a candidate of the verdict; the first is the "
                            "baseline's.")
        st.number_input("Repeats", min_value=1, max_value=20, step=1, key="run_repeats",
                        persist_state=KEEP,
                        help="Runs of each clip on each candidate; medians and spreads come "
                             "from these.")
    with st.expander("Advanced"):
        cols = st.columns(3)
        cols[0].selectbox("Precision", PRECISIONS, key="run_precision", persist_state=KEEP)
        cols[1].text_input("Weights", value="auto", key="run_weights", persist_state=KEEP,
                           help="auto (official, cached or converted), random (timing only) "
                                "or a path to a .pth file")
        cols[2].number_input("Batch size (fast engine)", min_value=1, max_value=64, value=4,
                             key="run_batch_size", persist_state=KEEP)


def _gpu_section() -> list[str]:
    st.subheader("Where to run")
    backend = st.radio("Backend", BACKENDS, key="run_backend", horizontal=True, persist_state=KEEP,
                       format_func={"local": "local (this machine)", "modal": "Modal (cloud GPUs)"}.get)
    prices = state.prices()
    if backend == "modal":
        gpus = st.multiselect("GPUs (the first is the baseline)", list(prices.gpus),
                              key="run_modal_gpus", persist_state=KEEP,
                              format_func=lambda g: run_form.gpu_label(g, prices))
        st.caption(f"Prices of {prices.date} — {prices.source}. Edit them on the Settings page.")
        return gpus
    devices = _local_devices()
    if "run_local_gpus" in st.session_state:
        st.session_state["run_local_gpus"] = [d for d in st.session_state["run_local_gpus"]
                                              if d in devices]
    chosen = st.multiselect("Devices (the first is the baseline)", devices, key="run_local_gpus",
                            persist_state=KEEP)
    specs = []
    for device in chosen:
        if device == "cpu":
            st.caption(f"cpu is priced at {format_rate(prices.cpu_core_per_second)} per "
                       f"core-second x {os.cpu_count() or 1} cores.")
            specs.append(device)
            continue
        options = ["(match the device's name)", *prices.gpus]
        card = st.selectbox(f"Price {device} as", options, key=f"run_price_{device}",
                            persist_state=KEEP)
        specs.append(run_form.local_gpu_spec(device, None if card == options[0] else card))
    return specs


def _form_values(kind: str, source: str, clips: pd.DataFrame, keyframes: pd.DataFrame,
                 gpus: list[str]) -> dict:
    values = {key: st.session_state.get(f"run_{key}") for key in FORM_KEYS}
    values.update(source_kind=kind, source=source, clips=clips, keyframes=keyframes, gpus=gpus,
                  precision=st.session_state.get("run_precision"),
                  weights=st.session_state.get("run_weights"),
                  batch_size=st.session_state.get("run_batch_size"))
    return values


def _preview_section(kind: str, source: str, plan: Plan, info: run_form.SourceInfo | None) -> None:
    with st.expander("Crop preview", expanded=kind == "demo"):
        if info is None:
            st.info("The preview reads the source frames: it works for the demo clip and local "
                    "files (an object key is fetched only when the runs start).")
            return
        try:
            frames = _crop_preview(kind, source, _mtime(kind, source), plan.to_dict(), info)
        except UserError as exc:
            st.error(one_line(exc))
            return
        st.caption(f"Source {info.describe()}. The box drawn on each frame is what gets upscaled.")
        cols = st.columns(len(frames))
        for col, (t, box, image) in zip(cols, frames):
            col.image(image, width="stretch", caption=f"t = {t:.2f} s · crop {box.width}x{box.height} "
                                                      f"at ({box.x}, {box.y})")


# --------------------------------------------------------------------------- launch


def _estimate(plan: Plan):
    """The plan's estimate from the store's history (bench.estimate); None when it cannot be read."""
    from bench.estimate_history import estimate_in

    try:
        return estimate_in(state.db_path(), plan, state.prices())
    except UserError:
        return None


def _launch(plan: Plan, name: str) -> None:
    """Store the experiment and start its runs in the background; select it (the rerun that
    follows draws its live view at the top of the page)."""
    from bench.orchestrator import (
        check_clips_in_source,
        create_experiment,
        launch_detached,
        prepare_source,
    )
    from store.objects import open_object_store

    with st.spinner("Preparing the source and queuing the runs…"):
        storage = open_object_store(state.storage_config())
        source_key = prepare_source(plan.source, storage)
        check_clips_in_source(plan, source_key, storage)
        experiment_id, _ = create_experiment(state.database(), plan, source_key, state.prices(),
                                             name or None, _estimate(plan))
        launch_detached(state.db_path(), experiment_id)
    state.select_experiment(experiment_id)


def _plan_and_problems(values: dict) -> tuple[Plan | None, run_form.SourceInfo | None, list[str]]:
    """The plan (None when the form is not a valid plan), what is known of the source, and every
    reason it cannot launch."""
    from bench.backends.modal_backend import modal_token_present

    try:
        plan = run_form.plan_from_form(values)
    except UserError as exc:
        return None, None, [one_line(exc)]
    problems = []
    info = None
    try:
        info = _source_info(values["source_kind"], plan.source, _mtime(values["source_kind"], plan.source))
    except UserError as exc:
        problems.append(f"source: {one_line(exc)}")
    problems += run_form.source_problems(plan, info)
    try:
        storage = state.storage_config()
    except UserError as exc:
        return plan, info, problems + [f"storage: {one_line(exc)}"]
    problems += run_form.launch_problems(plan, storage, modal_token_present())
    return plan, info, problems


# --------------------------------------------------------------------------- live view


def _titled(figure, title: str):
    """The figure with a title short enough for a half-width column."""
    figure.update_layout(title_text=title)
    return figure


def _live_charts(analysis, runs: pd.DataFrame) -> None:
    st.caption("Bars are medians over repeats; whiskers span the fastest to the slowest repeat. "
               "The Compare page has every chart.")
    left, right = st.columns(2)
    left.plotly_chart(_titled(charts.time_bars(analysis), "Time per clip"), width="stretch",
                      key="live_time")
    right.plotly_chart(_titled(charts.cost_bars(analysis), "GPU cost per clip"), width="stretch",
                       key="live_cost")
    left.plotly_chart(_titled(charts.fps_bars(analysis), "Frames per second per clip"),
                      width="stretch", key="live_fps")
    right.plotly_chart(charts.stage_breakdown(runs), width="stretch", key="live_stages")


def _overall_bar(overall: live_run.ExperimentProgress) -> None:
    """The experiment's progress bar; red once runs have failed."""
    value = overall.fraction if not overall.finished else 1.0
    if overall.failures:
        with st.container(key=widgets.FAILED_PROGRESS_KEY):
            st.progress(value, text=f":red[{overall.headline()}]")
    else:
        st.progress(value, text=overall.headline())


def _live_view(experiment_id: str, was_active: bool) -> None:
    """Progress of every run (elapsed time and the time left) and the charts so far; reruns the
    page once everything has ended."""
    analysis, why, runs = analyse_experiment(state.database(), experiment_id)
    overall = live_run.experiment_progress(runs)
    _overall_bar(overall)
    rows = live_run.progress_rows(runs)
    for row in rows:  # failures first and always in view, with their reasons
        if row.status in FAILED_STATUSES:
            st.error(row.text + _details(row.run_id))
    going = [r for r in rows if r.status not in FAILED_STATUSES]
    label = f"Each run ({len(going)})" if not overall.finished else \
        f"Each run ({len(going)}, all ended)"
    with st.expander(label, expanded=not overall.finished, icon=":material/list:"):
        for row in going:
            st.progress(row.fraction, text=row.text + _details(row.run_id))
    if analysis is None:
        st.caption("Charts appear here as soon as a run succeeds." if not overall.finished
                   else f"No charts: {why}.")
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


def _experiment_section(experiment_id: str) -> None:
    db = state.database()
    experiment = store_runs.get_experiment(db, experiment_id)
    if experiment is None:
        st.warning(f"No experiment {experiment_id} in {state.db_path()}: start a run below.")
        return
    st.subheader(f"Experiment: {experiment.name}")
    st.caption(f"id {experiment.id} · {experiment.backend or 'unknown'} backend · started "
               f"{experiment.created_at:%Y-%m-%d %H:%M:%S} UTC · prices {experiment.price_table_date}")
    with widgets.button_row():
        if st.button("Compare", key="run_compare", icon=":material/bar_chart:", wrap=True,
                     help="Open the comparison of this experiment."):
            widgets.switch_page(widgets.COMPARE_PAGE, **{state.EXPERIMENT_PARAM: experiment_id})
        if st.button("Close", key="run_close", icon=":material/close:", wrap=True,
                     help="Back to the running and latest experiments and a new run."):
            state.select_experiment(None)
            st.rerun()
    runs = store_runs.list_runs(db, experiment_id=experiment_id)
    active = not live_run.experiment_progress(runs).finished
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


def _recent_section() -> None:
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


def _form_section() -> None:
    kind, source = _source_section()
    clips = _clips_section(float(st.session_state.get("run_fps") or 1.0))
    keyframes = _crop_section()
    _output_section()
    gpus = _gpu_section()
    values = _form_values(kind, source, clips, keyframes, gpus)
    plan, info, problems = _plan_and_problems(values)
    if plan is not None:
        _preview_section(kind, source, plan, info)
    st.divider()
    name = st.text_input("Experiment name (optional)", key="run_name",
                         placeholder="e.g. x4plus on T4 vs L4, 3 clips")
    if plan is not None and not problems:
        st.caption(f"{plan.run_count()} run{'s' if plan.run_count() != 1 else ''}: "
                   f"{len(plan.clips)} clip(s) x {len(plan.candidates())} candidate(s) "
                   f"({', '.join(plan.candidates())}) x {plan.repeats} repeat(s) on the "
                   f"{plan.backend} backend; baseline {plan.baseline}.")
    max_cost = st.number_input("Spend cap, $ (optional)", min_value=0.0, value=None,
                               step=0.5, key="run_max_cost", format="%.2f",
                               help="Refuse the plan when its estimated cost (the high end) "
                                    "is above this, as `run --max-cost` does.")
    estimate = _estimate(plan) if plan is not None else None
    if estimate is not None:
        problems = problems + run_form.cap_problems(estimate, max_cost)
    for problem in problems:
        st.warning(f"Cannot run yet: {problem}")
    confirmed = True
    button, beside = st.columns([1, 4], vertical_alignment="center")
    with beside:
        if estimate is not None and plan.backend == "modal" and not problems:
            confirmed = st.checkbox(run_form.confirm_label(estimate), key="run_confirm_spend")
        elif estimate is not None:
            st.text(f"Estimate: {estimate.summary()}")
    with button:
        launch = st.button("Run", type="primary", key="run_launch",
                           disabled=bool(problems) or not confirmed, icon=":material/play_arrow:")
    if launch:
        try:
            _launch(plan, name)
        except UserError as exc:
            st.error(one_line(exc))
        else:
            # The form folds away (keeping what was run as its tables' rows), so the page is the
            # live view at its top: nothing to scroll to.
            st.session_state["run_clips_base"] = clips
            st.session_state["run_keyframes_base"] = keyframes
            st.session_state["run_table_version"] = st.session_state.get("run_table_version", 0) + 1
            st.session_state["run_fold_form"] = True
            st.rerun()


# --------------------------------------------------------------------------- page


def main() -> None:
    widgets.page_style()
    st.title("Run a benchmark")
    _init_form()
    selected = state.selected_experiment()
    if st.session_state.pop("run_fold_form", False):
        st.session_state["run_show_form"] = False
    if selected:
        _experiment_section(selected)
        st.divider()
        show = st.toggle("Set up another run", key="run_show_form")
    else:
        _recent_section()
        show = True
    if show:
        st.selectbox("Preset", list(PRESETS), key="run_preset", on_change=_apply_preset,
                     help="Fills the form below; change anything afterwards.", persist_state=KEEP,
                     format_func=lambda p: {
                         "demo": "demo — two engines on this machine's CPU, in seconds",
                         "e6": "e6 — the original T4 vs L4 experiment on Modal"}.get(p, p))
        _form_section()


main()
