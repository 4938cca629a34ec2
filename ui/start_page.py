"""Start: what the tool answers in one line, and the answer itself. On an empty history it offers
the bundled example experiments (examples/*.json) and opens Compare on them; otherwise it shows
the newest verdict and where to go next. The data comes from ui.start_view."""

from __future__ import annotations

import streamlit as st

from bench.escape import page_text
from core.errors import UserError, one_line
from ui import start_view, state, widgets
from ui.labels import COMPARE_PATH, RUN_PATH


def _examples_section(missing: list[start_view.Example]) -> None:
    with st.container(border=True):
        st.markdown("**Start from real numbers:** load the bundled example experiments and read "
                    "their verdict on the Compare page.")
        for example in missing:
            st.markdown(f"- **{page_text(example.title)}** ({page_text(example.source_name)})"
                        + (f" — {page_text(example.notes)}" if example.notes else ""))
        widgets.examples_offer("start_load_examples")


def main() -> None:
    widgets.page_style()
    st.title("Upscale GPU Bench")
    st.markdown(start_view.INTRO)
    try:
        if state.db_path().exists():  # drawing the page never creates the database
            db = state.database()
            answer, missing = start_view.latest_answer(db), start_view.missing_examples(db)
        else:
            answer, missing = None, start_view.examples()
    except UserError as exc:
        st.error(page_text(one_line(exc)))
        return
    if answer is None:
        st.info("The history is empty: load the examples below, or run the CPU demo on the Run "
                "page (it compares two engines on this machine in under a minute).")
    else:
        widgets.verdict_card(answer.analysis, heading="The latest answer")
        st.markdown(page_text(f"From the experiment “{answer.name}”: {answer.completeness()}."))
        if not answer.complete:
            st.warning("Not every run of this experiment succeeded: the verdict stands on the "
                       "ones that did. Compare lists the others with their reasons.")
        with widgets.button_row():
            widgets.page_link(widgets.COMPARE_PAGE, COMPARE_PATH, "Every chart of it in Compare",
                              icon=":material/bar_chart:", experiment=answer.experiment_id)
            widgets.page_link(widgets.RUN_PAGE, RUN_PATH, "Run a benchmark",
                              icon=":material/play_arrow:")
    if missing:
        _examples_section(missing)


main()
