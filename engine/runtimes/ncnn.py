"""Tencent NCNN, the mobile CPU runtime, from Ultralytics' export (PyTorch -> PNNX -> .param/.bin).

NCNN has no batch dimension: a batch is run image by image through one extractor each, as NCNN applications do.
fp16 is NCNN's own: weights stored as fp16 (pnnx fp16=1) and its fp16 storage and arithmetic options on, which
NCNN honours where the CPU has the instructions and otherwise computes in fp32 (read back in settings)."""

from __future__ import annotations

import numpy as np

from engine.runtimes.base import Runtime, ultralytics_export

QUANTIZE = {"fp32": None, "fp16": 16}
FP16_OPTIONS = ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic")


class NcnnRuntime(Runtime):
    name = "ncnn"
    description = "Tencent NCNN (PNNX conversion), image by image"
    precisions = ("fp32", "fp16")
    requires = ("ncnn",)

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        """One export for every batch size: the network takes one image at a time."""
        return ultralytics_export("ncnn", imgsz, 1, QUANTIZE[precision])

    def load(self) -> None:
        import ncnn

        self._ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = self.threads
        for option in FP16_OPTIONS:
            setattr(self.net.opt, option, self.precision == "fp16")
        param = next(self.model_path.glob("*.param")) if self.model_path.is_dir() else self.model_path
        if self.net.load_param(str(param)) or self.net.load_model(str(param.with_suffix(".bin"))):
            raise RuntimeError(f"NCNN could not load {param.name} and its .bin")
        self.input_name = self.net.input_names()[0]
        self.output_name = sorted(self.net.output_names())[0]

    def infer(self, batch: np.ndarray) -> np.ndarray:
        outputs = []
        for image in batch:
            with self.net.create_extractor() as extractor:
                extractor.input(self.input_name, self._ncnn.Mat(np.ascontiguousarray(image)))
                status, output = extractor.extract(self.output_name)
                if status:
                    raise RuntimeError(f"NCNN extract failed with status {status}")
                outputs.append(np.array(output))
        return np.stack(outputs)

    def settings(self) -> dict:
        import ncnn

        return {
            "threads": self.net.opt.num_threads,
            **{option: bool(getattr(self.net.opt, option)) for option in FP16_OPTIONS},
            "batching": "image by image (NCNN has no batch dimension)",
            "ncnn": ncnn.__version__,
        }


RUNTIMES = [NcnnRuntime]
