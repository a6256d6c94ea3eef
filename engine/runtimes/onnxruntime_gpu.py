"""ONNX Runtime with the CUDA or the TensorRT execution provider (needs onnxruntime-gpu instead of onnxruntime)."""

from __future__ import annotations

from engine.runtimes.cuda import gpu_availability
from engine.runtimes.onnxruntime import OnnxRuntime


class OnnxRuntimeCuda(OnnxRuntime):
    name = "onnxruntime-cuda"
    description = "ONNX Runtime, CUDA execution provider"
    precisions = ("fp32",)  # the CPU runtime's int8 is quantised for the CPU execution provider
    provider = "CUDAExecutionProvider"
    device = "gpu"
    offers_in_flight = False  # the CPU sessions of OnnxRuntime.throughput() would not be this GPU

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        return gpu_availability(distributions=("onnxruntime-gpu",))

    def load(self) -> None:
        import onnxruntime as ort

        if self.provider not in ort.get_available_providers():
            raise RuntimeError(f"{self.provider} is not in this onnxruntime build: {ort.get_available_providers()}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.model_path), options, providers=[self.provider])
        if self.session.get_providers()[0] != self.provider:
            raise RuntimeError(f"{self.provider} did not take the model: {self.session.get_providers()}")
        self.input_name = self.session.get_inputs()[0].name


class OnnxRuntimeTensorRT(OnnxRuntimeCuda):
    name = "onnxruntime-tensorrt"
    description = "ONNX Runtime, TensorRT execution provider"
    provider = "TensorrtExecutionProvider"

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        return gpu_availability(modules=("tensorrt",), distributions=("onnxruntime-gpu",))


RUNTIMES = [OnnxRuntimeCuda, OnnxRuntimeTensorRT]
