"""ONNX Runtime with the CPU execution provider.

int8 is ONNX Runtime's own static quantisation, the int8 most ONNX Runtime users try first: Ultralytics' ONNX
export with quantize=8, calibrated on augmented copies of the run's own images (engine.export), as OpenVINO's
int8 is. The calibration is stored with each result's settings."""

from __future__ import annotations

import numpy as np

from engine.in_flight import IN_FLIGHT_MEASURES, on_threads
from engine.runtimes.base import Runtime, ultralytics_export


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    description = "ONNX Runtime, CPU execution provider"
    precisions = ("fp32", "int8")
    requires = ("onnxruntime",)
    onnx_file_precisions = ("fp32",)  # int8 is quantised from the .pt

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return ultralytics_export("onnx", imgsz, batch, 8 if precision == "int8" else None)

    def load(self) -> None:
        self.session = self._session(self.threads)
        self.input_name = self.session.get_inputs()[0].name

    def _session(self, threads: int, profile_prefix: str | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        return ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])

    def profile(self, batch, calls: int, layout) -> tuple[list, str]:
        """A session of its own with ONNX Runtime's profiling on: one warm call, then `calls`; each node's kernel
        time inside those calls, per call."""
        import json
        import tempfile
        from pathlib import Path

        import onnxruntime as ort

        from engine.profiles import median_per_call

        with tempfile.TemporaryDirectory() as folder:
            session = self._session(self.threads, str(Path(folder) / "onnxruntime"))
            for _ in range(calls + 1):
                session.run(None, {self.input_name: batch})
            events = json.loads(Path(session.end_profiling()).read_text())
        runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[1:]  # not the warm
        kernels = [
            (e["name"].removesuffix("_kernel_time"), e.get("args", {}).get("op_name", ""), e["ts"], e["dur"])
            for e in events
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
        ]
        ops = median_per_call(kernels, [(e["ts"], e["ts"] + e["dur"]) for e in runs])
        return ops, f"onnxruntime {ort.__version__}"

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
            **(self._quantization() if self.precision == "int8" else {}),
        }

    def _quantization(self) -> dict:
        from engine.export import calibration_of

        return {
            "quantization": "static int8 (ONNX Runtime quantize_static through Ultralytics' export)",
            "calibration": calibration_of(self.model_path),
        }


RUNTIMES = [OnnxRuntime]
