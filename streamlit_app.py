"""The YOLO runtime lab dashboard: navigation and the shared sidebar.

Pages live in app_pages/, not pages/: Streamlit 1.67 still runs a pages/ folder beside this file as an old-style
multipage app on a server's first run and in every AppTest run, skipping this file (sidebar and error guard).
"""

import streamlit as st

from dashboard.ui import errors_as_messages, sidebar

st.set_page_config(page_title="YOLO runtime lab", page_icon=":material/speed:", layout="wide")

page = st.navigation([
    st.Page("app_pages/overview.py", title="Overview", icon=":material/leaderboard:", default=True),
    st.Page("app_pages/run.py", title="Run", icon=":material/play_arrow:"),
    st.Page("app_pages/detections.py", title="Detections", icon=":material/image_search:"),
    st.Page("app_pages/history.py", title="History", icon=":material/timeline:"),
    st.Page("app_pages/machines.py", title="Machines", icon=":material/memory:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/share.py", title="Share", icon=":material/share:"),
])
sidebar()
with errors_as_messages():
    page.run()
