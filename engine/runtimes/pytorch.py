"""PyTorch eager: the Ultralytics checkpoint run as an nn.Module, the reference every export is checked against."""

from __future__ import annotations

import os

import numpy as np

from engine.runtimes.base import Runtime


def set_torch_threads(threads: int) -> None:
    """Before torch is imported: importing ultralytics would otherwise leave OMP at 1 thread."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)


# Channels-last weights let oneDNN run its NHWC convolutions without reordering around each layer: YOLOv8n at
# 640 on 2 threads of an AVX-512 EPYC took 26.5 ms instead of 32-43 ms (eager and TorchScript alike; outputs
# within 3e-5; benchmarks/lean_variants.py: 1.21x end to end). The first convolution converts the NCHW input.
MEMORY_FORMAT = "channels_last"


def apply_torch_threads(threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)  # again after ultralytics' import, which calls it too
    return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}


class PyTorchRuntime(Runtime):
    name = "pytorch"
    description = "PyTorch eager (CPU), the reference"
    requires = ("torch", "ultralytics")

    @staticmethod
    def configure_process(threads: int) -> None:
        set_torch_threads(threads)

    def load(self) -> None:
        import torch
        from ultralytics.nn.tasks import load_checkpoint

        model, _ = load_checkpoint(self.model_path, device="cpu", fuse=True)
        self.model = model.float().eval().to(memory_format=getattr(torch, MEMORY_FORMAT))
        self._torch = torch
        self._threads = apply_torch_threads(self.threads)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            output = self.model(self._torch.from_numpy(batch))
        output = output[0] if isinstance(output, (list, tuple)) else output
        return output.numpy()

    def settings(self) -> dict:
        import torch

        return {**self._threads, "torch": torch.__version__, "device": "cpu", "memory_format": MEMORY_FORMAT}


RUNTIMES = [PyTorchRuntime]
