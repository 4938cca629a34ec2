"""The Run page's form: source, clips, crop, output, models and engines, GPUs, repeats and backend
-> a Plan, its problems, and Run (store the experiment, start `python -m bench execute` detached).

Form fields live in session_state as 'run_<field>' (the widgets' keys), kept across pages.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from bench.escape import page_text
from bench.formatting import format_rate
from bench.plan import BACKENDS, MAX_BATCH_SIZE, MAX_FPS, MAX_REPEATS, PRESETS, Plan
from core.errors import UserError, one_line
from core.job import ENGINES, PRECISIONS
from ui import crop_preview, run_form, state
from workers.catalog import MODELS

# (Comments, not docstrings: Streamlit's magic would print a bare string on the page.)
# Form fields kept in session_state as 'run_<field>' (the widgets' keys).
FORM_KEYS = ("source_kind", "source", "scale_output", "output_width", "output_height", "fps",
             "models", "engines", "backend", "repeats")
# Form widgets keep their values while hidden (Modal and back) and across pages.
KEEP = "session"


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
    _apply(run_form.preset_form(st.session_state["run_preset"]))


def _apply(values: dict, advanced: bool = False) -> None:
    """Put form values (run_form.plan_form) into the widgets' session_state; advanced: also
    precision, weights, batch size and the cards pricing local devices."""
    for key in FORM_KEYS:
        st.session_state[f"run_{key}"] = values[key]
    gpus_key = "run_modal_gpus" if values["backend"] == "modal" else "run_local_gpus"
    st.session_state[gpus_key] = values["gpus"]
    if advanced:
        for key in ("precision", "weights", "batch_size"):
            st.session_state[f"run_{key}"] = values[key]
        for device, card in values["price_cards"].items():
            st.session_state[f"run_price_{device}"] = card
    _set_tables(values["clips"], values["keyframes"])


def _set_tables(clips: pd.DataFrame, keyframes: pd.DataFrame) -> None:
    """New starting rows for the clips and keyframes tables (drawn afresh: a new editor key)."""
    st.session_state["run_clips_base"] = clips
    st.session_state["run_keyframes_base"] = keyframes
    st.session_state["run_table_version"] = st.session_state.get("run_table_version", 0) + 1


def fill_from_experiment(experiment_id: str) -> None:
    """Rerun: fill the form from a stored experiment's plan (named '<name> (rerun)') and unfold
    it. Meant as a button's on_click (it runs before the form's widgets are drawn)."""
    from bench.experiments import load_experiment, plan_of

    try:
        experiment = load_experiment(state.database(), experiment_id)
        values = run_form.plan_form(plan_of(experiment), experiment.source)
    except UserError as exc:
        st.session_state["run_rerun_problem"] = one_line(exc)
        st.session_state["run_show_form"] = True  # the form says why
        return
    _apply(values, advanced=True)
    if values["source_kind"] == "file":  # its own clips, not the source's defaults
        st.session_state["run_source_seen"] = (values["source"], _mtime("file", values["source"]))
    st.session_state["run_name"] = f"{experiment.name} (rerun)"
    st.session_state["run_show_form"] = True


def init_form() -> None:
    """Fill the form from the demo preset the first time the page is drawn in a session."""
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
    if kind == "upload":
        path = _upload_section()
        if path is None:
            return kind, ""
        kind, source = "file", path
    elif kind == "file":
        source = st.text_input("Path to a video file on this machine", key="run_source",
                               placeholder="/path/to/video.mp4", persist_state=KEEP)
    else:
        source = st.text_input("Object key (USER/PATH in the configured storage)", key="run_source",
                               placeholder="modal_test/test_videos/clip.mp4", persist_state=KEEP)
    source = source.strip()
    if kind == "file" and source:
        _follow_source(source)
    return kind, source


def _upload_section() -> str | None:
    """A video uploaded from the browser, kept in the local object store (the same file once);
    returns its path there, None until one is uploaded."""
    from store.objects import LocalDirectoryStore

    upload = st.file_uploader("Video file", type=list(run_form.UPLOAD_TYPES), key="run_upload",
                              help="Kept in the local object store; the runs read it from there "
                                   "(uploaded to R2 for Modal runs).")
    if upload is None:
        return None
    data = upload.getvalue()
    key = run_form.upload_key(data, upload.name)
    store = LocalDirectoryStore(state.storage_config().local_root)
    if not store.exists(key):
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"upload{Path(key).suffix}"
            path.write_bytes(data)
            store.put(path, key)
    return str(store.get(key))


def _follow_source(path: str) -> None:
    """When a new local file is chosen, its frame rate, clips and crop become the form's defaults
    (before those widgets are drawn in this run); a file that cannot be probed changes nothing
    (the problem is reported with the plan)."""
    seen = (path, _mtime("file", path))
    if st.session_state.get("run_source_seen") == seen:
        return
    st.session_state["run_source_seen"] = seen
    try:
        info = _source_info("file", path, seen[1])
    except UserError:
        return
    defaults = run_form.source_defaults(info)
    st.session_state["run_fps"] = defaults["fps"]
    _set_tables(defaults["clips"], defaults["keyframes"])
    st.caption(f"Clips, frame rate and crop now follow this source ({page_text(info.describe())}).")


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
        st.caption(page_text(run_form.clip_frames_text(run_form.clips_from_table(table), fps)))
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
        st.number_input("Frames per second", min_value=1.0, max_value=MAX_FPS, step=1.0,
                        key="run_fps", persist_state=KEEP,
                        help="Frame rate of the source's clips and of the output.")
        st.multiselect("Models (each is compared)", MODELS, key="run_models", persist_state=KEEP)
    with right:
        st.multiselect("Engines (each is compared)", ENGINES, key="run_engines", persist_state=KEEP,
                       help="fast: batched, half precision on GPUs; reference: the original "
                            "RealESRGANer loop, frame by frame. Every model x engine runs on "
                            "every GPU, each a candidate of the verdict; the first is the "
                            "baseline's.")
        st.number_input("Repeats", min_value=1, max_value=MAX_REPEATS, step=1, key="run_repeats",
                        persist_state=KEEP,
                        help="Runs of each clip on each candidate; medians and spreads come "
                             "from these.")
    with st.expander("Advanced"):
        cols = st.columns(3)
        cols[0].selectbox("Precision", PRECISIONS, key="run_precision", persist_state=KEEP)
        cols[1].text_input("Weights", value="auto", key="run_weights", persist_state=KEEP,
                           help="auto (official, cached or converted), random (timing only) "
                                "or a path to a .pth file")
        cols[2].number_input("Batch size (fast engine)", min_value=1, max_value=MAX_BATCH_SIZE, value=4,
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
        st.caption(f"Prices of {page_text(prices.date)} — {page_text(prices.source)}. Edit them "
                   "on the Settings page.")
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
            st.caption(page_text(f"cpu is priced at {format_rate(prices.cpu_core_per_second)} "
                                 f"per core-second x {os.cpu_count() or 1} cores."))
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
            st.error(page_text(one_line(exc)))
            return
        st.caption(f"Source {page_text(info.describe())}. The box drawn on each frame is what gets "
                   "upscaled.")
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


def form_section() -> None:
    """The preset picker, the form, its problems and the Run button."""
    problem = st.session_state.pop("run_rerun_problem", None)
    if problem:
        st.error(f"Cannot fill the form from that experiment: {page_text(problem)}")
    st.selectbox("Preset", list(PRESETS), key="run_preset", on_change=_apply_preset,
                 help="Fills the form below; change anything afterwards.", persist_state=KEEP,
                 format_func=lambda p: {
                     "demo": "demo — two engines on this machine's CPU, in seconds",
                     "e6": "e6 — the original T4 vs L4 experiment on Modal"}.get(p, p))
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
        st.caption(page_text(f"{plan.run_count()} run{'s' if plan.run_count() != 1 else ''}: "
                             f"{len(plan.clips)} clip(s) x {len(plan.candidates())} candidate(s) "
                             f"({', '.join(plan.candidates())}) x {plan.repeats} repeat(s) on the "
                             f"{plan.backend} backend; baseline {plan.baseline}."))
    max_cost = st.number_input("Spend cap, $ (optional)", min_value=0.0, value=None,
                               step=0.5, key="run_max_cost", format="%.2f",
                               help="Refuse the plan when its estimated cost (the high end) "
                                    "is above this, as `run --max-cost` does.")
    estimate = _estimate(plan) if plan is not None else None
    if estimate is not None:
        problems = problems + run_form.cap_problems(estimate, max_cost)
    for problem in problems:
        st.warning(f"Cannot run yet: {page_text(problem)}")
    confirmed = True
    button, beside = st.columns([1, 4], vertical_alignment="center")
    with beside:
        if estimate is not None and plan.backend == "modal" and not problems:
            confirmed = st.checkbox(page_text(run_form.confirm_label(estimate)),
                                    key="run_confirm_spend")
        elif estimate is not None:
            st.text(f"Estimate: {estimate.summary()}")
    with button:
        launch = st.button("Run", type="primary", key="run_launch",
                           disabled=bool(problems) or not confirmed, icon=":material/play_arrow:")
    if launch:
        try:
            _launch(plan, name)
        except UserError as exc:
            st.error(page_text(one_line(exc)))
        else:
            # The form folds away (keeping what was run as its tables' rows), so the page is the
            # live view at its top: nothing to scroll to.
            _set_tables(clips, keyframes)
            st.session_state["run_fold_form"] = True
            st.rerun()
