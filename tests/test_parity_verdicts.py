"""Detection parity on constructed outputs: IoU, one-to-one matching, the raw tensor's figures and the verdict each
combination gets (engine/parity.py), in-process and without a runtime."""

import warnings

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
    references = [
        np.concatenate([rng.uniform(0, 160, (4, 50)), rng.uniform(0, 0.2, (80, 50))]).astype(np.float32)
        for _ in range(images)
    ]
    return _offset(references, box_err, score_err)


def _offset(references, box_err: float, score_err: float):
    """The raw differences of candidates that are these references with box rows off by box_err and class-score
    rows by score_err."""
    diff = parity.RawDiff()
    for reference in references:
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


@pytest.mark.parametrize(
    "before, now, worse",
    [
        ("pass", "drift", True),
        ("drift", "fail", True),
        ("pass", "fail", True),
        ("drift", "drift", False),
        ("fail", "pass", False),
        ("drift", "pass", False),
        (None, "fail", False),  # no verdict before: no change to speak of
        ("pass", None, False),
        ("unknown", "fail", False),
    ],
)
def test_a_verdict_got_worse_only_down_the_order(before, now, worse):
    assert parity.got_worse(before, now) is worse


def _iou(p, q) -> float:
    """IoU by its definition, one pair of boxes at a time."""
    width = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
    height = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
    union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - width * height
    return width * height / union if union > 0 else 0.0


def test_iou_of_tall_wide_tiny_and_empty_boxes_is_its_definition():
    a = np.array([[0, 0, 10, 20], [5, 5, 5, 5], [0, 0, 0.5, 0.5], [0, 0, 20, 10]], float)
    b = np.array([[0, 0, 10, 20], [0, 10, 10, 30], [0, 0, 0.5, 0.5], [0, 0, 20, 10], [30, 30, 40, 40]], float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a box of no area divides by nothing, and says nothing
        ious = parity.iou_matrix(a, b)
        assert parity.iou_matrix(a[1:2], a[1:2]).tolist() == [[0.0]], "a box of no area overlaps nothing"
    np.testing.assert_allclose(ious, [[_iou(p, q) for q in b] for p in a])
    assert ious[0, 1] == pytest.approx(1 / 3) and ious[2, 2] == 1.0 and ious[3, 3] == 1.0
    assert parity.iou_matrix(np.zeros((0, 4)), b).shape == (0, 5)
    assert parity.iou_matrix(a, np.zeros((0, 4))).shape == (4, 0)


def test_matching_takes_objects_or_dicts_and_the_threshold_itself_matches():
    from types import SimpleNamespace

    reference = [box(0, 0, 10, 10, score=0.5)]
    exactly_half = [box(0, 0, 10, 5, score=0.25)]  # IoU 50 / 100
    assert [(m.iou, m.score_diff) for m in parity.match_detections(reference, exactly_half, 0.5)] == [(0.5, 0.25)]
    assert parity.match_detections(reference, exactly_half, 0.51) == []
    as_objects = [SimpleNamespace(**d) for d in exactly_half]
    assert parity.match_detections([SimpleNamespace(**d) for d in reference], as_objects, 0.5)[0].iou == 0.5


def test_boxes_that_do_not_overlap_never_match_even_at_threshold_zero():
    assert parity.match_detections([box(0, 0, 10, 10)], [box(20, 20, 30, 30)], 0.0) == []
    assert len(parity.match_detections([box(0, 0, 10, 10)], [box(5, 5, 30, 30)], 0.0)) == 1


def test_matches_come_in_reference_order_each_box_used_once():
    reference = [box(0, 0, 10, 10), box(50, 50, 60, 60), box(100, 100, 110, 110)]
    candidate = [box(101, 100, 111, 110), box(50, 50, 60, 60), box(1, 0, 11, 10), box(50, 50, 60, 61)]
    matches = parity.match_detections(reference, candidate, 0.5)
    assert [(m.reference_index, m.candidate_index) for m in matches] == [(0, 2), (1, 1), (2, 0)]


def _exact_raw(box_diff=0.0, score_diff=0.0, reference_value=0.0, images=1):
    """Raw outputs whose differences are exactly these (float64): reference_value everywhere, the candidate's box
    rows off by box_diff and its class-score rows by score_diff."""
    return _offset([np.full((84, 10), reference_value) for _ in range(images)], box_diff, score_diff)


def test_the_pass_tolerances_include_their_limits():
    limit = parity.PASS_MAX_BOX_ABS_REL * 160
    at_limits = parity.compare("ref", {"a.jpg": []}, {"a.jpg": []}, _exact_raw(limit, parity.PASS_MAX_SCORE_ABS), 160)
    assert (at_limits.verdict, at_limits.reason) == (
        "pass", "raw output (no detections on either side) agree within the pass tolerances",
    )  # fmt: skip
    over = parity.compare("ref", {"a.jpg": []}, {"a.jpg": []}, _exact_raw(0.4, 0.02), 160)
    assert (over.verdict, over.reason) == (
        "drift",
        "raw class scores differ by up to 0.02; raw boxes differ by up to 0.4 px",
    )


def test_a_raw_difference_of_exactly_the_fail_limit_is_a_drift():
    """FAIL_RAW_REL_MEAN is the most that is not a failure: 1 off a magnitude of 10 everywhere is exactly 10%."""
    raw = _exact_raw(1.0, 1.0, reference_value=10.0)
    assert raw.rel_mean == parity.FAIL_RAW_REL_MEAN
    assert parity.compare("ref", {"a.jpg": []}, {"a.jpg": []}, raw, 160).verdict == "drift"
    assert parity.compare("ref", {"a.jpg": []}, {"a.jpg": []}, _exact_raw(1.5, 1.5, 10.0), 160).verdict == "fail"


def test_outputs_of_zeros_on_both_sides_pass():
    zeros = _exact_raw()
    assert zeros.rel_mean is None and zeros.mean_abs == 0.0
    assert parity.compare("ref", {"a.jpg": []}, {"a.jpg": []}, zeros, 160).verdict == "pass"


def test_non_finite_output_fails_and_stops_the_comparison():
    diff = parity.RawDiff()
    candidate = np.zeros((84, 10))
    candidate[5, 3] = np.nan
    diff.add(np.zeros((84, 10)), candidate)
    diff.add(np.zeros((84, 10)), np.zeros((84, 10)))
    assert (diff.problem, diff.images) == ("output holds NaN or infinite values", 0)
    report = parity.compare("ref", {"a.jpg": []}, {"a.jpg": []}, diff, 160)
    assert (report.verdict, report.reason) == ("fail", "output holds NaN or infinite values")
    assert parity.compare("ref", {"a.jpg": []}, {"a.jpg": []}, parity.RawDiff(), 160).reason == (
        "no raw output to compare with the reference"
    )


def test_box_and_score_differences_are_kept_apart():
    diff = parity.RawDiff()
    reference = np.zeros((84, 10))
    candidate = reference.copy()
    candidate[3] += 0.01  # the last box row
    candidate[4] += 0.5  # the first class-score row
    diff.add(reference, candidate)
    assert (diff.box_max_abs, diff.score_max_abs) == (0.01, 0.5)
    assert diff.max_abs == 0.5


def test_the_raw_mean_is_relative_to_every_image_s_reference():
    rng = np.random.default_rng(1)
    diff = parity.RawDiff()
    references = [rng.uniform(0, 10, (84, 10)), rng.uniform(0, 100, (84, 10))]
    for reference in references:
        diff.add(reference, reference + 0.5)
    assert diff.sum_abs == pytest.approx(0.5 * 2 * 840)
    assert diff.rel_mean == pytest.approx(0.5 * 2 * 840 / sum(np.abs(r).sum() for r in references))


def test_raw_figures_round_trip_through_a_dict():
    diff = _raw(box_err=0.5, score_err=0.01)
    data = diff.to_dict()
    assert (data["max_abs"], data["mean_abs"], data["rel_mean"]) == (diff.max_abs, diff.mean_abs, diff.rel_mean)
    assert parity.RawDiff.from_dict(data) == diff
    assert parity.RawDiff.from_dict({**data, "from_a_newer_engine": 1}) == diff


def test_a_report_counts_every_image_s_boxes_and_names_each_match():
    reference = {"a.jpg": [box(0, 0, 10, 10), box(20, 20, 40, 40)], "b.jpg": [box(0, 0, 50, 50)], "c.jpg": []}
    candidate = {"a.jpg": [box(20, 20, 40, 40, score=0.8), box(0, 0, 10, 10)], "b.jpg": [box(60, 60, 70, 70)]}
    report = parity.compare("pytorch", reference, candidate, _exact_raw(), 160, iou_threshold=0.6)
    assert (report.reference_boxes, report.candidate_boxes, report.matched, report.missed, report.extra) == (
        3,
        3,
        2,
        1,
        1,
    )
    assert report.matches == {"a.jpg": {1: 0, 0: 1}, "b.jpg": {}, "c.jpg": {}}
    assert (report.mean_iou, report.max_score_diff) == (1.0, pytest.approx(0.1))
    assert report.row() == {
        "reference": "pytorch", "iou_threshold": 0.6, "verdict": "drift", "reason": report.reason,
        "raw_max_abs": 0.0, "raw_mean_abs": 0.0, "raw_rel_mean": None, "score_max_abs": 0.0, "box_max_abs": 0.0,
        "raw_images": 1, "reference_boxes": 3, "candidate_boxes": 3, "matched": 2, "missed": 1, "extra": 1,
        "mean_iou": 1.0, "max_score_diff": pytest.approx(0.1),
    }  # fmt: skip
    assert report.reason == "1 missed and 1 extra boxes; scores differ by up to 0.1"


def test_a_report_without_matches_or_raw_output_has_no_figures():
    report = parity.compare("ref", {"a.jpg": [box(0, 0, 10, 10)]}, {}, parity.RawDiff(unavailable="no raw"), 160)
    assert (report.mean_iou, report.max_score_diff, report.matched, report.missed) == (None, None, 0, 1)
    row = report.row()
    assert (row["raw_max_abs"], row["score_max_abs"], row["box_max_abs"], row["raw_images"]) == (None, None, None, 0)
    assert (report.verdict, report.reason) == ("fail", "found 0 of the reference's 1 boxes (no raw)")


@pytest.mark.parametrize(
    "reference, candidate, verdict, reason",
    [
        ([], [], None, "no detections on either side and no raw output: nothing to judge by"),
        ([box(0, 0, 10, 10)], [box(0, 0, 10, 10)], "pass",
         "detections agree within the pass tolerances (no raw output)"),
        ([box(0, 0, 10, 10), box(20, 20, 30, 30)], [box(0, 0, 10, 10)], "drift",
         "1 missed and 0 extra boxes (no raw output)"),
        ([box(0, 0, 10, 10), box(20, 20, 30, 30)], [], "fail", "found 0 of the reference's 2 boxes (no raw output)"),
        ([box(0, 0, 100, 1), box(20, 20, 30, 30)], [box(0, 0, 98, 1)], "drift",
         "1 missed and 0 extra boxes; mean IoU 0.980 < 0.99 (no raw output)"),
        ([], [box(0, 0, 10, 10), box(20, 20, 30, 30)], "fail", "2 of 2 boxes are not the reference's (no raw output)"),
    ],
)  # fmt: skip
def test_without_a_raw_output_the_detections_alone_decide(reference, candidate, verdict, reason):
    raw = parity.RawDiff(unavailable="no raw output")
    report = parity.compare("ref", {"a.jpg": reference}, {"a.jpg": candidate}, raw, 160)
    assert (report.verdict, report.reason) == (verdict, reason)


@pytest.mark.parametrize(
    "reference, candidate, verdict, reason",
    [
        # a third of the reference's boxes found: fewer than half
        ([box(0, 0, 10, 10), box(20, 20, 30, 30), box(40, 40, 50, 50)], [box(0, 0, 10, 10)], "fail",
         "found 1 of the reference's 3 boxes"),
        # a third of the candidate's boxes are the reference's
        ([box(0, 0, 10, 10)], [box(0, 0, 10, 10), box(20, 20, 30, 30), box(40, 40, 50, 50)], "fail",
         "2 of 3 boxes are not the reference's"),
        # exactly half of the candidate's boxes are the reference's: not fewer than half
        ([box(0, 0, 10, 10)], [box(0, 0, 10, 10), box(20, 20, 30, 30)], "drift", "0 missed and 1 extra boxes"),
        # boxes the candidate does not find at all
        ([box(0, 0, 10, 10), box(20, 20, 30, 30)], [], "fail", "found 0 of the reference's 2 boxes"),
        # every box found, overlapping at exactly the pass limit (99 / 100), scores exactly 1e-3 apart
        ([box(0, 0, 100, 1, score=0.002)], [box(0, 0, 99, 1, score=0.001)], "pass",
         "detections and raw output agree within the pass tolerances"),
        ([box(0, 0, 100, 1)], [box(0, 0, 98, 1)], "drift", "mean IoU 0.980 < 0.99"),
    ],
)  # fmt: skip
def test_the_box_limits(reference, candidate, verdict, reason):
    report = parity.compare("ref", {"a.jpg": reference}, {"a.jpg": candidate}, _exact_raw(), 160)
    assert (report.verdict, report.reason) == (verdict, reason)


def test_the_run_s_parity_iou_decides_what_matches():
    reference = {"a.jpg": [box(0, 0, 100, 10)]}
    candidate = {"a.jpg": [box(0, 0, 55, 10)]}  # IoU 0.55: a match at 0.5, none at 0.6
    assert parity.compare("ref", reference, candidate, _exact_raw(), 160, iou_threshold=0.5).matched == 1
    strict = parity.compare("ref", reference, candidate, _exact_raw(), 160, iou_threshold=0.6)
    assert (strict.matched, strict.verdict, strict.row()["iou_threshold"]) == (0, "fail", 0.6)
