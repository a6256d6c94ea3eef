"""TFLite through ai-edge-litert (XNNPACK). engine.export makes both files from the SavedModel export: float32,
and int8 (dynamic range: int8 weights, float activations). Their boxes are Ultralytics' TFLite convention,
divided by the input size, so Ultralytics' own predictor reads them right; infer() multiplies them back."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.runtimes.base import Runtime
from engine.runtimes.tensorflow import saved_model_request

TFLITE_SUFFIX = {"fp32": "_float32.tflite", "int8": "_int8.tflite"}


class TFLiteRuntime(Runtime):
    name = "tflite"
    description = "TFLite (LiteRT interpreter, XNNPACK)"
    precisions = ("fp32", "int8")
    requires = ("ai_edge_litert",)
    layout = "nhwc"

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return saved_model_request(imgsz, batch)

    @classmethod
    def artifact(cls, export_output: Path, precision: str) -> Path:
        matches = sorted(export_output.glob(f"*{TFLITE_SUFFIX[precision]}"))
        if not matches:
            raise FileNotFoundError(f"no *{TFLITE_SUFFIX[precision]} file in {export_output}")
        return matches[0]

    def load(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(self.model_path), num_threads=self.threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        _, height, width, _ = self.input["shape"]
        self.box_scale = np.array([width, height, width, height], np.float32).reshape(4, 1)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype in (np.int8, np.uint8, np.int16):  # full-integer model: quantize the input ourselves
            scale, zero_point = self.input["quantization"]
            limits = np.iinfo(dtype)
            batch = np.clip(np.round(batch / scale + zero_point), limits.min, limits.max).astype(dtype)
        self.interpreter.set_tensor(self.input["index"], batch)
        self.interpreter.invoke()
        output = self.interpreter.get_tensor(self.output["index"])
        if self.output["dtype"] != np.float32:
            scale, zero_point = self.output["quantization"]
            output = (output.astype(np.float32) - zero_point) * scale
        output[:, :4] *= self.box_scale  # normalised xywh (see the module docstring) to input pixels
        return output

    def settings(self) -> dict:
        import ai_edge_litert

        return {
            "threads": self.threads,
            "input_dtype": np.dtype(self.input["dtype"]).name,
            "model_file": self.model_path.name,
            **({"quantization": "dynamic range (int8 weights, float activations)"} if self.precision == "int8" else {}),
            "ai_edge_litert": getattr(ai_edge_litert, "__version__", ""),
        }


RUNTIMES = [TFLiteRuntime]
