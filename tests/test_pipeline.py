"""Letterbox, box decode and NMS on constructed inputs with known answers."""

import numpy as np
import pytest

from engine.pipeline import annotate, letterbox, postprocess, preprocess


def test_letterbox_keeps_aspect_and_centres():
    image = np.full((480, 640, 3), 200, dtype=np.uint8)
    boxed, placement = letterbox(image, 320)
    assert boxed.shape == (320, 320, 3)
    assert placement.scale == pytest.approx(0.5)
    assert (placement.pad_x, placement.pad_y) == (0, 40)
    assert (boxed[:40] == 114).all() and (boxed[280:] == 114).all()
    assert (boxed[40:280] == 200).all()


def test_preprocess_layouts_and_range():
    frames = [np.zeros((100, 200, 3), np.uint8), np.full((50, 50, 3), 255, np.uint8)]
    nchw, placements = preprocess(frames, 64, "nchw")
    nhwc, _ = preprocess(frames, 64, "nhwc")
    assert nchw.shape == (2, 3, 64, 64) and nchw.dtype == np.float32 and nchw.flags.c_contiguous
    assert nhwc.shape == (2, 64, 64, 3)
    assert np.allclose(nchw.transpose(0, 2, 3, 1), nhwc)
    assert nchw.max() == pytest.approx(1.0) and nchw.min() == 0.0
    assert len(placements) == 2


def test_preprocess_swaps_bgr_to_rgb():
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[..., 0] = 255  # blue in OpenCV's BGR
    batch, _ = preprocess([frame], 32, "nchw")
    assert batch[0, 2].min() == pytest.approx(1.0) and batch[0, 0].max() == 0.0


def _raw(boxes_xywh, class_scores, classes=3):
    """A raw (1, 4 + classes, anchors) tensor from per-anchor boxes and (class, score)."""
    raw = np.zeros((1, 4 + classes, len(boxes_xywh)), np.float32)
    for i, (box, (cls, score)) in enumerate(zip(boxes_xywh, class_scores)):
        raw[0, :4, i] = box
        raw[0, 4 + cls, i] = score
    return raw


def test_postprocess_nms_per_class_and_mapping_back():
    _, placement = letterbox(np.zeros((480, 640, 3), np.uint8), 320)  # scale 0.5, pad_y 40
    raw = _raw(
        [(100, 100, 40, 40), (102, 101, 40, 40), (100, 100, 40, 40), (250, 200, 20, 20)],
        [(0, 0.9), (0, 0.8), (1, 0.7), (2, 0.1)],
    )
    detections = postprocess(raw, [placement], conf=0.25, iou=0.45)[0]
    assert [(d.class_id, round(d.score, 2)) for d in detections] == [(0, 0.9), (1, 0.7)]
    first = detections[0]
    # (80, 80)-(120, 120) in the 320 input -> minus pad_y 40, divided by 0.5
    assert (first.x1, first.y1, first.x2, first.y2) == pytest.approx((160, 80, 240, 160))


def test_postprocess_empty_when_nothing_clears_confidence():
    _, placement = letterbox(np.zeros((64, 64, 3), np.uint8), 64)
    raw = _raw([(10, 10, 5, 5)], [(0, 0.2)])
    assert postprocess(raw, [placement], conf=0.25, iou=0.45) == [[]]


def test_annotate_marks_untrained_weights():
    frame = np.zeros((200, 300, 3), np.uint8)
    trained = annotate(frame, [], {}, True, "onnxruntime")
    untrained = annotate(frame, [], {}, False, "onnxruntime")
    assert (untrained[26:52] != trained[26:52]).any(), "a second banner line says the weights are untrained"


def test_letterbox_batch_writes_each_frame_as_letterbox_does():
    """The batch's slots are written in place (no padded copy); the bytes must be letterbox()'s own."""
    from engine.pipeline import letterbox_batch

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, shape, dtype=np.uint8) for shape in ((480, 640, 3), (641, 639, 3), (64, 64, 3))]
    batch, placements = letterbox_batch(frames, 64)
    for frame, slot, placement in zip(frames, batch, placements):
        alone, alone_placement = letterbox(frame, 64)
        assert np.array_equal(slot, alone) and placement == alone_placement
    assert (batch[0, :8] == 114).all() and (batch[0, 56:] == 114).all(), "the borders are filled"


def test_a_frame_too_thin_to_scale_gets_one_pixel_not_an_opencv_assertion():
    boxed, placement = letterbox(np.zeros((5000, 20, 3), np.uint8), 33)
    assert boxed.shape == (33, 33, 3) and placement.pad_x == 16 and (boxed[:, 16] == 0).all()
