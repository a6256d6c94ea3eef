"""Placeholder until the dashboard lands: proves `make run` serves a page."""

import streamlit as st

st.set_page_config(page_title="YOLO runtime lab", layout="wide")
st.title("YOLO runtime lab")
st.write("Run `python -m engine run` to benchmark; the dashboard pages come next.")
