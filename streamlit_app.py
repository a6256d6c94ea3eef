"""The YOLO runtime lab dashboard: navigation and the shared sidebar.

Page scripts live one level down, in pages/views/: Streamlit 1.67 runs .py files placed directly in a pages/
folder beside this file as an old-style multipage app (in AppTest runs), skipping this file and so the
sidebar and the error guard; a subfolder is not scanned. Serve it with `python -m dashboard.serve` (what
`make run` does), which also stops the first session's deep link (/run) from showing "Page not found".
"""

import streamlit as st

from dashboard.ui import errors_as_messages, sidebar

st.set_page_config(page_title="YOLO runtime lab", page_icon=":material/speed:", layout="wide")

page = st.navigation(
    [
        st.Page("pages/views/overview.py", title="Overview", icon=":material/leaderboard:", default=True),
        st.Page("pages/views/run.py", title="Run", icon=":material/play_arrow:"),
        st.Page("pages/views/detections.py", title="Detections", icon=":material/image_search:"),
        st.Page("pages/views/history.py", title="History", icon=":material/timeline:"),
        st.Page("pages/views/machines.py", title="Machines", icon=":material/memory:"),
        st.Page("pages/views/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/views/recommend.py", title="Recommend", icon=":material/recommend:"),
        st.Page("pages/views/profiles.py", title="Profiles", icon=":material/stacked_bar_chart:"),
        st.Page("pages/views/share.py", title="Share", icon=":material/share:"),
    ]
)
sidebar()
with errors_as_messages():
    page.run()
