"""OpenVINO on CPU. fp32 and bf16 are the same IR compiled with another precision hint; int8 is an NNCF export."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from engine.in_flight import IN_FLIGHT_MEASURES
from engine.runtimes.base import Runtime

PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoRuntime(Runtime):
    name = "openvino"
    description = "OpenVINO, CPU plugin, LATENCY hint"
    precisions = ("fp32", "bf16", "int8")
    requires = ("openvino",)
    onnx_file_precisions = ("fp32", "bf16")  # int8 is quantised from the .pt (NNCF)

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        request = {"format": "openvino", "imgsz": imgsz, "batch": batch}
        if precision == "int8":
            request["int8"] = True
        return request

    @classmethod
    def artifact(cls, export_output: Path, precision: str) -> Path:
        if export_output.is_dir():
            return next(export_output.glob("*.xml"))
        return export_output

    @classmethod
    def ultralytics_artifact(cls, artifact: Path) -> Path:
        return artifact.parent if artifact.suffix == ".xml" else artifact  # it wants the *_openvino_model folder

    @classmethod
    def artifact_files(cls, artifact: Path) -> list[Path]:
        return [artifact, artifact.with_suffix(".bin")] if artifact.suffix == ".xml" else [artifact]  # .onnx given

    # The lean pipeline hands the letterboxed uint8 BGR NHWC batch over as is, and OpenVINO's PrePostProcessor
    # does the conversion to float, BGR -> RGB, the layout change and the scaling inside the compiled model.
    fold_preprocessing = True

    def load(self) -> None:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(self.model_path))
        if model.inputs[0].get_partial_shape().is_dynamic:
            model.reshape([self.batch, 3, self.imgsz, self.imgsz])
        if self.fold_preprocessing:
            model = fold_preprocessing(model)
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads}
        if self.precision in PRECISION_HINTS:
            config["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[self.precision]
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self._core, self._model, self._config = core, model, config

    offers_in_flight = True

    def throughput(
        self, batches: list[list[np.ndarray]], requests: int, seconds: float, conf: float, iou: float
    ) -> dict:
        """The same model compiled with the THROUGHPUT hint (several streams) and fed by an AsyncInferQueue:
        this thread preprocesses the next batch while earlier ones infer, and each request's callback
        postprocesses its own output before the request is reused."""
        import openvino as ov

        config = {**self._config, "PERFORMANCE_HINT": "THROUGHPUT", "PERFORMANCE_HINT_NUM_REQUESTS": requests}
        compiled = self._core.compile_model(self._model, "CPU", config)
        queue = ov.AsyncInferQueue(compiled, requests)
        finished = {"batches": 0, "found": {}, "error": None}

        def postprocess(request, job: tuple[int, list]) -> None:  # on OpenVINO's thread, as each request ends
            index, placements = job
            try:
                found = self.postprocess(request.get_output_tensor(0).data, placements, conf, iou)
            except Exception as error:  # raised here it would be lost in OpenVINO's thread
                finished["error"] = error
                return
            finished["found"][index] = found
            finished["batches"] += 1

        def start(number: int) -> None:
            index = number % len(batches)
            tensor, placements = self.preprocess(batches[index])
            queue.start_async({0: tensor}, (index, placements))  # waits while every request is busy

        queue.set_callback(postprocess)
        for number in range(requests):  # warm every request once
            start(number)
        queue.wait_all()
        finished["batches"], number, started = 0, 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            start(number)
            number += 1
        queue.wait_all()
        elapsed = time.perf_counter() - started
        if finished["error"] is not None:
            raise finished["error"]
        return {
            "in_flight": requests,
            "in_flight_ips": finished["batches"] * self.batch / elapsed,
            "found": finished["found"],
            "in_flight_settings": {
                "measures": IN_FLIGHT_MEASURES,
                "performance_hint": "THROUGHPUT",
                "num_streams": int(compiled.get_property("NUM_STREAMS")),
                "infer_requests": requests,
            },
        }

    def preprocess(self, frames: list[np.ndarray]) -> tuple[np.ndarray, list]:
        if not self.fold_preprocessing:
            return super().preprocess(frames)
        from engine.pipeline import letterbox_batch

        return letterbox_batch(frames, self.imgsz)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self.fold_preprocessing and batch.dtype != np.uint8:  # a float32 NCHW RGB batch (reference, mAP)
            batch = np.ascontiguousarray((batch * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)[..., ::-1])
        self.request.infer({0: batch}, share_inputs=True)  # no copy of the batch: the call is synchronous
        return self.request.get_output_tensor(0).data.copy()  # a copy: the next call overwrites the request's own

    def profile(self, batch, calls: int, layout) -> tuple[list, str]:
        """The model compiled again with OpenVINO's performance counters on: one warm call, then `calls`; each
        executed node's real time, per call."""
        import statistics

        import openvino as ov

        from engine.profiles import OpTime

        compiled = self._core.compile_model(self._model, "CPU", {**self._config, "PERF_COUNT": True})
        request = compiled.create_infer_request()
        request.infer({0: batch})
        per_call: dict[tuple[str, str], list[float]] = {}
        for call in range(calls):
            request.infer({0: batch})
            for info in request.get_profiling_info():
                times = per_call.setdefault((info.node_name, info.node_type), [0.0] * calls)
                times[call] += info.real_time.total_seconds() * 1000
        # each node's median call, as the measured inference is a median
        ops = [OpTime(name, op_type, statistics.median(ms)) for (name, op_type), ms in per_call.items()]
        return ops, f"openvino {ov.__version__}"

    def settings(self) -> dict:
        import openvino as ov

        read = self.compiled.get_property
        return {
            "threads": int(read("INFERENCE_NUM_THREADS")),
            "performance_hint": str(read("PERFORMANCE_HINT")),
            "inference_precision": read(
                "INFERENCE_PRECISION_HINT"
            ).get_type_name(),  # effective, e.g. f32 when bf16 is absent
            "num_streams": int(read("NUM_STREAMS")),
            "preprocessing": "in the model (PrePostProcessor, u8 NHWC BGR input)"
            if self.fold_preprocessing
            else "numpy (f32 NCHW RGB input)",
            "openvino": ov.__version__,
        }


def fold_preprocessing(model):
    """The model with its input made u8 NHWC BGR, as the letterbox leaves a frame; to float, RGB, NCHW and / 255
    inside the graph. The same input as the numpy preprocessing but for rounding (it divides by 255, the graph
    may fuse the scale into the first convolution): outputs agree within 2e-5 relative, the boxes are the same."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    steps = PrePostProcessor(model)
    steps.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    steps.input().model().set_layout(ov.Layout("NCHW"))
    steps.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return steps.build()


RUNTIMES = [OpenVinoRuntime]
