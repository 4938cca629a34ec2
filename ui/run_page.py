"""Run page: set up a benchmark (ui.run_form_section), launch it in the background, and watch its
runs and charts fill in live (ui.live_section).

Nothing long runs in this script: Run stores the experiment and starts `python -m bench execute`
(orchestrator.launch_detached); a fragment polls the store every second. The experiment id lives in
the URL (?experiment=ID), so a reload (or a new tab) picks the live view up again. The live view
comes first on the page, the form folded under it; without an experiment the page lists the ones
running now and the latest, then the form.
"""

from __future__ import annotations

import streamlit as st

from ui import live_section, manage_section, run_form_section, state, widgets


def main() -> None:
    widgets.page_style()
    st.title("Run a benchmark")
    manage_section.notice()
    run_form_section.init_form()
    selected = state.selected_experiment()
    if st.session_state.pop("run_fold_form", False):
        st.session_state["run_show_form"] = False
    if selected:
        live_section.experiment_section(selected)
        st.divider()
        show = st.toggle("Set up another run", key="run_show_form")
    else:
        live_section.recent_section()
        show = True
    if show:  # a fragment: editing the form reruns only the form, not the live view above
        st.fragment(run_form_section.form_section)()


main()
