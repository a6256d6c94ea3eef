"""A TensorRT engine built by Ultralytics export (format='engine'), run through Ultralytics' AutoBackend.

Engine building (and int8 calibration) happens in the export process, so its time is the export's,
not inference's.
"""

from __future__ import annotations

import numpy as np

from engine.runtimes.base import Runtime
from engine.runtimes.cuda import gpu_availability, synchronize


class TensorRTRuntime(Runtime):
    name = "tensorrt"
    description = "TensorRT engine (Ultralytics export)"
    precisions = ("fp16", "int8")
    requires = ("tensorrt", "torch", "ultralytics")
    device = "gpu"

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        return gpu_availability(cls.requires)

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        request = {"format": "engine", "imgsz": imgsz, "batch": batch, "device": "0"}
        request["half" if precision == "fp16" else "int8"] = True
        return request

    def load(self) -> None:
        import torch
        from ultralytics.nn.autobackend import AutoBackend

        self.backend = AutoBackend(str(self.model_path), device=torch.device("cuda:0"), fp16=self.precision == "fp16")
        self._torch = torch

    def infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        tensor = torch.from_numpy(batch).to("cuda")
        tensor = tensor.half() if self.precision == "fp16" else tensor
        output = self.backend(tensor)
        output = output[0] if isinstance(output, (list, tuple)) else output
        result = output.float().cpu().numpy()
        synchronize()
        return result

    def settings(self) -> dict:
        import tensorrt

        return {"tensorrt": tensorrt.__version__, "precision": self.precision, "threads": self.threads}


RUNTIMES = [TensorRTRuntime]
