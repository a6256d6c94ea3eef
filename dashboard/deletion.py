"""Deleting a run from the dashboard (the Overview's "Delete this run", History's picked row) and bringing it back:
a run measured on a busy machine, or a botched demo, goes from the database; its bundle is kept first
(engine/deletion.py), so Undo, or Restore on the Machines page, brings the run back."""

from __future__ import annotations

import streamlit as st

from engine import api

DELETED = "deleted_run"  # what a deletion or restore just did: shown once on the reloaded page (a deletion with Undo)
DELETIONS = "deletions"  # how many so far: a table keyed by it drops a row selection that pointed at the run


def delete_button(db: str, run_id: str, results: int, label: str = "Delete this run") -> None:
    with st.popover(label, icon=":material/delete:", type="tertiary"):  # quiet: rarely wanted
        st.markdown(
            f"Deletes run `{run_id}`, its {results} result(s) and its annotated images from this database. "
            "Its bundle is kept first, so nothing is lost for good: Undo, or Restore on the Machines page, "
            "brings the run back."
        )
        if st.button(f"Delete run {run_id}", type="primary", key=f"delete-{run_id}"):
            try:
                bundle, deleted = api.delete_run(db, run_id)
            except api.BenchError as error:
                st.error(str(error))
                return
            st.session_state[DELETIONS] = st.session_state.get(DELETIONS, 0) + 1
            st.session_state[DELETED] = {
                "undo": run_id,
                "ok": True,
                "message": (
                    f"Deleted run `{run_id}` and its {deleted} result(s); its bundle is kept: `python -m engine import "
                    f"{bundle}` brings it back too."
                ),
            }
            st.rerun()


def fresh_key(key: str) -> str:
    """A widget key that changes with each deletion: a table's selected row would otherwise point at the row
    that moved into the deleted one's place."""
    return f"{key}-{st.session_state.get(DELETIONS, 0)}"


def restore(db: str, run_id: str) -> None:
    """Brings a deleted run back; says how it went on the page the click reloads."""
    try:
        api.restore_run(db, run_id)
        st.session_state[DELETED] = {"undo": None, "ok": True, "message": f"Restored run `{run_id}`."}
    except api.BenchError as error:
        st.session_state[DELETED] = {
            "undo": None,
            "ok": False,
            "message": f"Run `{run_id}` could not be restored: {error}",
        }


def show_deleted(db: str) -> None:
    """The message of a deletion (with Undo) or a restore just made, once."""
    if DELETED not in st.session_state:
        return
    done = st.session_state.pop(DELETED)
    note = st.container(horizontal=True, vertical_alignment="center")
    if not done["ok"]:
        note.error(done["message"], icon=":material/error:")
        return
    note.success(done["message"], icon=":material/delete:" if done["undo"] else ":material/restore:")
    if done["undo"]:  # a callback: the button is gone from the run its click starts, the callback still runs
        note.button(
            "Undo", key=f"undo-{done['undo']}", icon=":material/undo:", on_click=restore, args=(db, done["undo"])
        )


def deleted_runs_list(db: str) -> None:
    """The Machines page's list of deleted runs whose bundles are kept, each with Restore."""
    kept = api.deleted_runs(db)
    if not kept:
        return
    with st.expander(f"Deleted runs ({len(kept)}), kept as bundles", icon=":material/restore_from_trash:"):
        for run in kept:
            row = st.container(horizontal=True, vertical_alignment="center")
            row.markdown(
                f"`{run['run_id']}` · deleted {run['deleted_at']:%Y-%m-%d %H:%M} UTC · {run['size_mb']:.1f} MB"
            )
            row.button(
                "Restore",
                key=f"restore-{run['run_id']}",
                icon=":material/restore:",
                on_click=restore,
                args=(db, run["run_id"]),
            )
