"""Drawing a runtime's boxes over another runtime's annotated image, and images for the HTML report."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont, ImageOps

OVERLAY_COLOR = (255, 0, 200)  # magenta: the engine draws the reference's boxes in per-class colours


def image_index(key: str) -> int:
    """The place of an image in its run's list, from the engine's key ("07-bus.jpg": engine Runner.image_key)."""
    return int(key.split("-", 1)[0])


def in_run_order(keys) -> list[str]:
    """Image keys in the order the run was given them: "100-a.jpg" after "11-b.jpg", not between 10 and 11."""
    return sorted(set(keys), key=image_index)


def image_name(key: str, count: int) -> str:
    """ "bus.jpg (1 of 200)": the file's name, and where it stands among the run's images."""
    return f"{key.split('-', 1)[1]} ({image_index(key) + 1} of {count})"


def open_upright(path: str | Path) -> Image.Image:
    """An image as the engine saw it: OpenCV's imread applies the EXIF orientation (a phone's portrait photo is
    stored sideways with a tag), so boxes are in the turned image's pixels; PIL alone gives the stored pixels."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def overlay_boxes(
    base_path: str | Path, boxes: pd.DataFrame, color: tuple[int, int, int] = OVERLAY_COLOR
) -> Image.Image:
    """The image at base_path with each box (x1, y1, x2, y2, class_name, score) outlined and labelled below it."""
    image = open_upright(base_path)
    draw = ImageDraw.Draw(image)
    width = max(2, round(min(image.size) / 250))
    font = ImageFont.load_default(size=max(12, round(min(image.size) / 45)))
    for box in boxes.itertuples():
        draw.rectangle((box.x1, box.y1, box.x2, box.y2), outline=color, width=width)
        label = f"{box.class_name} {box.score:.2f}"
        left, top, right, bottom = draw.textbbox((box.x1, box.y2), label, font=font)
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=color)
        draw.text((box.x1, box.y2), label, fill=(255, 255, 255), font=font)
    return image


PARITY_COLORS = {"matched": (40, 167, 69), "extra": (255, 140, 0), "missed": (220, 20, 60)}


def parity_diff(image_path: str | Path, candidate: pd.DataFrame, reference: pd.DataFrame) -> Image.Image:
    """The original image with a result's boxes against the reference's: matched in green, extra (no reference
    box matched them) in orange, missed (reference boxes no detection matched) in red."""
    image = open_upright(image_path)
    draw = ImageDraw.Draw(image)
    width = max(2, round(min(image.size) / 250))
    font = ImageFont.load_default(size=max(12, round(min(image.size) / 45)))
    matched_indices = set(candidate["reference_index"].dropna().astype(int))
    kinds = [("matched" if pd.notna(box.reference_index) else "extra", box) for box in candidate.itertuples()]
    kinds += [("missed", box) for box in reference.itertuples() if box.det_index not in matched_indices]
    for kind, box in kinds:
        color = PARITY_COLORS[kind]
        draw.rectangle((box.x1, box.y1, box.x2, box.y2), outline=color, width=width if kind == "matched" else 2 * width)
        if kind != "matched":
            label = f"{kind}: {box.class_name} {box.score:.2f}"
            left, top, right, bottom = draw.textbbox((box.x1, box.y1), label, font=font)
            draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=color)
            draw.text((box.x1, box.y1), label, fill=(255, 255, 255), font=font)
    return image


def jpeg_data_uri(path: str | Path, max_width: int = 900) -> str:
    """A downscaled JPEG as a data: URI, so a report carries its images inside one file."""
    image = open_upright(path)
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
