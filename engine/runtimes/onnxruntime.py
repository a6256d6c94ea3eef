"""ONNX Runtime with the CPU execution provider."""

from __future__ import annotations

import numpy as np

from engine.in_flight import IN_FLIGHT_MEASURES, on_threads
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
        self.session = self._session(self.threads)
        self.input_name = self.session.get_inputs()[0].name

    def _session(self, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        return ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])

    offers_in_flight = True

    def throughput(
        self, batches: list[list[np.ndarray]], requests: int, seconds: float, conf: float, iou: float
    ) -> dict:
        """One session per request, the threads shared out among them, each on its own Python thread doing
        preprocess, inference and postprocess in turn (ONNX Runtime releases the GIL in run())."""
        threads = max(1, self.threads // requests)

        def prepare(worker: int):
            session = self._session(threads)
            session.run(None, {self.input_name: self.preprocess(batches[0])[0]})  # warm
            return session

        def run_batch(session, frames: list[np.ndarray]) -> list:
            tensor, placements = self.preprocess(frames)
            return self.postprocess(session.run(None, {self.input_name: tensor})[0], placements, conf, iou)

        done, found, elapsed = on_threads(requests, batches, seconds, prepare, run_batch)
        return {
            "in_flight": requests,
            "in_flight_ips": done * self.batch / elapsed,
            "found": found,
            "in_flight_settings": {
                "measures": IN_FLIGHT_MEASURES,
                "sessions": requests,
                "threads_per_session": threads,
            },
        }

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
