"""Apple CoreML through coremltools: Ultralytics' .mlpackage export (an ML program, fp32 or fp16 compute).

coremltools converts on any OS, but only macOS runs a model. Elsewhere the model is exported and stored with
its size and export time, and the result says "CoreML runs on macOS only" instead of a measurement. On a Mac
the result is measured like any runtime's and reaches the fleet through a bundle or the shared store.
Ultralytics' static export takes one image per prediction (its Image input scales by 1/255 itself); a batch
is predicted as a list of images, as Ultralytics' own CoreML backend does."""

from __future__ import annotations

import platform

import numpy as np

from engine.runtimes.base import Runtime, ultralytics_export

QUANTIZE = {"fp32": None, "fp16": 16}
MACOS_ONLY = "CoreML runs on macOS only"


class CoreMlRuntime(Runtime):
    name = "coreml"
    description = "Apple CoreML (coremltools), CPU compute units"
    precisions = ("fp32", "fp16")
    requires = ("coremltools",)
    layout = "nhwc"

    @classmethod
    def export_only(cls) -> str | None:
        return None if platform.system() == "Darwin" else MACOS_ONLY

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return ultralytics_export("coreml", imgsz, batch, QUANTIZE[precision])

    def load(self) -> None:
        import coremltools as ct

        self.model = ct.models.MLModel(str(self.model_path), compute_units=ct.ComputeUnit.CPU_ONLY)
        self.input_name = self.model.get_spec().description.input[0].name

    def infer(self, batch: np.ndarray) -> np.ndarray:
        from PIL import Image

        requests = [{self.input_name: Image.fromarray(np.uint8(np.rint(image * 255)))} for image in batch]
        predictions = self.model.predict(requests)
        name = next(k for k, v in predictions[0].items() if isinstance(v, np.ndarray))
        return np.concatenate([prediction[name] for prediction in predictions]).astype(np.float32)

    def settings(self) -> dict:
        import coremltools as ct

        return {
            "compute_units": "CPU_ONLY",
            "threads": "chosen by CoreML (it has no thread setting)",
            "coremltools": ct.__version__,
        }


RUNTIMES = [CoreMlRuntime]
