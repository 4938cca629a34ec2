"""Pieces of page that several pages draw the same way (one copy each): the page style, links to
other pages, rows of buttons that wrap instead of cutting their labels, the verdict card, the
bundled examples offer, and a run's output video.

These draw with st.*; what they show comes from the pure modules (compare_view, start_view, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler
from streamlit.errors import StreamlitAPIException

from bench.analysis import Analysis
from bench.escape import page_text
from core.errors import UserError, one_line
from store import runs as store_runs
from store.keys import output_object_key
from ui import compare_view, start_view, state
from ui.labels import page_url

START_PAGE = "ui/start_page.py"
RUN_PAGE = "ui/run_page.py"
COMPARE_PAGE = "ui/compare_page.py"
HISTORY_PAGE = "ui/history_page.py"
DETAIL_PAGE = "ui/run_detail_page.py"
SETTINGS_PAGE = "ui/settings_page.py"
"""Page scripts as dashboard.py registers them with st.navigation."""

FAILED_PROGRESS_KEY = "progress-failed"
"""Container key of a progress bar drawn red (runs failed): Streamlit adds the class st-key-<key>."""
STYLE = f"""<style>
.st-key-{FAILED_PROGRESS_KEY} [data-testid="stProgressBarTrack"] > div {{
  background-color: #d62728 !important; }}
</style>"""
"""What Streamlit's theme cannot say: a failed experiment's progress bar is red."""


def page_style() -> None:
    """The dashboard's few style rules (call once per page)."""
    st.html(STYLE)


def button_row() -> Any:
    """A row for buttons and links that wraps onto a new line when the screen is narrow, so no
    label is cut."""
    return st.container(horizontal=True, wrap=True, vertical_alignment="center")


def page_link(page: str, path: str, label: str, icon: str | None = None, **query: str) -> None:
    """A link to another page of the dashboard (with query parameters); a plain markdown link
    when the page runs on its own (tests, no navigation). The label is shown as text."""
    try:
        st.page_link(page, label=page_text(label), icon=icon, query_params=query or None)
    except (StreamlitAPIException, KeyError):
        st.markdown(f"[{page_text(label)}]({page_url(path, **query)})")


def switch_page(page: str, **query: str) -> bool:
    """Open another page; False (nothing happens) when the page runs on its own."""
    try:
        st.switch_page(page, query_params=query or None)
    except StreamlitAPIException:
        return False
    return True


def table(data: pd.DataFrame | Styler, key: str, file_name: str, **options: Any) -> None:
    """A table (st.dataframe with `options`) and a button under it downloading it as CSV, so every
    table of the dashboard can be taken into a spreadsheet."""
    st.dataframe(data, **options)
    frame = data.data if isinstance(data, Styler) else data
    st.download_button("CSV", frame.to_csv(index=False).encode("utf-8"),
                       file_name=f"{file_name}.csv", mime="text/csv", key=f"csv_{key}",
                       icon=":material/download:", on_click="ignore", type="tertiary",
                       help="Download this table as CSV")


def verdict_card(analysis: Analysis, heading: str = "Verdict") -> None:
    """The decision, said the one way every reader says it (Choice.describe): what to use in
    large type, why, how far it can be trusted, and the rule that decided as a small tag."""
    v = analysis.verdict
    with st.container(border=True):
        st.caption(page_text(heading))
        st.markdown(page_text(v.headline))
        st.markdown(f"### Use {page_text(v.choice.describe())}")
        st.markdown(page_text(v.reason))
        kind, text = compare_view.certainty(analysis)
        getattr(st, kind)(page_text(text))
        st.badge(page_text(v.title), color="gray", help="The decision rule that fired (the rules "
                                                        "are tried in order: within tolerance, "
                                                        "keep the baseline, one candidate wins "
                                                        "every clip, depends on length).")


def examples_offer(key: str) -> None:
    """A button that loads the bundled example experiments and opens the newest in Compare."""
    if st.button("Load the example experiments", key=key, type="primary", icon=":material/science:",
                 help="Imports every results file of examples/ into the history (once each)."):
        db = state.database()
        ids, problems = start_view.load_examples(db)
        for problem in problems:
            st.error(page_text(problem))
        first = start_view.landing_experiment(db, ids)
        if first:
            state.select_experiment(first)
            if not switch_page(COMPARE_PAGE, **{state.EXPERIMENT_PARAM: first}):
                st.success(f"Loaded {len(ids)} example experiment(s): open the Compare page.")


def _output_store_and_key(row: dict):
    from store.objects import open_object_store

    experiment = store_runs.get_experiment(state.database(), str(row["experiment_id"]))
    key = output_object_key(experiment.source if experiment else None, str(row["output_key"]))
    return open_object_store(state.storage_config()), key


def output_path(row: dict) -> Path:
    """Local path of a run's output (downloaded from object storage if remote). Raises
    StorageError."""
    store, key = _output_store_and_key(row)
    return store.get(key)


def output_media(row: dict) -> str:
    """What st.video plays: a presigned URL for R2 (the browser streams it from the bucket), a
    local file path otherwise. Raises StorageError."""
    store, key = _output_store_and_key(row)
    presign = getattr(store, "presigned_url", None)
    if presign is not None and store.exists(key):
        return presign(key)
    return str(store.get(key))


def output_video(row: dict) -> None:
    """A run's output video, or one line saying why it cannot be shown."""
    try:
        st.video(output_media(row))
    except UserError as exc:
        st.error(page_text(one_line(exc)))
