"""Dashboard pages (one module each) and charts (DataFrame -> plotly Figure, no st.* calls)."""
