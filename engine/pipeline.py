"""Image decode, letterbox, box decode + NMS and drawing, shared by every runtime, in numpy and OpenCV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

LETTERBOX_FILL = 114
UNTRAINED_BANNER = "untrained weights: detections are not meaningful"
UNKNOWN_TRAINING_BANNER = "weights of unknown training (ONNX file given directly)"


@dataclass
class Detection:
    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int


@dataclass
class Letterbox:
    """How an image was placed into the square model input, to map boxes back."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int


def decode_image(path: str | Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode image {path}")
    return image


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio and pad to size x size, as Ultralytics' static (non-rect) letterbox."""
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    return canvas, letterbox_into(image, canvas)


def placement(height: int, width: int, size: int) -> tuple[Letterbox, int, int]:
    """Where a height x width image goes in the size x size input: its Letterbox (scale, left and top padding),
    and its resized width and height. The numpy and the torch letterbox share it."""
    scale = min(size / height, size / width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))  # a 5000x20 image at 33: 1 px
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)  # the odd pixel goes to the bottom / right, as Ultralytics
    return Letterbox(scale, left, top, width, height), new_w, new_h


def letterbox_into(image: np.ndarray, canvas: np.ndarray) -> Letterbox:
    """letterbox() written straight into a (size, size, 3) uint8 canvas, a batch's slot say: the resize lands in
    its place and only the borders are filled, no padded copy made and copied again."""
    height, width = image.shape[:2]
    placed, new_w, new_h = placement(height, width, canvas.shape[0])
    top, left = int(placed.pad_y), int(placed.pad_x)
    canvas[:top], canvas[top + new_h :] = LETTERBOX_FILL, LETTERBOX_FILL
    canvas[top : top + new_h, :left], canvas[top : top + new_h, left + new_w :] = LETTERBOX_FILL, LETTERBOX_FILL
    inside = canvas[top : top + new_h, left : left + new_w]
    if (new_w, new_h) == (width, height):
        inside[...] = image
    else:
        resized = cv2.resize(image, (new_w, new_h), dst=inside, interpolation=cv2.INTER_LINEAR)
        if not np.shares_memory(resized, canvas):  # an OpenCV that would not write into a strided view
            inside[...] = resized
    return placed


def letterbox_batch(images: list[np.ndarray], size: int) -> tuple[np.ndarray, list[Letterbox]]:
    """BGR uint8 frames -> one BGR uint8 NHWC batch of letterboxed squares, and where each image went."""
    batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
    return batch, [letterbox_into(image, batch[i]) for i, image in enumerate(images)]


def preprocess(images: list[np.ndarray], size: int, layout: str) -> tuple[np.ndarray, list[Letterbox]]:
    """BGR uint8 frames -> one float32 batch in [0, 1], RGB, NCHW or NHWC, contiguous."""
    batch, boxes = letterbox_batch(images, size)
    if layout == "nchw":  # BGR -> RGB and the layout change in one strided read
        nchw = np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        return nchw * np.float32(1 / 255), boxes
    # NHWC: numpy's reversed 3-element channel axis is slow; OpenCV swaps the channels in place, many times faster
    for frame in batch:
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)
    tensor = np.empty(batch.shape, dtype=np.float32)
    np.multiply(batch, np.float32(1 / 255), out=tensor, casting="unsafe")
    return tensor, boxes


def postprocess(
    raw: np.ndarray, placements: list[Letterbox], conf: float, iou: float, max_det: int = 300
) -> list[list[Detection]]:
    """Raw (B, 4 + classes, anchors) xywh output -> per-image detections in original pixel coordinates."""
    results = []
    for prediction, placement in zip(raw, placements):
        scores_all = prediction[4:]
        best = scores_all.max(axis=0)  # a row-wise max is ~10x cheaper than argmax over the class axis
        keep = best > conf
        if not keep.any():
            results.append([])
            continue
        xywh = prediction[:4, keep].T
        scores, class_ids = best[keep], scores_all[:, keep].argmax(axis=0)
        rects = np.empty_like(xywh)
        rects[:, :2] = xywh[:, :2] - xywh[:, 2:] / 2
        rects[:, 2:] = xywh[:, 2:]
        chosen = cv2.dnn.NMSBoxesBatched(rects.tolist(), scores.tolist(), class_ids.tolist(), conf, iou)
        chosen = np.asarray(chosen, dtype=int).reshape(-1)[:max_det]
        results.append(to_image_coords(rects[chosen], scores[chosen], class_ids[chosen], placement))
    return results


def to_image_coords(rects, scores, class_ids, placement: Letterbox) -> list[Detection]:
    """Kept (x, y, w, h) boxes in input pixels -> detections in the original image's pixels."""
    x1 = (rects[:, 0] - placement.pad_x) / placement.scale
    y1 = (rects[:, 1] - placement.pad_y) / placement.scale
    x2 = x1 + rects[:, 2] / placement.scale
    y2 = y1 + rects[:, 3] / placement.scale
    x1, x2 = np.clip(x1, 0, placement.width), np.clip(x2, 0, placement.width)
    y1, y2 = np.clip(y1, 0, placement.height), np.clip(y2, 0, placement.height)
    return [
        Detection(float(a), float(b), float(c), float(d), float(s), int(k))
        for a, b, c, d, s, k in zip(x1, y1, x2, y2, scores, class_ids)
    ]


def annotate(
    image: np.ndarray, detections: list[Detection], names: dict, trained: bool | None, title: str
) -> np.ndarray:
    """Boxes with class names and scores, a title bar, and the untrained-weights banner when it applies."""
    canvas = image.copy()
    thickness = max(1, round(min(canvas.shape[:2]) / 300))
    for det in detections:
        color = _class_color(det.class_id)
        cv2.rectangle(canvas, (int(det.x1), int(det.y1)), (int(det.x2), int(det.y2)), color, thickness)
        label = f"{names.get(det.class_id, det.class_id)} {det.score:.2f}"
        cv2.putText(
            canvas,
            label,
            (int(det.x1), max(12, int(det.y1) - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * thickness,
            color,
            thickness,
            cv2.LINE_AA,
        )
    lines = [f"{title}: {len(detections)} detections"]
    if trained is None:
        lines.append(UNKNOWN_TRAINING_BANNER)
    elif not trained:
        lines.append(UNTRAINED_BANNER)
    scale = max(0.5, canvas.shape[1] / 800)  # readable on a phone photo as on a thumbnail
    line_height = int(30 * scale)
    cv2.rectangle(canvas, (0, 0), (canvas.shape[1], line_height * len(lines) + 6), (0, 0, 0), -1)
    for i, line in enumerate(lines):
        color = (255, 255, 255) if i == 0 else (0, 200, 255)
        cv2.putText(
            canvas,
            line,
            (8, line_height * (i + 1) - 6),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.7 * scale,
            color,
            max(1, round(scale * 1.5)),
            cv2.LINE_AA,
        )
    return canvas


def _class_color(class_id: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(class_id)
    return tuple(int(c) for c in rng.integers(60, 256, size=3))
