"""Upscale GPU Bench dashboard (placeholder until the dashboard issue lands)."""

import streamlit as st

st.set_page_config(page_title="Upscale GPU Bench", layout="wide")
st.title("Upscale GPU Bench")
st.info("The dashboard is coming in a later issue. Meanwhile use the CLI: `python -m bench --help`.")
