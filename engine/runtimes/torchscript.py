"""TorchScript: the model traced by Ultralytics export and run with torch.jit."""

from __future__ import annotations

import warnings

import numpy as np

from engine.runtimes.base import Runtime
from engine.runtimes.pytorch import MEMORY_FORMAT, apply_torch_threads, set_torch_threads


class TorchScriptRuntime(Runtime):
    name = "torchscript"
    description = "TorchScript (traced) on CPU"
    requires = ("torch",)
    # torch.jit's profiling executor records shapes on the first call and builds the optimised graph on the
    # second; both take far longer than a steady call, so neither is measured.
    settle_calls = 2

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        # One trace serves every batch size: the traced graph has no fixed batch (a batch-1 trace gave the
        # batch-2 export's outputs exactly), and Ultralytics feeds TorchScript any batch as is.
        return {"format": "torchscript", "imgsz": imgsz, "batch": 1}

    @staticmethod
    def configure_process(threads: int) -> None:
        set_torch_threads(threads)

    def load(self) -> None:
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated but still the loader
            self.model = torch.jit.load(str(self.model_path), map_location="cpu").eval()
        self.model = self.model.to(memory_format=getattr(torch, MEMORY_FORMAT))  # see engine/runtimes/pytorch.py
        self._torch = torch
        self._threads = apply_torch_threads(self.threads)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            output = self.model(self._torch.from_numpy(batch))
        output = output[0] if isinstance(output, (list, tuple)) else output
        return output.numpy()

    def profile(self, batch, calls: int, layout) -> tuple[list, str]:
        """torch.profiler over the traced model, which keeps each op's module (engine.profiles.torchscript_profile)."""
        from engine.profiles import torchscript_profile

        tensor = self._torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
        return torchscript_profile(self.model, tensor, calls), f"torch {self._torch.__version__} (TorchScript)"

    def settings(self) -> dict:
        import torch

        return {**self._threads, "torch": torch.__version__, "device": "cpu", "memory_format": MEMORY_FORMAT}


RUNTIMES = [TorchScriptRuntime]
