"""PyTorch with torch.compile (inductor): the eager model compiled into fused kernels, on the CPU (C++/OpenMP)
and on an NVIDIA GPU (Triton).

Inductor compiles on the first call at a shape. load() makes that call at the batch size measured, so the
compile time is the result's load time, as an export's time is its own; the timed calls run compiled code.
The shapes are static (dynamic=False): one compiled graph per batch size, as each batch size runs in its own
worker.
"""

from __future__ import annotations

import numpy as np

from engine.runtimes.base import Runtime
from engine.runtimes.pytorch import PyTorchRuntime
from engine.runtimes.pytorch_cuda import PyTorchCudaRuntime

COMPILE_OPTIONS = {"backend": "inductor", "dynamic": False}


class CompiledInLoad:
    """What both runtimes add to their eager class: the model compiled in load(), warmed at the batch size with
    the input the lean pipeline hands over (its strides too), and the compile options in the settings."""

    def load(self) -> None:
        super().load()
        self.model = self._torch.compile(self.model, **COMPILE_OPTIONS)
        blank = [np.zeros((self.imgsz, self.imgsz, 3), np.uint8)] * self.batch
        self.infer(self.preprocess(blank)[0])  # compiles now: the load time holds the compile

    def settings(self) -> dict:
        return {**super().settings(), "compile": dict(COMPILE_OPTIONS)}


class TorchCompileRuntime(CompiledInLoad, PyTorchRuntime):
    name = "torch-compile"
    description = "PyTorch torch.compile (inductor), CPU"
    profile = Runtime.profile  # module timers would time the eager modules, not the compiled kernels
    profile_unavailable = "its compiled kernels are fused across modules: no per-module time"


class TorchCompileCudaRuntime(CompiledInLoad, PyTorchCudaRuntime):
    name = "torch-compile-cuda"
    description = "PyTorch torch.compile (inductor) on CUDA, GPU pre/post"
    cuda_graph = False  # inductor's kernels, not a captured graph of the eager ones


RUNTIMES = [TorchCompileRuntime, TorchCompileCudaRuntime]
