"""The Overview's "Delete this run": a run measured on a busy machine, or a botched demo, goes from the database;
its bundle is kept first (engine/deletion.py), so importing it brings the run back."""

from __future__ import annotations

import streamlit as st

from engine import api

DELETED = "deleted_run_message"  # what was deleted, shown once on the page the deletion reloads


def delete_button(db: str, run_id: str, results: int) -> None:
    with st.popover("Delete this run", icon=":material/delete:", type="tertiary"):  # quiet: rarely wanted
        st.markdown(f"Deletes run `{run_id}`, its {results} result(s) and its annotated images from this database. "
                    "Its bundle is kept first, so nothing is lost for good: importing it (Machines page, or "
                    "`python -m engine import`) brings the run back.")
        if st.button(f"Delete run {run_id}", type="primary", key=f"delete-{run_id}"):
            try:
                bundle, deleted = api.delete_run(db, run_id)
            except api.BenchError as error:
                st.error(str(error))
                return
            st.session_state[DELETED] = (f"Deleted run `{run_id}` and its {deleted} result(s); its bundle is kept: "
                                         f"`python -m engine import {bundle}` brings it back.")
            st.rerun()


def show_deleted() -> None:
    """The message of a deletion just made, once."""
    if DELETED in st.session_state:
        st.success(st.session_state.pop(DELETED), icon=":material/delete:")
