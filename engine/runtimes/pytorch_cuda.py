"""PyTorch eager on an NVIDIA GPU, fp32 or fp16. Host-to-device and back are inside infer (synchronised)."""

from __future__ import annotations

import numpy as np

from engine.runtimes.base import Runtime
from engine.runtimes.cuda import gpu_availability, synchronize


class PyTorchCudaRuntime(Runtime):
    name = "pytorch-cuda"
    description = "PyTorch eager on CUDA"
    precisions = ("fp32", "fp16")
    requires = ("torch", "ultralytics")
    device = "gpu"

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        return gpu_availability(cls.requires)

    def load(self) -> None:
        import torch
        from ultralytics.nn.tasks import load_checkpoint

        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device: a CPU-only torch build or a driver mismatch")
        model, _ = load_checkpoint(self.model_path, device="cuda", fuse=True)
        self.dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self.model = model.to(self.dtype).eval()
        self._torch = torch

    def infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to("cuda", non_blocking=True).to(self.dtype)
            output = self.model(tensor)
            output = output[0] if isinstance(output, (list, tuple)) else output
            result = output.float().cpu().numpy()
        synchronize()
        return result

    def settings(self) -> dict:
        import torch

        return {
            "device": torch.cuda.get_device_name(0),
            "cuda": torch.version.cuda,
            "dtype": str(self.dtype),
            "torch": torch.__version__,
            "threads": self.threads,
        }


RUNTIMES = [PyTorchCudaRuntime]
