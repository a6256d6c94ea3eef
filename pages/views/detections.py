"""Detections: each runtime's annotated image side by side, with its timings, and one runtime's boxes over another's."""

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui
from dashboard.images import image_index, image_name, in_run_order, overlay_boxes, parity_diff
from engine import api

db, filters = ui.page_header(
    "Detections",
    "The same image through each runtime (the smallest batch of each), with its boxes and per-image timings.",
)
runs = data.runs_with_results(db, {**filters, "status": "completed"}, ui.named_runs("run_picker"))
ui.stop_when_empty(runs, db, "annotated images")
run_id = ui.pick_run(runs)
images = data.result_images(db, run_id).dropna(subset=["annotated_path"])
if images.empty:
    st.info(
        "This run saved no annotated images (every result failed, or the run was cancelled early). Pick another run."
    )
    st.stop()
results = data.results(db, {"run_id": run_id}).set_index("result_id")
boxes = data.detections(db, run_id)
ui.weights_warning(results["weights_trained"])
names = charts.variant_batch(results)  # the Overview's bar names

originals = api.original_images(data.runs(db, {"run_id": run_id}).iloc[0].to_dict())  # None where not here
image = st.selectbox(
    "Image",
    in_run_order(images["image"]),
    key="detections_image",
    format_func=lambda key: image_name(key, len(originals)),
)
shown = (
    images[images["image"] == image]
    .join(results["mode"], on="result_id")
    .sort_values(["runtime", "precision", "mode"])
    .reset_index(drop=True)
)
cards = shown
if len(shown) > 3:  # a full sweep gives 18 cards; compare the two or three that matter side by side
    picked = st.pills(
        "Show",
        shown["result_id"].tolist(),
        selection_mode="multi",
        default=shown["result_id"].tolist(),
        format_func=names.get,
        key=f"detections_shown-{run_id}",
        help="The runtimes whose images are shown side by side (all by default); click one to hide it",
    )
    cards = shown[shown["result_id"].isin(picked)].reset_index(drop=True)
    if cards.empty:
        st.info("Pick at least one runtime to show its image.")
per_row = min(3, max(2, len(cards)))
for start in range(0, len(cards), per_row):
    for column, row in zip(st.columns(per_row), cards.iloc[start : start + per_row].itertuples()):
        with column.container(border=True):
            result = results.loc[row.result_id]
            if Path(row.annotated_path).is_file():
                st.image(row.annotated_path, caption=names[row.result_id])
            else:
                st.warning(f"The annotated image {row.annotated_path} is missing (moved or deleted).")
            found = boxes[(boxes["result_id"] == row.result_id) & (boxes["image"] == image)]
            st.markdown(
                f"pre **{result['pre_ms']:.2f}** · infer **{result['infer_ms']:.2f}** · post "
                f"**{result['post_ms']:.2f}** · total **{result['total_ms']:.2f}** ms per image"
            )
            verdict = result.get("parity_verdict")  # whether these boxes are the reference's, beside them
            parity = f" · parity **{verdict}**" if pd.notna(verdict) else ""
            st.caption(
                f"{len(found)} detection(s) · decode {result['decode_ms']:.2f} ms · medians over "
                f"{result['iterations']} iterations{parity}",
                help=result.get("parity_reason") if parity else None,
            )
            if not found.empty:
                pixels = st.column_config.NumberColumn(format="%.0f")
                st.dataframe(
                    found,
                    hide_index=True,
                    key=f"boxes-{row.result_id}",
                    height=240,
                    column_order=["class_name", "score", "x1", "y1", "x2", "y2"],
                    column_config={
                        "class_name": "Class",
                        "score": st.column_config.NumberColumn("Score", format="%.2f"),
                        "x1": pixels,
                        "y1": pixels,
                        "x2": pixels,
                        "y2": pixels,
                    },
                )

st.divider()
if st.toggle("Overlay one runtime's boxes on the reference's image", key="overlay"):
    labels = {row.result_id: names[row.result_id] for row in shown.itertuples()}
    reference_column, other_column = st.columns(2)
    reference = reference_column.selectbox("Reference", list(labels), format_func=labels.get, key="reference")
    others = [result_id for result_id in labels if result_id != reference] or [reference]
    other = other_column.selectbox("Boxes from", others, format_func=labels.get, key="overlay_from")
    other_boxes = boxes[(boxes["result_id"] == other) & (boxes["image"] == image)]
    base = shown.loc[shown["result_id"] == reference, "annotated_path"].iloc[0]
    reference_count = int(shown.loc[shown["result_id"] == reference, "detections"].iloc[0])
    picture, notes = st.columns([3, 2])
    if Path(base).is_file():
        picture.image(
            overlay_boxes(base, other_boxes),
            caption=f"{labels[reference]} ({reference_count} boxes, its own colours) with "
            f"{labels[other]} ({len(other_boxes)} boxes, in magenta)",
        )
    parity = results.loc[other]
    if pd.notna(parity.get("parity_verdict")):
        notes.metric(
            "Parity of the overlaid runtime",
            parity["parity_verdict"],
            help=f"against {parity['parity_reference']}: {parity['parity_reason'] or ''}",
        )
        notes.markdown(
            f"matched **{parity['parity_matched']:.0f}** · missed **{parity['parity_missed']:.0f}** · "
            f"extra **{parity['parity_extra']:.0f}** boxes over the run's images"
        )
    if other_boxes.empty and reference_count == 0:
        notes.info(
            "Neither runtime found an object in this image, so there are no boxes to compare. With untrained "
            "weights that is expected; a trained model (a local .pt) gives boxes to overlay."
        )

st.divider()
reference_boxes = data.reference_detections(db, run_id)
with_parity = [row for row in shown.itertuples() if pd.notna(results.loc[row.result_id].get("parity_verdict"))]
if with_parity and st.toggle("Parity diff: a runtime's boxes against the reference's", key="parity_diff"):
    labels = {row.result_id: names[row.result_id] for row in with_parity}
    chosen = st.selectbox("Runtime", list(labels), format_func=labels.get, key="parity_diff_result")
    parity = results.loc[chosen]
    index = image_index(image)
    candidate = boxes[(boxes["result_id"] == chosen) & (boxes["image"] == image)]
    reference = reference_boxes[reference_boxes["image"] == image] if not reference_boxes.empty else reference_boxes
    picture, notes = st.columns([3, 2])
    if index < len(originals) and originals[index] is not None:
        picture.image(
            parity_diff(originals[index], candidate, reference),
            caption=f"{labels[chosen]} against {parity['parity_reference']}: matched in green, "
            "extra in orange, missed in red",
        )
    else:
        picture.warning(
            "The original image of this run is not on this machine (moved, deleted, or the run was made elsewhere)."
        )
    notes.metric("Parity verdict", parity["parity_verdict"], help=parity["parity_reason"] or "")
    notes.markdown(
        f"Over the run's images: matched **{parity['parity_matched']:.0f}** · missed "
        f"**{parity['parity_missed']:.0f}** · extra **{parity['parity_extra']:.0f}**"
    )
    notes.caption(parity["parity_reason"] or "")
