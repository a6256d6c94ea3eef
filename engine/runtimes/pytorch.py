"""PyTorch eager: the Ultralytics checkpoint run as an nn.Module, the reference every export is checked against."""

from __future__ import annotations

import os

import numpy as np

from engine.runtimes.base import Runtime


def set_torch_threads(threads: int) -> None:
    """Before torch is imported: importing ultralytics would otherwise leave OMP at 1 thread."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)


# Channels-last weights let oneDNN run its NHWC convolutions without reordering around each layer (faster, with
# the same outputs within float rounding: benchmarks/lean_variants.py). The first convolution converts the NCHW
# input.
MEMORY_FORMAT = "channels_last"


def apply_torch_threads(threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)  # again after ultralytics' import, which calls it too
    return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}


class PyTorchRuntime(Runtime):
    name = "pytorch"
    description = "PyTorch eager (CPU), the reference"
    requires = ("torch", "ultralytics")

    @staticmethod
    def configure_process(threads: int) -> None:
        set_torch_threads(threads)

    # The lean pipeline hands the letterboxed uint8 BGR frames over as float32 in their own NHWC memory: viewed as
    # NCHW that is channels-last already, as the weights are, so no transposition and no reorder before the first
    # convolution, whose weights take the colour order and the 1/255 scale instead (it is linear: the same
    # outputs within float rounding). It saves a pass over the batch in preprocessing and a reorder before the
    # first convolution (benchmarks/lean_variants.py measures it against the unfolded pipeline).
    fold_preprocessing = True

    def load(self) -> None:
        import torch
        from ultralytics.nn.tasks import load_checkpoint

        model, _ = load_checkpoint(self.model_path, device="cpu", fuse=True)
        model = model.float().eval()
        if self.fold_preprocessing:
            fold_into_first_convolution(model)
        self.model = model.to(memory_format=getattr(torch, MEMORY_FORMAT))
        self._torch = torch
        self._threads = apply_torch_threads(self.threads)

    def preprocess(self, frames: list[np.ndarray]) -> tuple[object, list]:
        if not self.fold_preprocessing:
            return super().preprocess(frames)
        from engine.pipeline import letterbox_batch

        batch, placements = letterbox_batch(frames, self.imgsz)
        return self._torch.from_numpy(batch).permute(0, 3, 1, 2).float(), placements  # NCHW view, NHWC memory

    def infer(self, batch) -> np.ndarray:
        if isinstance(batch, np.ndarray):  # a float32 NCHW RGB batch in [0, 1] (reference, mAP, tests)
            if self.fold_preprocessing:
                batch = np.ascontiguousarray(batch[:, ::-1]) * np.float32(255)
            batch = self._torch.from_numpy(batch)
        with self._torch.inference_mode():
            output = self.model(batch)
        output = output[0] if isinstance(output, (list, tuple)) else output
        return output.numpy()

    def profile(self, batch, calls: int, layout) -> tuple[list, str]:
        """The model run module by module, each module timed (engine.profiles.timed_by_module)."""
        from engine.profiles import timed_by_module

        if isinstance(batch, np.ndarray):
            batch = self._torch.from_numpy(batch)
        modules = list(self.model.model)
        ops = timed_by_module(modules, layout.sources, layout.types, batch, calls)
        return ops, f"torch {self._torch.__version__} module timers"

    def settings(self) -> dict:
        import torch

        return {
            **self._threads,
            "torch": torch.__version__,
            "device": "cpu",
            "memory_format": MEMORY_FORMAT,
            "preprocessing": "u8 BGR NHWC frames as float32; colour order and 1/255 in the first convolution"
            if self.fold_preprocessing
            else "numpy (f32 NCHW RGB input)",
        }


def fold_into_first_convolution(model) -> None:
    """The model's first convolution made to take BGR in 0..255 where it took RGB in 0..1: its weights' input
    channels reversed and divided by 255 (padding is zeros either way; the bias is untouched)."""
    import torch

    first = next(module for module in model.modules() if isinstance(module, torch.nn.Conv2d))
    if first.in_channels != 3:
        raise ValueError(f"the model's first convolution takes {first.in_channels} channels, not an image's 3")
    with torch.no_grad():
        first.weight.copy_(first.weight.flip(1) / 255)


RUNTIMES = [PyTorchRuntime]
