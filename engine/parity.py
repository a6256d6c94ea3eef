"""Detection parity: does a converted model still output what the reference outputs, on the same inputs?

Pure numpy; no runtime library. The measuring worker feeds RawDiff one image at a time (the reference's
raw tensors are .npy files written by the reference job), and the runner matches final detections.

The reference is PyTorch fp32 on the checkpoint (or ONNX Runtime fp32 when only an .onnx was given), run in
its own process at the run's image size on the run's images, batch 1, through the same letterbox and
postprocess as every runtime.

Verdict, from the figures below (also in README, "Parity"):
- fail  when the output has another shape or non-finite values; or, when either side has detections,
        fewer than FAIL_MIN_RECALL of the reference's boxes are found, or fewer than FAIL_MIN_PRECISION of
        the candidate's boxes are the reference's; or the raw tensor is off by more than FAIL_RAW_REL_MEAN
        relative to the reference's own mean magnitude.
- pass  when every box is matched (class and IoU >= the run's parity IoU), the matched boxes overlap with
        mean IoU >= PASS_MIN_MEAN_IOU and scores within PASS_MAX_SCORE_DIFF, and the raw tensor agrees:
        class scores within PASS_MAX_SCORE_ABS and boxes within PASS_MAX_BOX_ABS_REL of the input size.
        With no detection on either side (untrained weights detect nothing) only the raw figures decide.
        Without a raw output (the ultralytics pipeline mode returns boxes only) the detections alone decide,
        and the reason says so; with no detection on either side too there is nothing to judge by, and the
        verdict is None ("unknown", as for a result without a reference) rather than a pass without evidence.
- drift otherwise: it works, but not identically; the figures say how far.
The pass tolerances are two orders of magnitude above what fp32 exports show (~1e-5 on scores, ~1e-4 px on
boxes) and below what bf16 or int8 rounding gives; the fail limits are what no quantization of a working
model reaches (half the boxes gone or invented, a tenth of the output's magnitude).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

DEFAULT_IOU = 0.5
PASS_MAX_SCORE_ABS = 1e-3
PASS_MAX_BOX_ABS_REL = 1e-3  # of the input side: 0.16 px at 160, 0.64 px at 640
PASS_MIN_MEAN_IOU = 0.99
PASS_MAX_SCORE_DIFF = 1e-3
FAIL_MIN_RECALL = 0.5
FAIL_MIN_PRECISION = 0.5
FAIL_RAW_REL_MEAN = 0.10

VERDICTS = ("pass", "drift", "fail")  # best first


def got_worse(before: str | None, now: str | None) -> bool:
    """Whether a verdict went down the order pass, drift, fail; an unknown verdict on either side is no change."""
    return before in VERDICTS and now in VERDICTS and VERDICTS.index(now) > VERDICTS.index(before)


@dataclass
class RawDiff:
    """|candidate - reference| over raw (4 + classes, anchors) outputs, accumulated one image at a time."""

    images: int = 0
    values: int = 0
    box_max_abs: float = 0.0
    score_max_abs: float = 0.0
    sum_abs: float = 0.0
    sum_reference_abs: float = 0.0
    problem: str | None = None  # a shape mismatch or non-finite output: the comparison itself fails
    unavailable: str | None = None  # why there is no raw output at all (ultralytics mode): boxes alone decide

    def add(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        if self.problem:
            return
        if reference.shape != candidate.shape:
            self.problem = (
                f"output shape {tuple(candidate.shape)} differs from the reference's {tuple(reference.shape)}"
            )
            return
        if not np.isfinite(candidate).all():
            self.problem = "output holds NaN or infinite values"
            return
        diff = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
        self.images += 1
        self.values += diff.size
        self.box_max_abs = max(self.box_max_abs, float(diff[:4].max(initial=0.0)))
        self.score_max_abs = max(self.score_max_abs, float(diff[4:].max(initial=0.0)))
        self.sum_abs += float(diff.sum())
        self.sum_reference_abs += float(np.abs(reference).sum(dtype=np.float64))

    @property
    def max_abs(self) -> float:
        return max(self.box_max_abs, self.score_max_abs)

    @property
    def mean_abs(self) -> float | None:
        return self.sum_abs / self.values if self.values else None

    @property
    def rel_mean(self) -> float | None:
        """Mean |difference| over mean |reference|: scale-free, dominated by the box coordinates."""
        return self.sum_abs / self.sum_reference_abs if self.sum_reference_abs else None

    def to_dict(self) -> dict:
        return {**asdict(self), "max_abs": self.max_abs, "mean_abs": self.mean_abs, "rel_mean": self.rel_mean}

    @classmethod
    def from_dict(cls, data: dict) -> RawDiff:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (n, 4) with every box in b (m, 4), both x1 y1 x2 y2."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _arrays(detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objects or dicts with x1 y1 x2 y2 score class_id -> boxes (n, 4), scores (n,), classes (n,)."""
    rows = [d if isinstance(d, dict) else vars(d) for d in detections]
    boxes = np.array([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in rows], dtype=np.float64).reshape(-1, 4)
    scores = np.array([r["score"] for r in rows], dtype=np.float64)
    classes = np.array([r["class_id"] for r in rows], dtype=np.int64)
    return boxes, scores, classes


@dataclass
class Match:
    reference_index: int
    candidate_index: int
    iou: float
    score_diff: float


def match_detections(reference, candidate, iou_threshold: float = DEFAULT_IOU) -> list[Match]:
    """One-to-one pairs of the same class with IoU >= threshold, greedily from the highest IoU down."""
    ref_boxes, ref_scores, ref_classes = _arrays(reference)
    cand_boxes, cand_scores, cand_classes = _arrays(candidate)
    ious = iou_matrix(ref_boxes, cand_boxes)
    ious[ref_classes[:, None] != cand_classes[None, :]] = 0.0
    matches = []
    while ious.size:
        r, c = np.unravel_index(int(ious.argmax()), ious.shape)
        if ious[r, c] < iou_threshold or ious[r, c] <= 0:
            break
        matches.append(Match(int(r), int(c), float(ious[r, c]), float(abs(ref_scores[r] - cand_scores[c]))))
        ious[r, :] = 0.0
        ious[:, c] = 0.0
    return sorted(matches, key=lambda m: m.reference_index)


@dataclass
class ParityReport:
    reference: str
    iou_threshold: float
    reference_boxes: int = 0
    candidate_boxes: int = 0
    matched: int = 0
    missed: int = 0
    extra: int = 0
    mean_iou: float | None = None
    max_score_diff: float | None = None
    raw: RawDiff = field(default_factory=RawDiff)
    verdict: str | None = None
    reason: str = ""
    matches: dict = field(default_factory=dict)  # image -> {candidate index: reference index}

    def row(self) -> dict:
        """The flat figures stored with the result."""
        return {
            "reference": self.reference,
            "iou_threshold": self.iou_threshold,
            "verdict": self.verdict,
            "reason": self.reason,
            "raw_max_abs": self.raw.max_abs if self.raw.images else None,
            "raw_mean_abs": self.raw.mean_abs,
            "raw_rel_mean": self.raw.rel_mean,
            "score_max_abs": self.raw.score_max_abs if self.raw.images else None,
            "box_max_abs": self.raw.box_max_abs if self.raw.images else None,
            "raw_images": self.raw.images,
            "reference_boxes": self.reference_boxes,
            "candidate_boxes": self.candidate_boxes,
            "matched": self.matched,
            "missed": self.missed,
            "extra": self.extra,
            "mean_iou": self.mean_iou,
            "max_score_diff": self.max_score_diff,
        }


def compare(
    reference_name: str, reference: dict, candidate: dict, raw: RawDiff, imgsz: int, iou_threshold: float = DEFAULT_IOU
) -> ParityReport:
    """reference and candidate map image -> detections; raw holds the tensor figures of the same images."""
    report = ParityReport(reference_name, iou_threshold, raw=raw)
    ious, score_diffs = [], []
    for image, ref_dets in reference.items():
        cand_dets = candidate.get(image, [])
        matches = match_detections(ref_dets, cand_dets, iou_threshold)
        report.matches[image] = {m.candidate_index: m.reference_index for m in matches}
        report.reference_boxes += len(ref_dets)
        report.candidate_boxes += len(cand_dets)
        report.matched += len(matches)
        ious += [m.iou for m in matches]
        score_diffs += [m.score_diff for m in matches]
    report.missed = report.reference_boxes - report.matched
    report.extra = report.candidate_boxes - report.matched
    report.mean_iou = float(np.mean(ious)) if ious else None
    report.max_score_diff = float(np.max(score_diffs)) if score_diffs else None
    report.verdict, report.reason = verdict(report, imgsz)
    return report


def verdict(report: ParityReport, imgsz: int) -> tuple[str | None, str]:
    """pass / drift / fail and the reason in words; see the module docstring for the thresholds."""
    raw = report.raw
    if raw.problem:
        return "fail", raw.problem
    if raw.unavailable:
        return _detections_only_verdict(report, raw.unavailable)
    if not raw.images:
        return "fail", "no raw output to compare with the reference"
    if raw.rel_mean is not None and raw.rel_mean > FAIL_RAW_REL_MEAN:
        return "fail", f"raw output differs by {raw.rel_mean:.1%} of its magnitude (limit {FAIL_RAW_REL_MEAN:.0%})"
    boxes = report.reference_boxes or report.candidate_boxes
    if boxes:
        failure = _box_failure(report)
        if failure:
            return "fail", failure
    problems = _box_problems(report)
    if raw.score_max_abs > PASS_MAX_SCORE_ABS:
        problems.append(f"raw class scores differ by up to {raw.score_max_abs:.3g}")
    if raw.box_max_abs > PASS_MAX_BOX_ABS_REL * imgsz:
        problems.append(f"raw boxes differ by up to {raw.box_max_abs:.3g} px")
    if problems:
        return "drift", "; ".join(problems)
    basis = "detections and raw output" if boxes else "raw output (no detections on either side)"
    return "pass", f"{basis} agree within the pass tolerances"


def _detections_only_verdict(report: ParityReport, why: str) -> tuple[str | None, str]:
    if not (report.reference_boxes or report.candidate_boxes):
        return None, f"no detections on either side and {why}: nothing to judge by"
    failure = _box_failure(report)
    if failure:
        return "fail", f"{failure} ({why})"
    problems = _box_problems(report)
    if problems:
        return "drift", f"{'; '.join(problems)} ({why})"
    return "pass", f"detections agree within the pass tolerances ({why})"


def _box_failure(report: ParityReport) -> str | None:
    recall = report.matched / report.reference_boxes if report.reference_boxes else 1.0  # none to find
    precision = report.matched / report.candidate_boxes if report.candidate_boxes else 0.0
    if recall < FAIL_MIN_RECALL:
        return f"found {report.matched} of the reference's {report.reference_boxes} boxes"
    if precision < FAIL_MIN_PRECISION:
        return f"{report.extra} of {report.candidate_boxes} boxes are not the reference's"
    return None


def _box_problems(report: ParityReport) -> list[str]:
    problems = []
    if report.missed or report.extra:
        problems.append(f"{report.missed} missed and {report.extra} extra boxes")
    if report.mean_iou is not None and report.mean_iou < PASS_MIN_MEAN_IOU:
        problems.append(f"mean IoU {report.mean_iou:.3f} < {PASS_MIN_MEAN_IOU}")
    if report.max_score_diff is not None and report.max_score_diff > PASS_MAX_SCORE_DIFF:
        problems.append(f"scores differ by up to {report.max_score_diff:.3g}")
    return problems
