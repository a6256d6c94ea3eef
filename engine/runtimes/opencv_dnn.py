"""OpenCV's DNN module reading the ONNX export, the way many C++ deployments run YOLO (cv2.dnn, CPU backend)."""

from __future__ import annotations

import numpy as np

from engine.runtimes.base import Runtime
from engine.runtimes.onnxruntime import OnnxRuntime


class OpenCvDnnRuntime(Runtime):
    name = "opencv-dnn"
    description = "OpenCV DNN module on the ONNX export, CPU"
    requires = ("cv2",)
    onnx_file_precisions = ("fp32",)
    ultralytics_arguments = {"dnn": True}  # Ultralytics' predictor reads an .onnx with cv2.dnn when asked

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return OnnxRuntime.export_request("fp32", batch, imgsz)  # the file ONNX Runtime's fp32 loads

    def load(self) -> None:
        import cv2

        cv2.setNumThreads(self.threads)
        self.net = cv2.dnn.readNetFromONNX(str(self.model_path))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.net.setInput(np.ascontiguousarray(batch, np.float32))
        return self.net.forward()

    def settings(self) -> dict:
        import cv2

        return {"threads": cv2.getNumThreads(), "backend": "OpenCV (CPU)", "opencv": cv2.__version__}


RUNTIMES = [OpenCvDnnRuntime]
