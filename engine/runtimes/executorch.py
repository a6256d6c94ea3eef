"""Meta ExecuTorch with its XNNPACK backend on CPU, from Ultralytics' export (a .pte program)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.runtimes.base import Runtime, ultralytics_export


class ExecuTorchRuntime(Runtime):
    name = "executorch"
    description = "ExecuTorch, XNNPACK delegate on CPU"
    requires = ("executorch",)

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return ultralytics_export("executorch", imgsz, batch)

    @classmethod
    def artifact(cls, export_output: Path, precision: str) -> Path:
        return next(Path(export_output).rglob("*.pte")) if Path(export_output).is_dir() else Path(export_output)

    @classmethod
    def ultralytics_artifact(cls, artifact: Path) -> Path:
        return artifact.parent  # Ultralytics reads the folder (the .pte and its metadata)

    @classmethod
    def artifact_files(cls, artifact: Path) -> list[Path]:
        return [Path(artifact)]

    def load(self) -> None:
        import torch
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime as Programs

        # XNNPACK's work runs on ExecuTorch's own thread pool, sized here before the program loads
        portable_lib._unsafe_reset_threadpool(self.threads)
        self._torch = torch
        self._pool_threads = portable_lib._threadpool_get_thread_count
        self.method = Programs.get().load_program(str(self.model_path)).load_method("forward")

    def infer(self, batch: np.ndarray) -> np.ndarray:
        (output,) = self.method.execute([self._torch.from_numpy(np.ascontiguousarray(batch, np.float32))])
        return output.numpy()

    def settings(self) -> dict:
        from importlib.metadata import version

        return {"threads": self._pool_threads(), "delegate": "XNNPACK", "executorch": version("executorch")}


RUNTIMES = [ExecuTorchRuntime]
