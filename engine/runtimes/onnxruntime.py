"""ONNX Runtime with the CPU execution provider."""

from __future__ import annotations

import threading
import time

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

    def throughput(self, batch: np.ndarray, requests: int, seconds: float) -> dict:
        """One session per request, the threads shared out among them, each called from its own Python thread
        (ONNX Runtime releases the GIL in run())."""
        threads = max(1, self.threads // requests)
        sessions = [self._session(threads) for _ in range(requests)]
        for session in sessions:
            session.run(None, {self.input_name: batch})
        counts = [0] * requests
        started = time.perf_counter()

        def loop(index: int) -> None:
            while time.perf_counter() - started < seconds:
                sessions[index].run(None, {self.input_name: batch})
                counts[index] += 1

        workers = [threading.Thread(target=loop, args=(i,)) for i in range(requests)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        return {"in_flight": requests, "in_flight_ips": sum(counts) * self.batch / elapsed,
                "in_flight_settings": {"sessions": requests, "threads_per_session": threads}}

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
