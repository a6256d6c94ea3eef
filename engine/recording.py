"""The recording stage: what a worker measured becomes the stored result. Per-image statistics of each stage,
parity against the run's reference, the detection and image rows with their annotated images, mAP, all written as
one ResultRecord in one transaction; each stored result is announced as a "result" event (its stage medians)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from engine import store
from engine.config import RunConfig, Variant
from engine.export_stage import Artifact
from engine.inputs import image_key
from engine.measure import Stats
from engine.paths import artifacts_dir
from engine.records import (
    EXPORTED,
    AccuracyRow,
    BatchMeasurement,
    DetectionRow,
    ImageRow,
    InFlightFigure,
    ParityRow,
    ResultRecord,
    from_row,
)
from engine.reference_stage import ParityReference

SUMMARY_FIELDS = ("result_id", "runtime", "precision", "batch", "mode", "status", "error")


class Recorder:
    def __init__(self, config: RunConfig, run_id: str, emit: Callable[..., None]):
        self.config = config
        self.run_id = run_id
        self.emit = emit
        self.reference = ParityReference(name=None)
        self.labelled = None  # accuracy.LabelledData when --data is given
        self.summaries: list[dict] = []  # every result stored so far, in order

    def insert_run(self, machine: dict, model: dict, images: list[str]) -> None:
        """The run's row, once its input is accepted; it stays 'running' until the runner finishes it."""
        config = self.config
        gflops_640 = model.get("gflops_640")
        store.insert_run(
            config.db,
            {
                "run_id": self.run_id,
                "started_at": store.now(),
                "machine_id": machine["machine_id"],
                "machine_label": machine["label"],
                "model": model["display_name"] or config.model,
                "model_sha256": model["sha256"],
                "model_source": model["source"],
                "weights_trained": model["trained"],
                "imgsz": config.imgsz,
                "images": images,
                "config": {**config.to_dict(), "host": socket.gethostname()},  # whose pid it is, in a shared store
                "libraries": machine["libraries"],
                "pid": os.getpid(),
                "model_gflops": gflops_640 * (config.imgsz / 640) ** 2
                if gflops_640
                else None,  # FLOPs scale with pixels
            },
        )

    def base(self, variant: Variant, runtime_class) -> dict:
        """The fields every result of one configuration shares."""
        return {
            "runtime": variant.runtime,
            "precision": variant.precision,
            "mode": variant.mode,
            "device": runtime_class.device,
            "imgsz": self.config.imgsz,
            "threads": self.config.effective_threads,
            "warmup": runtime_class.warmup_calls(self.config.warmup),
        }

    def result_id(self, base: dict, batch: int) -> str:
        mode = base["mode"]  # lean keeps the ids of schema v3
        return f"{self.run_id}-{base['runtime']}-{base['precision']}-b{batch}" + ("" if mode == "lean" else f"-{mode}")

    def failed(
        self, base: dict, batch: int, reason: str, artifact: Artifact | None = None, export_cached: bool | None = None
    ) -> dict:
        record = ResultRecord(
            **self._fields(base, batch, artifact),
            status="failed",
            error=reason,
            **({} if artifact else {"export_cached": export_cached}),
        )
        return self._write(record)

    def exported(self, base: dict, artifact: Artifact, reason: str) -> dict:
        """A configuration exported and stored (size, export time) on a machine that cannot run it (reason)."""
        return self._write(ResultRecord(**self._fields(base, artifact.batch, artifact), status=EXPORTED, error=reason))

    def measured(
        self, base: dict, artifact: Artifact, measurement: BatchMeasurement, images: list[str], model: dict
    ) -> dict:
        if measurement.status != "completed":
            return self.failed(base, measurement.batch, measurement.error or "no reason given", artifact)
        fields = self._fields(base, measurement.batch, artifact, measurement.settings)
        fields.update(
            input_shape=measurement.input_shape,
            load_s=measurement.load_s,
            model_file=measurement.model_file or artifact.path,
            peak_memory_mb=measurement.peak_memory_mb,
        )
        report = self._parity(base["mode"], measurement)
        parity = from_row(ParityRow, report.row()) if report else ParityRow(verdict=None, reason=self.reference.error)
        names = {int(k): v for k, v in model.get("names", {}).items()}
        detections, image_rows = self._detection_rows(
            fields, measurement.detections, images, names, model, report.matches if report else {}
        )
        record = ResultRecord(
            **fields,
            status="completed",
            samples=measurement.samples,
            stats=_stats(measurement),
            detections=tuple(detections),
            images=tuple(image_rows),
            parity=parity,
            accuracy=self._accuracy(measurement.accuracy),
        )
        return self._write(record)

    def _fields(self, base: dict, batch: int, artifact: Artifact | None, settings: dict | None = None) -> dict:
        fields = {
            **base,
            "result_id": self.result_id(base, batch),
            "run_id": self.run_id,
            "batch": batch,
            "settings": {
                **(settings or {}),
                "timeout_s": self.config.timeout_s,
                "memory_limit_mb": self.config.effective_memory_limit_mb,
            },
        }
        if artifact:
            fields.update(
                export_cached=artifact.export_cached,
                export_s=artifact.export_s,
                model_mb=artifact.model_mb,
                model_file=artifact.path,
            )
        return fields

    def _write(self, record: ResultRecord) -> dict:
        store.insert_result(self.config.db, record)
        # The progress event of a stored result: its stage medians for the progress line; the run's table and
        # JSON come from the store's results_summary view (cli_output.run_document)
        summary = {name: getattr(record, name) for name in SUMMARY_FIELDS}
        summary.update({f"{stage}_ms": stats.median for stage, stats in record.stats.items()})
        if record.parity:
            summary["parity_verdict"] = record.parity.verdict
        self.summaries.append(summary)
        self.emit("result", **summary)
        return summary

    def in_flight(self, variant: Variant, stored: list[dict], figure: InFlightFigure) -> None:
        """The in-flight figure, measured after its result was stored: added to that result, or why it is not."""
        result = next(r for r in stored if r["batch"] == figure.batch)
        store.record_in_flight(
            self.config.db, result["result_id"], figure.requests, figure.images_per_s, figure.settings
        )
        result.update(in_flight=figure.requests, in_flight_ips=figure.images_per_s)
        message = f"b{figure.batch} in flight ({figure.requests} requests): " + (
            f"{figure.images_per_s:.1f} img/s end to end"
            if figure.images_per_s is not None
            else f"no figure ({figure.settings.get('error')}); the one-at-a-time result is kept"
        )
        boxes = figure.settings.get("boxes") or {}
        if not boxes.get("same_as_one_at_a_time", True):
            message += f"; NOT the boxes found one at a time ({boxes.get('difference')})"
        self.emit("stage", variant=variant.label, batch=figure.batch, stage="in flight", message=message)

    def profile(self, variant: Variant, stored: list[dict], figure) -> None:
        """The runtime's own profile (engine/profiles.py), taken after its result was stored: added to it."""
        from engine.profiles import coverage

        result = next(r for r in stored if r["batch"] == figure.batch)
        store.record_profile(self.config.db, result["result_id"], figure)
        if figure.error:
            message = f"b{figure.batch} profile: none ({figure.error})"
        else:
            infer = result.get("infer_ms")  # per image
            shares = coverage(figure.rows, infer * figure.batch if infer else None)
            message = (
                f"b{figure.batch} profile ({figure.profiler}, {figure.calls} calls): {shares['profiled_ms']:.2f} ms "
                f"per call, {shares['mapped_share']:.0%} charged to a module"
            )
        self.emit("stage", variant=variant.label, batch=figure.batch, stage="profile", message=message)

    def _parity(self, mode: str, measurement: BatchMeasurement):
        """The result against the reference (engine/parity.py); None without a reference."""
        from engine.parity import RawDiff, compare

        if not self.reference.name:
            return None
        if mode == "ultralytics":  # the predictor hands back boxes only, no raw tensor
            raw = RawDiff(unavailable="raw output not available in ultralytics mode")
        else:
            raw = RawDiff.from_dict(measurement.raw_diff or {})
        return compare(
            self.reference.name,
            self.reference.detections,
            measurement.detections,
            raw,
            self.config.imgsz,
            self.config.parity_iou,
        )

    def _accuracy(self, accuracy: dict | None) -> AccuracyRow | None:
        if not self.labelled or accuracy is None:
            return None
        return from_row(
            AccuracyRow,
            {
                **accuracy,
                "data": self.labelled.source,
                "images": self.labelled.images,
                "instances": self.labelled.instances,
            },
        )

    def _detection_rows(
        self, fields: dict, found: dict, images: list[str], names: dict, model: dict, matches: dict
    ) -> tuple[list[DetectionRow], list[ImageRow]]:
        """Every detection of every image; an annotated image per image for the smallest batch size."""
        from engine.pipeline import Detection

        detection_rows, image_rows = [], []
        smallest = fields["batch"] == min(self.config.batch_sizes)
        for index, path in enumerate(images):
            key = image_key(index, path)
            dets = [Detection(**d) for d in found.get(path, [])]
            detection_rows += [
                DetectionRow(
                    key,
                    i,
                    det.class_id,
                    names.get(det.class_id, str(det.class_id)),
                    det.score,
                    det.x1,
                    det.y1,
                    det.x2,
                    det.y2,
                    matches.get(path, {}).get(i),
                )
                for i, det in enumerate(dets)
            ]
            annotated = self._annotate(fields, path, key, dets, names, model) if smallest else None
            image_rows.append(ImageRow(key, annotated, len(dets)))
        return detection_rows, image_rows

    def _annotate(self, fields: dict, path: str, key: str, dets: list, names: dict, model: dict) -> str:
        import cv2

        from engine.pipeline import annotate

        folder = artifacts_dir(self.config.db, self.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        mode = "" if fields["mode"] == "lean" else f" {fields['mode']}"
        title = f"{fields['runtime']} {fields['precision']} b{fields['batch']}{mode}"
        picture = annotate(cv2.imread(path, cv2.IMREAD_COLOR), dets, names, model.get("trained"), title)
        target = folder / (
            f"{fields['runtime']}-{fields['precision']}-b{fields['batch']}{mode.replace(' ', '-')}-{key}.jpg"
        )
        cv2.imwrite(str(target), picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return str(target)


def _stats(measurement: BatchMeasurement) -> dict[str, Stats]:
    """Per-image statistics of each stage, and of the total (pre + infer + post, plus the predictor's other)."""
    samples, batch = measurement.samples, measurement.batch
    stages = ("decode", "pre", "infer", "post") + (("other",) if samples[0].other is not None else ())
    per_image = {stage: [getattr(s, stage) / batch / 1e6 for s in samples] for stage in stages}
    per_image["total"] = [s.total / batch / 1e6 for s in samples]
    return {stage: Stats.from_values(values) for stage, values in per_image.items()}
