"""Upscale GPU Bench dashboard: `streamlit run dashboard.py`.

The entry point only sets up the page and the navigation; each page lives in ui/.
"""

import streamlit as st

st.set_page_config(page_title="Upscale GPU Bench", page_icon=":material/movie:", layout="wide")

PAGES = [
    st.Page("ui/run_page.py", title="Run", icon=":material/play_arrow:", url_path="run", default=True),
    st.Page("ui/compare_page.py", title="Compare", icon=":material/bar_chart:", url_path="compare"),
    st.Page("ui/history_page.py", title="History", icon=":material/history:", url_path="history"),
    st.Page("ui/settings_page.py", title="Settings", icon=":material/settings:", url_path="settings"),
]

st.navigation(PAGES).run()
