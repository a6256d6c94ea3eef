"""ONNX Runtime with the CPU execution provider."""

from __future__ import annotations

import numpy as np

from engine.runtimes.base import Runtime


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    description = "ONNX Runtime, CPU execution provider"
    requires = ("onnxruntime",)
    accepts_onnx = True

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return {"format": "onnx", "imgsz": imgsz, "batch": batch}

    def load(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def settings(self) -> dict:
        import onnxruntime as ort

        options = self.session.get_session_options()
        return {
            "threads": options.intra_op_num_threads,
            "inter_op_threads": options.inter_op_num_threads,
            "providers": self.session.get_providers(),
            "onnxruntime": ort.__version__,
            "model_input_shape": list(self.session.get_inputs()[0].shape),
        }


RUNTIMES = [OnnxRuntime]
