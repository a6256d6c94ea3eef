"""What every NVIDIA GPU runtime checks first, without importing a GPU library."""

from __future__ import annotations

import importlib.metadata
import importlib.util

from engine.machine import gpus

NO_GPU_REASON = "no NVIDIA GPU found (nvidia-smi is missing or lists no GPU)"


def gpu_availability(modules: tuple[str, ...] = (), distributions: tuple[str, ...] = ()) -> tuple[bool, str]:
    if not gpus():
        return False, NO_GPU_REASON
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    for name in distributions:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        return False, f"install the GPU extras (make run GPU=1): missing {', '.join(missing)}"
    return True, ""


def synchronize() -> None:
    import torch

    torch.cuda.synchronize()
