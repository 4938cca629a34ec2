"""Managing one experiment from the dashboard (the CLI's cancel, rename, note and delete): Stop its
active runs, rename it, set its notes and tags, Rerun it (the Run form filled from it) and delete
it, asked first. The work is bench.manage's and store.manage's; this draws and reports."""

from __future__ import annotations

import streamlit as st

from bench.escape import markdown_text, page_text
from core.errors import UserError, one_line
from store import manage as store_manage
from store.runs import ExperimentRow
from ui import run_form_section, state

# (Comments, not docstrings: Streamlit's magic would print a bare string on the page.)
# session_state key of the one-line outcome shown after the rerun an action triggers.
NOTICE_KEY = "manage_notice"
# session_state key holding the id of the experiment whose deletion is being asked about.
CONFIRM_KEY = "manage_confirm_delete"
# session_state key holding the id of the experiment whose panel stays open across reruns.
OPEN_KEY = "manage_open"


def _open_store():
    from store.objects import open_object_store

    return open_object_store(state.storage_config())


def notice() -> None:
    """The outcome of the last action (it reruns the page), once."""
    kind, text = st.session_state.pop(NOTICE_KEY, (None, None))
    if text:
        getattr(st, kind)(markdown_text(text))


def stop_button(experiment_id: str) -> None:
    """Stop: cancel the experiment's queued and running runs (their workers end, nothing they
    wrote is kept)."""
    if not st.button("Stop", key="manage_stop", icon=":material/stop_circle:", wrap=True,
                     help="Cancel every queued and running run of this experiment: queued runs "
                          "never start, running ones stop; they are kept as cancelled."):
        return
    from bench.manage import cancel_experiment

    try:
        with st.spinner("Stopping the runs…"):
            report = cancel_experiment(state.database(), experiment_id, _open_store())
    except UserError as exc:
        st.session_state[NOTICE_KEY] = ("error", one_line(exc))
    else:
        lines = [report.summary().capitalize() + ".", *report.problems]
        st.session_state[NOTICE_KEY] = ("warning" if report.problems else "success", " ".join(lines))
    st.rerun()


def manage_panel(experiment: ExperimentRow, active: bool) -> None:
    """Rename, notes and tags, Rerun and Delete (asked first; refused while runs are active)."""
    # Open again after its own actions rerun the page (saving, asking before a delete).
    opened = st.session_state.get(OPEN_KEY) == experiment.id
    with st.expander("Rename, notes, rerun or delete", icon=":material/edit:", expanded=opened):
        with st.form(key="manage_form", border=False):
            name = st.text_input("Name", value=experiment.name, max_chars=store_manage.NAME_LIMIT)
            notes = st.text_area("Notes", value=experiment.notes or "",
                                 max_chars=store_manage.NOTES_LIMIT)
            tags = st.text_input("Tags (comma-separated)", value=", ".join(experiment.tags or ()))
            saved = st.form_submit_button("Save", icon=":material/save:")
        if saved:
            _save(experiment, name, notes, tags)
        imported = experiment.origin == "import"
        st.button("Rerun: fill the Run form from this experiment", key="manage_rerun",
                  icon=":material/replay:", on_click=run_form_section.fill_from_experiment,
                  args=(experiment.id,), disabled=imported,
                  help="An imported results file holds no plan to run again." if imported else
                  "The form below gets this experiment's source, clips, crop, candidates and "
                  "repeats; change anything, then Run.")
        _delete(experiment, active)


def _save(experiment: ExperimentRow, name: str, notes: str, tags: str) -> None:
    wanted = [t for t in (part.strip() for part in tags.split(",")) if t]
    db = state.database()
    try:
        if name != experiment.name:
            store_manage.rename_experiment(db, experiment.id, name)
        store_manage.annotate_experiment(db, experiment.id, notes, wanted,
                                         [t for t in experiment.tags or () if t not in wanted])
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    st.session_state[NOTICE_KEY] = ("success", "Saved.")
    st.session_state[OPEN_KEY] = experiment.id
    st.rerun()


def _delete(experiment: ExperimentRow, active: bool) -> None:
    if st.session_state.get(CONFIRM_KEY) != experiment.id:
        if st.button("Delete…", key="manage_delete", icon=":material/delete:", disabled=active,
                     help="Stop it first." if active else "Asks before deleting."):
            st.session_state[CONFIRM_KEY] = st.session_state[OPEN_KEY] = experiment.id
            st.rerun()
        return
    st.warning("Delete this experiment, its runs and their output videos? This cannot be undone; "
               "no other experiment is touched.")
    with st.container(horizontal=True, wrap=True):
        really = st.button("Delete for good", key="manage_delete_yes", type="primary",
                           icon=":material/delete_forever:")
        keep = st.button("Keep it", key="manage_delete_no")
    if keep:
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()
    if not really:
        return
    from bench.manage import delete_experiment

    st.session_state.pop(CONFIRM_KEY, None)
    try:
        report = delete_experiment(state.database(), experiment.id, _open_store())
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    st.session_state[NOTICE_KEY] = ("success", f"Deleted the experiment: {report.runs} run(s), "
                                               f"{report.objects} output video(s).")
    state.select_experiment(None)
    st.rerun()
