"""TensorFlow SavedModel (converted by Ultralytics through onnx2tf), NHWC input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.runtimes.base import Runtime, ultralytics_export


def saved_model_request(imgsz: int, batch: int) -> dict:
    """One export serves TensorFlow and both TFLite precisions (engine.export adds the int8 .tflite to it)."""
    return ultralytics_export("saved_model", imgsz, batch)


class TensorFlowRuntime(Runtime):
    name = "tensorflow"
    description = "TensorFlow SavedModel on CPU"
    requires = ("tensorflow",)
    layout = "nhwc"

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return saved_model_request(imgsz, batch)

    @classmethod
    def artifact_files(cls, artifact: Path) -> list[Path]:
        """The SavedModel, not the .tflite files that share its folder (the tflite runtime loads those)."""
        return [p for p in super().artifact_files(artifact) if p.suffix != ".tflite"]

    @staticmethod
    def configure_process(threads: int) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def load(self) -> None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(self.threads)
        # onnx2tf's graph has independent branches: one inter-op thread per core runs them side by side (measured
        # faster than a single inter-op thread, in alternating process pairs)
        tf.config.threading.set_inter_op_parallelism_threads(self.threads)
        self._tf = tf
        self.model = tf.saved_model.load(str(self.model_path))
        self.serve = self.model.signatures["serving_default"]
        self.output_name = next(iter(self.serve.structured_outputs))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.serve(self._tf.constant(batch))[self.output_name].numpy()

    def settings(self) -> dict:
        import tensorflow as tf

        return {
            "threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "tensorflow": tf.__version__,
        }


RUNTIMES = [TensorFlowRuntime]
