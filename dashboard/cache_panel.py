"""The Machines page's view of the cache on the machine serving the dashboard: what it holds by kind, and a button
that removes what no run can use again (as `python -m engine cache --prune`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import ui
from engine import api
from engine.cache_contents import entries_text, removed_text
from engine.paths import cache_dir

PRUNED = "cache_pruned"  # what the last removal did: shown once on the reloaded page
SURVEY_TTL_S = 60  # a survey hashes each export's model copy: not on every rerun


@st.cache_data(ttl=SURVEY_TTL_S, show_spinner=False)
def cache_summary(cache: str) -> dict:
    """api.cache_summary(), kept a minute per cache folder (YOLO_BENCH_CACHE names it)."""
    return api.cache_summary()


def show_cache() -> None:
    with st.expander("The cache on the machine serving this dashboard", icon=":material/cached:"):
        outcome = st.session_state.pop(PRUNED, None)
        if outcome:
            (st.success if outcome["ok"] else st.warning)(outcome["message"])
        with ui.errors_as_messages():
            contents = cache_summary(str(cache_dir()))
            rows = pd.DataFrame(contents["kinds"])
            total_mb = rows["mb"].sum() if not rows.empty else 0.0
            st.caption(
                f"`{contents['cache']}`: {total_mb:.1f} MB. Exports, parity references, calibration images "
                "and logs are remade when a run needs them; model files and the measured peaks are kept. "
                "`python -m engine cache --prune --unused-days 30` also removes what no run read for 30 days."
            )
            if rows.empty:
                st.caption("It is empty.")
                return
            number = st.column_config.NumberColumn
            st.dataframe(
                rows,
                hide_index=True,
                key="cache_table",
                placeholder=ui.MISSING,
                column_config={
                    "kind": "Kind",
                    "entries": number("Entries", width="small"),
                    "mb": number("MB", format="%.1f", width="small"),
                    "removable": number("Can go", width="small"),
                    "removable_mb": number("Freed MB", format="%.1f", width="small"),
                    "why": st.column_config.TextColumn("Why they can go", width="large"),
                },
            )
            going, going_mb = int(rows["removable"].sum()), rows["removable_mb"].sum()
            if not going:
                st.caption("Nothing in it is stale: every entry can serve a later run.")
                return
            if st.button(
                f"Remove the {entries_text(going)} no run can use again ({going_mb:.1f} MB)", key="prune_cache"
            ):
                prune()


def prune() -> None:
    removed = api.prune_cache(wait=False)
    cache_summary.clear()
    if removed is None:
        st.session_state[PRUNED] = {
            "ok": False,
            "message": "A benchmark is measuring on this machine now and may be "
            "writing what looks unfinished: remove them when it ends.",
        }
    else:
        st.session_state[PRUNED] = {"ok": True, "message": f"Removed {removed_text(removed)}."}
    st.rerun()
