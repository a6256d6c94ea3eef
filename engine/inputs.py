"""The run's inputs, checked before anything is written: its images (files and folders, each fully decoded once)
and its models (--model and --reference resolved to files, in a worker where a .pt must be loaded)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine import models
from engine.config import IMAGE_SUFFIXES, BenchError, RunConfig
from engine.paths import sample_images
from engine.supervise import JobFailed, run_job

IMAGE_TYPES = "/".join(IMAGE_SUFFIXES)  # for messages: ".jpg/.jpeg/.png/..."
MAX_IMAGE_SIDE = 16384
MAX_IMAGES = 500


def image_key(index: int, path: str) -> str:
    """How a run's rows name an image: its place in the run and its file name ("07-bus.jpg")."""
    return f"{index:02d}-{Path(path).name}"


def resolve_images(specs: list[str]) -> tuple[list[str], list[str]]:
    """Files and folders -> (image files that decode, files in the folders left out for their suffix);
    a clear error for anything else."""
    from PIL import Image

    paths: list[Path] = []
    left_out: list[str] = []
    for spec in specs or [str(p) for p in sample_images()]:
        path = Path(spec).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            found = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            left_out.extend(str(p) for p in files if p.suffix.lower() not in IMAGE_SUFFIXES)
            if not found:
                raise BenchError(f"image folder {path} holds no {IMAGE_TYPES} images")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise BenchError(f"image {spec} does not exist")
    if not paths:
        raise BenchError("no images: pass --images with files or a folder (or install ultralytics for its samples)")
    if len(paths) > MAX_IMAGES:
        raise BenchError(f"{len(paths)} images given; at most {MAX_IMAGES} per run")
    for path in paths:
        _check_image(path, Image)
    return [str(p.resolve()) for p in paths], left_out


def _check_image(path: Path, Image) -> None:
    import cv2

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise BenchError(f"image {path} is too large: sides must be 8 to {MAX_IMAGE_SIDE} pixels") from None
    except Exception:
        raise BenchError(f"image {path} cannot be read: it is not an image file or it is corrupt") from None
    if width < 8 or height < 8 or max(width, height) > MAX_IMAGE_SIDE:
        raise BenchError(f"image {path} is {width}x{height}: sides must be 8 to {MAX_IMAGE_SIDE} pixels")
    try:  # a full decode: OpenCV would accept a truncated JPEG and fill the rest with grey
        with Image.open(path) as image:
            image.load()
    except Exception:
        raise BenchError(f"image {path} cannot be decoded: the file is truncated or corrupt") from None
    if cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
        raise BenchError(f"image {path} cannot be decoded by OpenCV: convert it to JPEG or PNG")


def resolve_model(
    spec: str, config: RunConfig, log_path: Path, emit: Callable[..., None], check_stop: Callable[[], bool]
) -> dict:
    """--model or --reference: a .pt file resolved before is read from what was kept (models.kept); else a worker
    loads it (it imports torch and unpickles the file)."""
    known = models.kept(spec)
    if known is not None:
        emit(
            "stage",
            stage="prepare model",
            message=f"resolving {spec}: known from an earlier run (the same file contents)",
        )
        return known.to_dict()
    emit("stage", stage="prepare model", message=f"resolving {spec}")
    try:
        model = run_job(
            "prepare",
            {"model": spec, "log_path": str(log_path)},
            timeout_s=min(config.timeout_s, 600),
            memory_limit_mb=config.effective_memory_limit_mb,
            should_cancel=check_stop,
        )  # nothing to cancel yet: Ctrl-C stops it
    except JobFailed as error:
        raise BenchError(str(error).splitlines()[0]) from None
    models.keep(model)
    return model


def resolve_reference_model(
    model: dict, config: RunConfig, log_path: Path, emit: Callable[..., None], check_stop: Callable[[], bool]
) -> dict:
    """--reference, which must have the model's classes to be compared with it."""
    try:
        reference = resolve_model(config.reference, config, log_path, emit, check_stop)
    except BenchError as error:
        raise BenchError(f"reference model: {error}") from None
    if model["names"] and len(reference["names"]) != len(model["names"]):
        raise BenchError(
            f"reference model {config.reference} has {len(reference['names'])} classes and "
            f"model {config.model} {len(model['names'])}: they cannot be compared"
        )
    return reference
