"""Upscale GPU Bench dashboard: `streamlit run dashboard.py`.

The entry point only sets up the page and the navigation; each page lives in ui/.
"""

import streamlit as st

st.set_page_config(page_title="Upscale GPU Bench", page_icon="🎞️", layout="wide")

PAGES = [
    st.Page("ui/run_page.py", title="Run", icon="▶️", url_path="run", default=True),
    st.Page("ui/compare_page.py", title="Compare", icon="📊", url_path="compare"),
    st.Page("ui/history_page.py", title="History", icon="🗂️", url_path="history"),
    st.Page("ui/settings_page.py", title="Settings", icon="⚙️", url_path="settings"),
]

st.navigation(PAGES).run()
