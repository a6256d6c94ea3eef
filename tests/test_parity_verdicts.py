"""Detection parity on constructed outputs: IoU, one-to-one matching, the raw tensor's figures and the verdict each
combination gets (engine/parity.py), in-process and without a runtime."""

import numpy as np
import pytest

from engine import parity


def box(x1, y1, x2, y2, score=0.9, class_id=0):
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score, "class_id": class_id}


def test_iou_of_known_boxes():
    ious = parity.iou_matrix(
        np.array([[0, 0, 10, 10]], float), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    )
    assert ious[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])


def test_matching_is_one_to_one_by_class_and_iou():
    reference = [box(0, 0, 10, 10), box(100, 100, 120, 120, class_id=3), box(50, 50, 60, 60)]
    candidate = [
        box(1, 0, 11, 10, score=0.8),  # IoU 0.82 with the first
        box(0, 0, 10, 10, score=0.85),  # IoU 1 with the first: wins it
        box(100, 100, 120, 120, class_id=4),  # right place, wrong class
        box(56, 50, 66, 60),
    ]  # IoU 0.25 with the third: below 0.5
    matches = parity.match_detections(reference, candidate, 0.5)
    assert [(m.reference_index, m.candidate_index) for m in matches] == [(0, 1)]
    assert matches[0].iou == 1.0 and matches[0].score_diff == pytest.approx(0.05)
    assert [(m.reference_index, m.candidate_index) for m in parity.match_detections(reference, candidate, 0.2)] == [
        (0, 1),
        (2, 3),
    ]


def _raw(images=2, box_err=0.0, score_err=0.0, seed=0):
    rng = np.random.default_rng(seed)
    diff = parity.RawDiff()
    for _ in range(images):
        reference = np.concatenate([rng.uniform(0, 160, (4, 50)), rng.uniform(0, 0.2, (80, 50))]).astype(np.float32)
        candidate = reference.copy()
        candidate[:4] += box_err
        candidate[4:] += score_err
        diff.add(reference, candidate)
    return diff


def test_raw_differences_are_accumulated_image_by_image():
    diff = _raw(box_err=0.5, score_err=0.01)
    assert diff.images == 2 and diff.values == 2 * 84 * 50
    assert diff.box_max_abs == pytest.approx(0.5, abs=1e-4) and diff.score_max_abs == pytest.approx(0.01, abs=1e-6)
    assert diff.mean_abs == pytest.approx((4 * 0.5 + 80 * 0.01) / 84, rel=1e-3)
    mismatched = parity.RawDiff()
    mismatched.add(np.zeros((84, 50), np.float32), np.zeros((84, 49), np.float32))
    assert "differs from the reference's" in mismatched.problem


def test_verdicts_on_constructed_outputs():
    reference = {"a.jpg": [box(0, 0, 10, 10), box(20, 20, 40, 40, class_id=1)], "b.jpg": []}

    def judge(candidate, raw):
        return parity.compare("ref", reference, candidate, raw, imgsz=160)

    same = judge({"a.jpg": [box(0, 0, 10, 10), box(20, 20, 40, 40, class_id=1)], "b.jpg": []}, _raw(box_err=1e-4))
    assert (same.verdict, same.matched, same.missed, same.extra) == ("pass", 2, 0, 0)
    shifted = judge({"a.jpg": [box(0.5, 0, 10.5, 10, 0.85), box(20, 20, 40, 40, class_id=1)]}, _raw(box_err=0.4))
    assert shifted.verdict == "drift" and shifted.max_score_diff == pytest.approx(0.05)
    one_lost = judge({"a.jpg": [box(20, 20, 40, 40, class_id=1)]}, _raw(score_err=0.02))
    assert (one_lost.verdict, one_lost.missed) == ("drift", 1)
    all_lost = judge({"a.jpg": [], "b.jpg": [box(0, 0, 50, 50)]}, _raw(score_err=0.3))
    assert (all_lost.verdict, all_lost.missed, all_lost.extra) == ("fail", 2, 1)


def test_without_detections_the_raw_tensor_decides():
    nothing = {"a.jpg": [], "b.jpg": []}
    assert parity.compare("ref", nothing, nothing, _raw(box_err=1e-3, score_err=1e-5), 160).verdict == "pass"
    assert parity.compare("ref", nothing, nothing, _raw(box_err=0.5, score_err=1e-3), 160).verdict == "drift"
    broken = parity.compare("ref", nothing, nothing, _raw(box_err=40.0), 160)
    assert broken.verdict == "fail" and "of its magnitude" in broken.reason
    assert parity.compare("ref", nothing, nothing, parity.RawDiff(), 160).verdict == "fail"
