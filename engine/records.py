"""The typed records that cross the run's boundaries: the job a measuring worker gets (MeasureJob), what it sends
back per batch size (BatchMeasurement, InFlightFigure), and the result the store writes (ResultRecord with its
samples, statistics, detections, images, parity and mAP rows).

Frozen dataclasses: a field renamed on one side fails where it is read, instead of arriving as a silent NULL.
engine/store.py maps ResultRecord's fields to the results table's columns one by one (RESULT_COLUMNS), and a
test holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from engine.measure import Stats


@dataclass(frozen=True)
class MeasureJob:
    """One runtime, precision and mode at one batch size, in one worker process."""

    runtime: str
    precision: str
    mode: str
    batch: int
    artifact: str  # the file (or folder) the runtime loads
    images: tuple[str, ...]
    imgsz: int
    threads: int
    warmup: int
    iters: int
    min_duration_s: float
    max_iters: int
    conf: float
    iou: float
    names: dict  # class id -> name, as the model gives them
    reference_raw: str | None = None  # the parity reference's raw outputs, compared as the detections are found
    data_yaml: str | None = None  # labelled data for mAP
    in_flight: int = 0  # requests in flight after the latency measurement (0: none)
    log_path: str | None = None
    profile: int = 0  # calls under the runtime's own profiler after the measurement (0: none)
    model_path: str | None = None  # the .pt (or .yaml) the export started from: its modules name the profile's


@dataclass(frozen=True)
class StageSample:
    """One measured call's stages in nanoseconds (the whole batch's); other: the ultralytics predictor's time
    outside its own stage figures."""

    decode: int
    pre: int
    infer: int
    post: int
    other: int | None = None

    @property
    def total(self) -> int:
        return self.pre + self.infer + self.post + (self.other or 0)


@dataclass(frozen=True)
class BatchMeasurement:
    """What a worker measured for one batch size; status 'failed' with an error and nothing else where it broke."""

    batch: int
    status: str
    error: str | None = None
    samples: tuple[StageSample, ...] = ()
    settings: dict = field(default_factory=dict)  # what the runtime read back (threads, precision, providers...)
    input_shape: tuple[int, ...] | None = None
    load_s: float | None = None
    model_file: str | None = None
    detections: dict = field(default_factory=dict)  # image path -> list of Detection fields
    raw_diff: dict | None = None  # engine/parity.py RawDiff against the reference's raw outputs
    peak_memory_mb: float | None = None
    accuracy: dict | None = None  # mAP, or its error


@dataclass(frozen=True)
class InFlightFigure:
    """Throughput with several requests in flight, measured after the batch's result; images_per_s None: the
    settings say why there is no figure."""

    batch: int
    requests: int
    images_per_s: float | None
    settings: dict


@dataclass(frozen=True)
class DetectionRow:
    image: str
    det_index: int
    class_id: int
    class_name: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float
    reference_index: int | None = None  # the reference box it matched; None: an extra box


@dataclass(frozen=True)
class ImageRow:
    image: str
    annotated_path: str | None
    detections: int


@dataclass(frozen=True)
class ParityRow:
    verdict: str | None
    reason: str | None = None
    reference: str | None = None
    iou_threshold: float | None = None
    raw_max_abs: float | None = None
    raw_mean_abs: float | None = None
    raw_rel_mean: float | None = None
    score_max_abs: float | None = None
    box_max_abs: float | None = None
    raw_images: int | None = None
    reference_boxes: int | None = None
    candidate_boxes: int | None = None
    matched: int | None = None
    missed: int | None = None
    extra: int | None = None
    mean_iou: float | None = None
    max_score_diff: float | None = None


@dataclass(frozen=True)
class AccuracyRow:
    data: str | None = None
    images: int | None = None
    instances: int | None = None
    map50: float | None = None
    map50_95: float | None = None
    precision: float | None = None
    recall: float | None = None
    error: str | None = None


def from_row(record_type, row: dict):
    """A child row (ParityRow, AccuracyRow) from the dict its module computes: its fields' values, None for those
    the dict lacks; keys that are not fields are left out."""
    return record_type(**{f.name: row.get(f.name) for f in fields(record_type)})


# A result's status beside "completed" and "failed": exported and stored, on a machine that cannot run it (its
# reason in error: CoreML off macOS, say). Not a failure, and nothing measured.
EXPORTED = "exported"


@dataclass(frozen=True)
class ResultRecord:
    """One result as the store writes it: its row of results, then its measured children."""

    result_id: str
    run_id: str
    runtime: str
    precision: str
    batch: int
    status: str
    mode: str = "lean"
    device: str = "cpu"
    error: str | None = None
    imgsz: int | None = None
    input_shape: tuple[int, ...] | None = None
    threads: int | None = None
    settings: dict = field(default_factory=dict)
    export_cached: bool | None = None
    export_s: float | None = None
    load_s: float | None = None
    warmup: int | None = None
    model_file: str | None = None
    in_flight: int | None = None
    in_flight_ips: float | None = None
    peak_memory_mb: float | None = None
    model_mb: float | None = None
    # its children, in tables of their own
    samples: tuple[StageSample, ...] = ()
    stats: dict[str, Stats] = field(default_factory=dict)  # stage -> per-image statistics
    detections: tuple[DetectionRow, ...] = ()
    images: tuple[ImageRow, ...] = ()
    parity: ParityRow | None = None
    accuracy: AccuracyRow | None = None

    CHILDREN = ("samples", "stats", "detections", "images", "parity", "accuracy")

    @classmethod
    def column_fields(cls) -> tuple[str, ...]:
        """The fields that are columns of the results table."""
        return tuple(f.name for f in fields(cls) if f.name not in cls.CHILDREN)
