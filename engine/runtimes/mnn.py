"""Alibaba MNN, the mobile CPU runtime, from Ultralytics' export (ONNX -> MNNConvert).

fp16 is MNN's --fp16 (weights stored as fp16) with the runtime's "low" precision; int8 is MNN's weight
quantisation (--weightQuantBits 8: int8 weights, float activations), the int8 MNNConvert makes without a
calibration set. MNN's CPU backend computes in fp16 only where the CPU has fp16 arithmetic."""

from __future__ import annotations

import numpy as np

from engine.runtimes.base import Runtime, ultralytics_export

QUANTIZE = {"fp32": None, "fp16": 16, "int8": 8}
RUNTIME_PRECISION = {"fp32": "high", "fp16": "low", "int8": "high"}  # MNN's names for how the CPU computes


class MnnRuntime(Runtime):
    name = "mnn"
    description = "Alibaba MNN, CPU backend"
    precisions = ("fp32", "fp16", "int8")
    requires = ("MNN",)

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return ultralytics_export("mnn", imgsz, batch, QUANTIZE[precision])

    def load(self) -> None:
        import MNN

        self._expr = MNN.expr
        self.config = {"backend": "CPU", "precision": RUNTIME_PRECISION[self.precision], "numThread": self.threads}
        manager = MNN.nn.create_runtime_manager((self.config,))
        self.net = MNN.nn.load_module_from_file(str(self.model_path), [], [], runtime_manager=manager, rearrange=True)
        self.info = self.net.get_info()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, np.float32)
        (output,) = self.net.onForward([self._expr.const(batch, batch.shape)])
        return np.array(output.read(), np.float32)

    def settings(self) -> dict:
        return {
            # MNN's Python API sets the thread count but gives no way to read it back: this is what it was given.
            "threads": self.config["numThread"],
            "threads_read_back": False,
            "mnn_precision": self.config["precision"],
            **(
                {"quantization": "int8 weights, float activations (MNNConvert --weightQuantBits 8)"}
                if self.precision == "int8"
                else {}
            ),
            "mnn": self.info.get("version", ""),
        }


RUNTIMES = [MnnRuntime]
