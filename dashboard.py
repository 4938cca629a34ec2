"""Upscale GPU Bench dashboard: `streamlit run dashboard.py`.

The entry point only sets up the page and the navigation; each page lives in ui/. The navigation
sits at the top (the whole width is left to the tables and charts on narrow screens); the start
page is served at the root, so every other page has its own address (/run, /compare, ...), and a
run's detail page (/run-detail?run=ID) is reached from links.
"""

import streamlit as st

st.set_page_config(page_title="Upscale GPU Bench", page_icon=":material/movie:", layout="wide")

PAGES = [
    st.Page("ui/start_page.py", title="Start", icon=":material/home:", default=True),
    st.Page("ui/run_page.py", title="Run", icon=":material/play_arrow:", url_path="run"),
    st.Page("ui/compare_page.py", title="Compare", icon=":material/bar_chart:", url_path="compare"),
    st.Page("ui/history_page.py", title="History", icon=":material/history:", url_path="history"),
    st.Page("ui/settings_page.py", title="Settings", icon=":material/settings:", url_path="settings"),
    st.Page("ui/run_detail_page.py", title="Run detail", icon=":material/info:",
            url_path="run-detail", visibility="hidden"),
]

st.navigation(PAGES, position="top").run()
