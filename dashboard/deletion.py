"""The Overview's "Delete this run": a run measured on a busy machine, or a botched demo, goes from the database;
its bundle is kept first (engine/deletion.py), so importing it brings the run back."""

from __future__ import annotations

import streamlit as st

from engine import api

DELETED = "deleted_run_message"  # what was deleted, shown once on the page the deletion reloads
DELETIONS = "deletions"  # how many so far: a table keyed by it drops a row selection that pointed at the run


def delete_button(db: str, run_id: str, results: int, label: str = "Delete this run") -> None:
    with st.popover(label, icon=":material/delete:", type="tertiary"):  # quiet: rarely wanted
        st.markdown(f"Deletes run `{run_id}`, its {results} result(s) and its annotated images from this database. "
                    "Its bundle is kept first, so nothing is lost for good: importing it (Machines page, or "
                    "`python -m engine import`) brings the run back.")
        if st.button(f"Delete run {run_id}", type="primary", key=f"delete-{run_id}"):
            try:
                bundle, deleted = api.delete_run(db, run_id)
            except api.BenchError as error:
                st.error(str(error))
                return
            st.session_state[DELETIONS] = st.session_state.get(DELETIONS, 0) + 1
            st.session_state[DELETED] = (f"Deleted run `{run_id}` and its {deleted} result(s); its bundle is kept: "
                                         f"`python -m engine import {bundle}` brings it back.")
            st.rerun()


def fresh_key(key: str) -> str:
    """A widget key that changes with each deletion: a table's selected row would otherwise point at the row
    that moved into the deleted one's place."""
    return f"{key}-{st.session_state.get(DELETIONS, 0)}"


def show_deleted() -> None:
    """The message of a deletion just made, once."""
    if DELETED in st.session_state:
        st.success(st.session_state.pop(DELETED), icon=":material/delete:")
