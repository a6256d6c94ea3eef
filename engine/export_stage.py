"""The export stage of one configuration: for each batch size, the file its runtime loads, from the export cache
(engine/export.py) or exported now in a worker process; or why there is none."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.config import RunConfig, Variant
from engine.supervise import Cancelled, JobFailed, run_job


@dataclass(frozen=True)
class Artifact:
    """What a batch size's runtime loads, and how it was got."""

    batch: int
    path: str
    export_cached: bool | None  # None: the model file itself, nothing exported
    export_s: float
    model_mb: float | None


@dataclass(frozen=True)
class ExportFailure:
    batch: int
    reason: str
    export_cached: bool | None


def prepare_artifacts(
    variant: Variant,
    runtime_class,
    model: dict,
    images: list[str],
    config: RunConfig,
    log_folder: Path,
    emit: Callable[..., None],
    should_cancel: Callable[[], bool],
) -> tuple[dict[int, Artifact], list[ExportFailure]]:
    """Each batch size's artifact, in the order of config.batch_sizes, and the batch sizes that have none."""
    artifacts: dict[int, Artifact] = {}
    failures: list[ExportFailure] = []
    for batch in config.batch_sizes:
        if should_cancel():
            raise Cancelled()
        request = runtime_class.export_request(variant.precision, batch, config.imgsz)
        if model["kind"] == "onnx" or request is None:
            artifacts[batch] = Artifact(batch, model["path"], None, 0.0, runtime_class.artifact_mb(Path(model["path"])))
            continue
        outcome = _exported(variant, batch, request, model, images, config, log_folder, emit, should_cancel)
        if isinstance(outcome, ExportFailure):
            failures.append(outcome)
            continue
        output, was_cached, export_s = outcome
        try:
            path = runtime_class.artifact(output, variant.precision)
        except Exception as error:
            failures.append(ExportFailure(batch, f"export output unusable: {error}", was_cached))
            continue
        artifacts[batch] = Artifact(batch, str(path), was_cached, export_s, runtime_class.artifact_mb(path))
    return artifacts, failures


def _exported(
    variant: Variant,
    batch: int,
    request: dict,
    model: dict,
    images: list[str],
    config: RunConfig,
    log_folder: Path,
    emit,
    should_cancel,
):
    """(output, whether it was cached, seconds exporting) or an ExportFailure."""
    from engine import export

    output = export.cached(export.export_key(model["sha256"], request))
    if output is not None:
        return output, True, 0.0
    emit(
        "stage",
        variant=variant.label,
        batch=batch,
        stage="export",
        message=f"exporting {request['format']} (batch {batch})",
    )
    started = time.perf_counter()
    log_path = log_folder / f"export-{variant.runtime}-{variant.precision}-b{batch}.log"
    try:
        output = Path(
            run_job(
                "export",
                {
                    "model_path": model["path"],
                    "model_sha256": model["sha256"],
                    "names": model["names"],
                    "request": request,
                    "images": images,
                    "log_path": str(log_path),
                },
                config.timeout_s,
                should_cancel=should_cancel,
                memory_limit_mb=config.effective_memory_limit_mb,
            )
        )
    except JobFailed as error:
        return ExportFailure(batch, f"export to {request['format']} failed: {error}", False)
    return output, False, time.perf_counter() - started


def refusal_of(variant: Variant, runtime_class) -> str | None:
    """Why this configuration cannot run at all here (its runtime is unavailable), or None. An .onnx model's
    runtimes that cannot take the file are left out before the run starts (Runner.onnx_variants)."""
    available, reason = runtime_class.availability()
    return None if available else f"{variant.runtime} is unavailable on this machine: {reason}"
