"""Resolving a --model argument to a file, hashing it, and the offline fallback to untrained weights.

Runs in a worker process: loading a checkpoint imports torch and ultralytics, and unpickles code. What a .pt
file's contents gave (trained or not, class names, FLOPs) is kept by its hash, so a later run of the same file
reads it here without a worker (`kept`): importing torch there cost ~3 s of every run.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.config import DEFAULT_MODEL, BenchError
from engine.paths import cache_dir, read_json, write_json_whole

FALLBACK_SEED = 0
KEPT_RECIPE = 1  # part of a kept file's key: raise it when what _pt_model reads from a checkpoint changes
UNTRAINED_MARK = "yolo_bench_untrained"
WEIGHTS_WORDS = {True: "trained weights", False: "UNTRAINED weights", None: "weights of unknown training"}


def model_and_weights(model: str, trained: bool | None) -> str:
    """'yolov8n (trained weights)'; a name that already says its weights (the offline fallback's) is left alone."""
    if "weights" in model.lower():
        return model
    return f"{model} ({WEIGHTS_WORDS[trained]})"


@dataclass
class ModelInfo:
    path: str  # the file the exports start from
    kind: str  # "pt" or "onnx"
    sha256: str
    trained: bool | None  # None when it cannot be told (an ONNX file given directly)
    source: str  # how it was obtained, in words
    names: dict = field(default_factory=dict)
    display_name: str = ""
    gflops_640: float | None = None  # per image at 640x640; scales with pixel count for other sizes
    input_shape: list | None = None  # an .onnx given directly: its input's dims, None where one is free (dynamic)

    def to_dict(self) -> dict:
        return asdict(self)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(spec: str) -> ModelInfo:
    spec = spec.strip() or DEFAULT_MODEL
    path = Path(spec).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _onnx_model(path)
    if suffix in (".yaml", ".yml"):
        return _untrained_from_yaml(spec, reason=f"built from architecture {spec}")
    if suffix != ".pt":
        raise BenchError(f"model {spec!r} is not a .pt, .onnx or .yaml file: give an Ultralytics detection model")
    local = _local_checkpoint(path)
    if local is not None:
        return _pt_model(*local)
    if path.parent != Path("."):
        raise BenchError(f"model file {spec} does not exist")
    downloaded = _download_official(path.name)
    if downloaded is not None:
        return _pt_model(downloaded, source=f"Ultralytics release asset {path.name}")
    if path.name == DEFAULT_MODEL:
        return _untrained_from_yaml(
            "yolov8n.yaml", reason=f"{DEFAULT_MODEL} could not be downloaded (offline?); built yolov8n.yaml instead"
        )
    hint = (
        f"; offline, --model {path.stem}.yaml benchmarks its architecture with untrained weights"
        if _is_detection_architecture(f"{path.stem}.yaml")
        else ""
    )
    raise BenchError(f"model {spec} is neither a local file nor downloadable: check the name or the network{hint}")


def _is_detection_architecture(yaml_name: str) -> bool:
    """Whether Ultralytics ships this architecture (yolo11n.yaml from yolo11n.pt) and its head is a Detect."""
    try:
        from ultralytics.nn.tasks import yaml_model_load

        return yaml_model_load(yaml_name)["head"][-1][2] == "Detect"
    except Exception:
        return False


def _local_checkpoint(path: Path) -> tuple[Path, str] | None:
    """The .pt file a --model path names, or an official name's copy downloaded before, with how it was got."""
    if path.is_file():
        return path, f"local file {path}"
    official = cache_dir() / "models" / path.name
    if path.parent == Path(".") and official.is_file():
        return official, f"Ultralytics release asset {path.name}"
    return None


def _download_official(name: str) -> Path | None:
    """The real Ultralytics loading path: a download from the release assets (a copy made before is found by
    _local_checkpoint)."""
    target = cache_dir() / "models" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        from ultralytics.utils.downloads import attempt_download_asset

        found = Path(attempt_download_asset(str(target)))
    except Exception:
        return None
    return found if found.is_file() else None


def _untrained_from_yaml(yaml_name: str, reason: str) -> ModelInfo:
    """The same architecture with seeded random weights, saved once and marked untrained in the checkpoint."""
    import torch
    from ultralytics import YOLO

    stem = Path(yaml_name).stem
    target = cache_dir() / "models" / f"{stem}-untrained-seed{FALLBACK_SEED}.pt"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(FALLBACK_SEED)
        try:
            model = YOLO(yaml_name)
        except Exception as error:
            raise BenchError(f"cannot build a model from {yaml_name}: {error}") from None
        if model.task != "detect":
            raise BenchError(f"{yaml_name} describes a {model.task} model; this lab benchmarks detection models")
        partial = target.with_suffix(".partial")
        model.save(str(partial))
        checkpoint = torch.load(partial, map_location="cpu", weights_only=False)
        checkpoint[UNTRAINED_MARK] = True
        torch.save(checkpoint, partial)
        partial.replace(target)
    return _pt_model(target, source=reason)


def _display_name(path: Path, trained: bool) -> str:
    """The file's name; the offline fallback's file (yolov8n-untrained-seed0.pt) is 'yolov8n (untrained weights,
    seed 0)' however it is given, the default name or its path, so that one model is one name in the history."""
    built = re.fullmatch(r"(.+)-untrained-seed(\d+)\.pt", path.name)
    return f"{built[1]} (untrained weights, seed {built[2]})" if built and not trained else path.name


def _pt_model(path: Path, source: str) -> ModelInfo:
    try:
        from ultralytics.nn.tasks import load_checkpoint

        model, checkpoint = load_checkpoint(path, device="cpu")
    except Exception as error:
        raise BenchError(f"{path} is not an Ultralytics model checkpoint ({type(error).__name__}: {error})") from None
    task = getattr(model, "task", "")
    if task != "detect":
        raise BenchError(f"{path} is a {task or 'non-detection'} model; this lab benchmarks detection models")
    trained = not checkpoint.get(UNTRAINED_MARK) and bool(checkpoint.get("train_args"))
    names = {int(k): str(v) for k, v in dict(getattr(model, "names", {})).items()}
    from ultralytics.utils.torch_utils import get_flops

    gflops = get_flops(model, 640) or None
    return ModelInfo(
        str(path),
        "pt",
        file_sha256(path),
        trained,
        source,
        names,
        display_name=_display_name(path, trained),
        gflops_640=gflops,
    )


def _kept_file(sha256: str) -> Path:
    return cache_dir() / "models" / "resolved" / f"{sha256}.json"


def _kept_key() -> dict:
    from importlib.metadata import version

    return {"recipe": KEPT_RECIPE, "ultralytics": version("ultralytics")}


def keep(info: dict) -> None:
    """Keep what a .pt file's contents gave (resolve's answer, from the worker) for `kept`."""
    if info["kind"] != "pt":
        return
    contents = {key: info[key] for key in ("trained", "names", "gflops_640")}
    write_json_whole(_kept_file(info["sha256"]), {"key": _kept_key(), **contents})


def kept(spec: str) -> ModelInfo | None:
    """resolve(spec) without a worker, for a .pt file (a path, or an official name downloaded before) whose
    contents were resolved before with this Ultralytics; None where the worker must answer (a download, the
    offline fallback, a new or changed file)."""
    path = Path(spec.strip() or DEFAULT_MODEL).expanduser()
    local = _local_checkpoint(path) if path.suffix.lower() == ".pt" else None
    if local is None:
        return None
    path, source = local
    sha256 = file_sha256(path)
    contents = read_json(_kept_file(sha256))
    if contents.get("key") != _kept_key():
        return None
    names = {int(k): v for k, v in contents["names"].items()}
    return ModelInfo(
        str(path),
        "pt",
        sha256,
        contents["trained"],
        source,
        names,
        display_name=_display_name(path, contents["trained"]),
        gflops_640=contents["gflops_640"],
    )


def _onnx_model(path: Path) -> ModelInfo:
    if not path.is_file():
        raise BenchError(f"ONNX model file {path} does not exist")
    import ast

    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise BenchError(f"{path} is not a readable ONNX model ({type(error).__name__})") from None
    inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    outputs = list(proto.graph.output)
    rank_in = len(inputs[0].type.tensor_type.shape.dim) if inputs else 0
    rank_out = len(outputs[0].type.tensor_type.shape.dim) if outputs else 0
    if len(inputs) != 1 or rank_in != 4 or rank_out != 3:
        raise BenchError(
            f"{path} does not look like a YOLO detection model: expected one 4-D image input and a 3-D "
            f"(batch, 4 + classes, anchors) output, got {len(inputs)} input(s) of rank {rank_in}, output rank "
            f"{rank_out}"
        )
    metadata = {p.key: p.value for p in proto.metadata_props}
    try:
        names = {int(k): str(v) for k, v in ast.literal_eval(metadata.get("names", "{}")).items()}
    except (ValueError, SyntaxError):
        names = {}
    if metadata.get("task", "detect") != "detect":
        raise BenchError(f"{path} is a {metadata['task']} model; this lab benchmarks detection models")
    shape = [dim.dim_value or None for dim in inputs[0].type.tensor_type.shape.dim]  # 0 / a name: free
    return ModelInfo(
        str(path),
        "onnx",
        file_sha256(path),
        None,
        f"ONNX file {path}",
        names,
        display_name=path.name,
        input_shape=shape,
    )


def check_fixed_input(model: dict, imgsz: int, batch_sizes: list[int]) -> None:
    """An .onnx exported without dynamic=True takes one batch size and one image size: asking for others failed
    inside each runtime, after the run had started, with the runtime's own words."""
    shape = model.get("input_shape")
    if not shape:
        return
    batch, _, height, width = shape
    name = Path(model["path"]).name
    fixed = "x".join(str(dim or "?") for dim in shape)
    if height and width and (height, width) != (imgsz, imgsz):
        use = f"use --imgsz {height}" if height == width else "the lab measures square inputs"
        raise BenchError(
            f"{name} takes {height}x{width} images only (its input is fixed at {fixed}): {use}, or "
            "export it with dynamic=True"
        )
    others = [size for size in batch_sizes if batch and size != batch]
    if others:
        raise BenchError(
            f"{name} takes batch {batch} only (its input is fixed at {fixed}), not "
            f"{', '.join(map(str, others))}: use --batch {batch}, or export it with dynamic=True"
        )


def copy_into(info: ModelInfo, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ("model" + Path(info.path).suffix)
    if not target.exists():
        shutil.copyfile(info.path, target)
    return target
