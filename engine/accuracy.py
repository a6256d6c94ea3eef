"""mAP on labelled data: checking the labels (runner side, no heavy import) and validating a loaded runtime
with Ultralytics' own DetectionValidator (worker side).

--data takes an Ultralytics dataset yaml (its `val` split, else `test`) or a folder of images with YOLO txt
labels, either in images/ and labels/ subfolders or side by side. Every image needs a label file (an empty
one says "no objects"); every line is `class x_center y_center width height`, normalized to 0-1. The pairs
are mirrored into the cache (links to the images, copies of the checked labels) so that Ultralytics' label
cache file lands there, not in the user's folder.

The mAP of a result is Ultralytics' validator (its loader, letterbox, NMS at conf 0.001 / IoU 0.7 and its
metrics) with the inference done by the result's own loaded runtime: the same file, precision, threads and
batch as were timed. Every runtime gets the same square imgsz input (rect=False), as in the benchmark.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.config import BenchError
from engine.paths import cache_dir, mark_used

LABEL_HELP = "each line must be 'class x_center y_center width height', coordinates normalized to 0-1"


@dataclass
class LabelledData:
    source: str  # --data as given
    yaml_path: str  # the mirror's dataset yaml, what the validator reads
    images: int
    instances: int

    def to_dict(self) -> dict:
        return asdict(self)


def prepare_labelled_data(spec: str, class_count: int | None) -> LabelledData:
    """Check every image's labels; raise BenchError naming the file and line of the first problem."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise BenchError(f"labelled data {spec} does not exist: give a dataset .yaml or a folder of images and labels")
    if path.is_file():
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise BenchError(f"labelled data {spec} is a file but not a dataset .yaml")
        images, data_classes = _images_from_yaml(path)
    else:
        images, data_classes = _images_from_folder(path), None
    limit = min(c for c in (class_count, data_classes) if c) if (class_count or data_classes) else None
    pairs, instances = [], 0
    for image in images:
        label = _label_path(image)
        if not label.is_file():
            raise BenchError(f"image {image} has no label file {label}: add one (an empty file means no objects)")
        instances += _check_label_file(label, limit)
        pairs.append((image, label))
    yaml_path = _mirror(pairs, class_count or data_classes or 0)
    return LabelledData(spec, str(yaml_path), len(pairs), instances)


def _image_files(folder: Path) -> list[Path]:
    from engine.config import IMAGE_SUFFIXES

    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def _images_from_folder(folder: Path) -> list[Path]:
    root = folder / "images" if (folder / "images").is_dir() else folder
    images = _image_files(root)
    if not images:
        raise BenchError(f"labelled data folder {folder} holds no images (in it or in an images/ subfolder)")
    return images


def _images_from_yaml(path: Path) -> tuple[list[Path], int | None]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise BenchError(f"dataset yaml {path} cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise BenchError(f"dataset yaml {path} is not a mapping with path, val and names")
    names = data.get("names")
    classes = len(names) if isinstance(names, (list, dict)) else data.get("nc")
    if not isinstance(classes, int) or classes < 1:
        raise BenchError(f"dataset yaml {path} has no class names: add 'names' (a list or an index: name map)")
    root = Path(str(data.get("path") or path.parent)).expanduser()
    root = root if root.is_absolute() else (path.parent / root)
    split = data.get("val") or data.get("test")
    if not split:
        raise BenchError(f"dataset yaml {path} names no 'val' (or 'test') split to evaluate on")
    images: list[Path] = []
    for entry in split if isinstance(split, list) else [split]:
        where = Path(str(entry)).expanduser()
        where = where if where.is_absolute() else root / where
        if where.is_dir():
            images += _image_files(where)
        elif where.is_file() and where.suffix.lower() == ".txt":
            for line in where.read_text().splitlines():
                if line.strip():
                    item = Path(line.strip())
                    images.append(item if item.is_absolute() else (where.parent / item))
        else:
            raise BenchError(f"dataset yaml {path}: split {entry} ({where}) does not exist (nothing is downloaded)")
    for image in images:
        if not image.is_file():
            raise BenchError(f"dataset yaml {path} lists image {image}, which does not exist")
    if not images:
        raise BenchError(f"dataset yaml {path}: the split {split} holds no images")
    return images, classes


def _label_path(image: Path) -> Path:
    """Ultralytics' rule: the last /images/ folder becomes /labels/; without one, the .txt sits beside the image."""
    text = str(image)
    marker = f"{os.sep}images{os.sep}"
    if marker in text:
        head, tail = text.rsplit(marker, 1)
        return Path(head + f"{os.sep}labels{os.sep}" + tail).with_suffix(".txt")
    return image.with_suffix(".txt")


def _check_label_file(label: Path, class_limit: int | None) -> int:
    try:
        lines = label.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise BenchError(f"label file {label} cannot be read: {error}") from None
    count = 0
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"label file {label}, line {number}"
        if len(fields) != 5:
            raise BenchError(f"{where}: {len(fields)} values; {LABEL_HELP}")
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise BenchError(f"{where}: {line.strip()!r} is not numeric; {LABEL_HELP}") from None
        class_id = values[0]
        if class_id != int(class_id) or class_id < 0:
            raise BenchError(f"{where}: class {fields[0]} is not a class index (0, 1, 2, ...)")
        if class_limit is not None and class_id >= class_limit:
            raise BenchError(
                f"{where}: class {int(class_id)} is out of range: the model and data have "
                f"{class_limit} classes (0 to {class_limit - 1})"
            )
        if not all(0.0 <= v <= 1.0 for v in values[1:]) or values[3] <= 0 or values[4] <= 0:
            raise BenchError(f"{where}: box {' '.join(fields[1:])} is not normalized (0-1, width and height > 0)")
        count += 1
    return count


def _mirror(pairs: list[tuple[Path, Path]], class_count: int) -> Path:
    """images/ and labels/ in the cache: links to the images, copies of the checked labels, and a data.yaml."""
    material = [(str(image.resolve()), label.read_text()) for image, label in pairs]
    digest = hashlib.sha256(json.dumps([material, class_count]).encode()).hexdigest()[:16]
    folder = cache_dir() / "datasets" / digest
    yaml_path = folder / "data.yaml"
    if yaml_path.is_file():
        mark_used(yaml_path)
        return yaml_path
    partial = folder.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    (partial / "labels").mkdir()
    for index, (image, label) in enumerate(pairs):
        stem = f"{index:05d}_{image.stem}"
        linked = partial / "images" / f"{stem}{image.suffix.lower()}"
        try:
            linked.symlink_to(image.resolve())
        except OSError:
            shutil.copyfile(image, linked)
        shutil.copyfile(label, partial / "labels" / f"{stem}.txt")
    lines = [f"path: {folder}", "train: images", "val: images", "names:"] + [
        f"  {i}: '{i}'" for i in range(max(class_count, 1))
    ]
    (partial / "data.yaml").write_text("\n".join(lines) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return yaml_path


def evaluate(runtime, data_yaml: str, batch: int, names: dict, save_dir: Path) -> dict:
    """mAP50 and mAP50-95 of a loaded runtime through Ultralytics' DetectionValidator (imports ultralytics)."""
    import numpy as np
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator

    class RuntimeModule(torch.nn.Module):
        """What the validator calls as a model: a batch of RGB 0-1 NCHW tensors in, the raw output out."""

        def __init__(self):
            super().__init__()
            self.names = {int(k): str(v) for k, v in names.items()}

        def forward(self, images, **_):
            array = images.float().cpu().numpy()
            count = len(array)
            if count < batch:  # a static-batch export: pad the last batch by repetition, drop the extra rows
                array = np.concatenate([array, np.repeat(array[-1:], batch - count, axis=0)])
            if runtime.layout == "nhwc":
                array = array.transpose(0, 2, 3, 1)
            output = runtime.raw_to_host(runtime.infer(np.ascontiguousarray(array, dtype=np.float32)))
            return torch.from_numpy(np.array(output[:count], dtype=np.float32))

    args = {
        "task": "detect",
        "mode": "val",
        "data": data_yaml,
        "imgsz": runtime.imgsz,
        "batch": batch,
        "rect": False,
        "device": "cpu",
        "plots": False,
        "save_json": False,
        "verbose": False,
        "workers": 0,
    }
    validator = DetectionValidator(save_dir=Path(save_dir), args=args)
    stats = validator(model=RuntimeModule())
    return {
        "map50": float(stats["metrics/mAP50(B)"]),
        "map50_95": float(stats["metrics/mAP50-95(B)"]),
        "precision": float(stats["metrics/precision(B)"]),
        "recall": float(stats["metrics/recall(B)"]),
    }
