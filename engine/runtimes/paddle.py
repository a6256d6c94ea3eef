"""PaddlePaddle Inference on CPU, from Ultralytics' export (PyTorch -> ONNX -> X2Paddle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.runtimes.base import Runtime, ultralytics_export


class PaddleRuntime(Runtime):
    name = "paddle"
    description = "PaddlePaddle Inference (X2Paddle conversion), CPU"
    requires = ("paddle", "x2paddle")

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return ultralytics_export("paddle", imgsz, batch)

    @classmethod
    def artifact_files(cls, artifact: Path) -> list[Path]:
        """The program and its parameters, not the PyTorch-side copies the export leaves beside them."""
        return sorted(p for p in Path(artifact).rglob("*") if p.suffix in (".json", ".pdiparams"))

    def load(self) -> None:
        import paddle.inference as inference

        folder = self.model_path
        model_file, params_file = next(folder.rglob("*.json"), None), next(folder.rglob("*.pdiparams"), None)
        if model_file is None or params_file is None:
            raise FileNotFoundError(f"{folder} holds no .json and .pdiparams pair")
        self.config = inference.Config(str(model_file), str(params_file))
        self.config.disable_gpu()
        self.config.set_cpu_math_library_num_threads(self.threads)
        self.config.disable_glog_info()
        self.predictor = inference.create_predictor(self.config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.input.copy_from_cpu(np.ascontiguousarray(batch, np.float32))
        self.predictor.run()
        return self.output.copy_to_cpu()

    def settings(self) -> dict:
        import paddle

        return {
            "threads": self.config.cpu_math_library_num_threads(),
            "onednn": bool(self.config.mkldnn_enabled()),
            "paddle": paddle.__version__,
        }


RUNTIMES = [PaddleRuntime]
