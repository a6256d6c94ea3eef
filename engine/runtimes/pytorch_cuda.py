"""PyTorch eager on an NVIDIA GPU, fp32 or fp16, with the lean pipeline resident on the GPU.

Decoded uint8 frames go to the GPU once, from pinned memory; letterbox, colour order, layout and scaling run
there (engine.torch_stages), the model runs as a CUDA graph captured for the batch size (one launch instead of
a few hundred kernel launches, which dominate a small batch), and box decode and NMS run there too: only the
final boxes come back. Each stage synchronises before it returns, so its time is its own.
torch_device is "cuda"; the tests run the same class on "cpu" tensors (no graph there), as CI has no GPU.
"""

from __future__ import annotations

import contextlib

import numpy as np

from engine.in_flight import IN_FLIGHT_MEASURES, on_threads
from engine.runtimes.base import Runtime
from engine.runtimes.cuda import gpu_availability


def capture_cuda_graph(forward, static_input) -> tuple:
    """forward(static_input) captured as a CUDA graph, after three warm calls on a side stream as capture
    requires: (graph, its output tensor). graph.replay() runs it again on whatever static_input holds."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(side):
        for _ in range(3):
            forward(static_input)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        output = forward(static_input)
    return graph, output


class PyTorchCudaRuntime(Runtime):
    name = "pytorch-cuda"
    description = "PyTorch on CUDA: GPU pre/post, CUDA graph"
    precisions = ("fp32", "fp16")
    requires = ("torch", "ultralytics")
    device = "gpu"
    torch_device = "cuda"
    cuda_graph = True  # the model captured as a CUDA graph per batch size (torch-compile-cuda: inductor instead)

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        return gpu_availability(cls.requires)

    def load(self) -> None:
        import torch
        from ultralytics.nn.tasks import load_checkpoint

        on_gpu = self.torch_device == "cuda"
        if on_gpu and not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device: a CPU-only torch build or a driver mismatch")
        model, _ = load_checkpoint(self.model_path, device=self.torch_device, fuse=True)
        self.dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self.model = model.to(self.dtype).eval().to(memory_format=torch.channels_last)
        self._torch = torch
        self.graph, self.graph_error = None, None
        if on_gpu and self.cuda_graph:
            try:
                self.graph = self._capture()
            except RuntimeError as error:  # the model eager, and why, in the settings
                self.graph_error = f"{type(error).__name__}: {error}"

    def _forward(self, tensor):
        output = self.model(tensor)
        return output[0] if isinstance(output, (list, tuple)) else output

    def _capture(self) -> tuple:
        """The model captured as a CUDA graph for this batch size: (graph, its input, its output) tensors."""
        torch = self._torch
        shape = (self.batch, 3, self.imgsz, self.imgsz)
        static_input = torch.zeros(shape, dtype=self.dtype, device="cuda").to(memory_format=torch.channels_last)
        graph, static_output = capture_cuda_graph(self._forward, static_input)
        return graph, static_input, static_output

    def preprocess(self, frames: list[np.ndarray]) -> tuple[object, list]:
        from engine import torch_stages

        batch, placements = torch_stages.letterbox_batch(torch_stages.to_device(frames, self.torch_device), self.imgsz)
        tensor = torch_stages.model_input(batch, self.dtype)
        self._synchronize()
        return tensor, placements

    def _synchronize(self) -> None:
        """Until the stage's work on this thread's stream is done (other streams, other batches in flight, go on)."""
        if self.torch_device == "cuda":
            self._torch.cuda.current_stream().synchronize()

    def infer(self, batch):
        torch = self._torch
        if isinstance(batch, np.ndarray):  # a float32 NCHW RGB batch in [0, 1] (reference, mAP, tests)
            batch = torch.from_numpy(batch).to(self.torch_device).to(self.dtype)
        with torch.no_grad():
            if self.graph is not None and tuple(batch.shape) == tuple(self.graph[1].shape):
                graph, static_input, static_output = self.graph
                static_input.copy_(batch)
                graph.replay()
                output = static_output.clone()  # the next replay overwrites the graph's own output
            else:
                output = self._forward(batch)
        self._synchronize()
        return output

    offers_in_flight = True

    def throughput(
        self, batches: list[list[np.ndarray]], requests: int, seconds: float, conf: float, iou: float
    ) -> dict:
        """`requests` batches in flight, each on its own Python thread and CUDA stream, end to end: frames to the
        GPU, letterbox, the model (eager: one captured graph cannot run on several streams at once), decode, NMS
        and the final boxes back. A stream's copies and kernels overlap another's."""
        torch = self._torch

        def prepare(worker: int):
            stream = torch.cuda.Stream() if self.torch_device == "cuda" else None
            run_batch(stream, batches[0])  # warm
            return stream

        def run_batch(stream, frames: list[np.ndarray]) -> list:
            on_stream = torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
            with on_stream, torch.no_grad():
                tensor, placements = self.preprocess(frames)
                raw = self._forward(tensor)
                return self.postprocess(raw, placements, conf, iou)

        done, found, elapsed = on_threads(requests, batches, seconds, prepare, run_batch)
        return {
            "in_flight": requests,
            "in_flight_ips": done * self.batch / elapsed,
            "found": found,
            "in_flight_settings": {"measures": IN_FLIGHT_MEASURES, "cuda_streams": requests, "model": "eager"},
        }

    def postprocess(self, raw, placements: list, conf: float, iou: float) -> list[list]:
        from engine import torch_stages

        return torch_stages.postprocess(raw, placements, conf, iou)  # copies only the kept boxes to the host

    def settings(self) -> dict:
        import torch

        return {
            "device": torch.cuda.get_device_name(0) if self.torch_device == "cuda" else self.torch_device,
            "cuda": torch.version.cuda,
            "dtype": str(self.dtype),
            "torch": torch.__version__,
            "threads": self.threads,
            "pipeline": "on the GPU: pinned uint8 frames, letterbox and NMS on the GPU, final boxes to the host",
            "cuda_graph": self.graph is not None,
            "gpu_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20 if self.torch_device == "cuda" else None,
            **({"cuda_graph_error": self.graph_error} if self.graph_error else {}),
        }


RUNTIMES = [PyTorchCudaRuntime]
