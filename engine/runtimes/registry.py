"""Runtime registry: name -> class, and availability with a reason.

Adding a runtime: one file in this folder and one line in RUNTIME_MODULES. Extra runtimes (for example
test doubles that crash on purpose) can be registered with YOLO_BENCH_EXTRA_RUNTIMES=module.path[,...].
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from engine.runtimes.base import Runtime

RUNTIME_MODULES = [
    "engine.runtimes.pytorch",
    "engine.runtimes.torchscript",
    "engine.runtimes.onnxruntime",
    "engine.runtimes.openvino",
    "engine.runtimes.tensorflow",
    "engine.runtimes.tflite",
    "engine.runtimes.tf_graphdef",
    "engine.runtimes.opencv_dnn",
    "engine.runtimes.ncnn",
    "engine.runtimes.mnn",
    "engine.runtimes.paddle",
    "engine.runtimes.executorch",
    "engine.runtimes.coreml",
    "engine.runtimes.torch_compile",
    "engine.runtimes.pytorch_cuda",
    "engine.runtimes.onnxruntime_gpu",
    "engine.runtimes.tensorrt",
]


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    description: str
    precisions: tuple[str, ...]
    available: bool
    reason: str
    export_only: str | None = None  # why it is exported and stored here but not run (CoreML off macOS)


def _modules() -> list[str]:
    extra = [m.strip() for m in os.environ.get("YOLO_BENCH_EXTRA_RUNTIMES", "").split(",") if m.strip()]
    return RUNTIME_MODULES + extra


def _classes() -> dict[str, type[Runtime]]:
    found: dict[str, type[Runtime]] = {}
    for module_name in _modules():
        module = importlib.import_module(module_name)
        for runtime_class in getattr(module, "RUNTIMES", []):
            found[runtime_class.name] = runtime_class
    return found


def names() -> list[str]:
    return list(_classes())


def get(name: str) -> type[Runtime]:
    classes = _classes()
    if name not in classes:
        from engine.config import BenchError

        raise BenchError(f"unknown runtime {name!r}: choose from {', '.join(classes)}")
    return classes[name]


def describe() -> list[RuntimeInfo]:
    infos = []
    for runtime_class in _classes().values():
        available, reason = runtime_class.availability()
        infos.append(
            RuntimeInfo(
                runtime_class.name,
                runtime_class.description,
                runtime_class.precisions,
                available,
                reason,
                runtime_class.export_only() if available else None,
            )
        )
    return infos
