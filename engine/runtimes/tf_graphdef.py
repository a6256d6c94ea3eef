"""TensorFlow GraphDef: Ultralytics' frozen-graph export (.pb, from the SavedModel), run in a TF1-style session,
as frozen graphs are deployed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.runtimes.base import Runtime, ultralytics_export
from engine.runtimes.tensorflow import TensorFlowRuntime


class TfGraphDefRuntime(Runtime):
    name = "tf-graphdef"
    description = "TensorFlow frozen GraphDef (.pb) in a session, CPU"
    requires = ("tensorflow",)
    layout = "nhwc"

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict:
        return ultralytics_export("pb", imgsz, batch)

    @classmethod
    def artifact(cls, export_output: Path, precision: str) -> Path:
        return export_output if export_output.suffix == ".pb" else next(export_output.glob("*.pb"))

    @classmethod
    def artifact_files(cls, artifact: Path) -> list[Path]:
        return [Path(artifact)]  # the SavedModel it was frozen from shares the folder

    configure_process = TensorFlowRuntime.configure_process

    def load(self) -> None:
        import tensorflow as tf

        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(self.model_path.read_bytes())
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        consumed = {name.split(":")[0].lstrip("^") for node in graph_def.node for name in node.input}
        outputs = [n.name for n in graph_def.node if n.name not in consumed and not n.name.startswith("NoOp")]
        inputs = [n.name for n in graph_def.node if n.op == "Placeholder"]
        if len(outputs) != 1 or len(inputs) != 1:
            raise RuntimeError(f"expected one input and one output in {self.model_path.name}: {inputs}, {outputs}")
        self.config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=self.threads, inter_op_parallelism_threads=self.threads
        )
        self.session = tf.compat.v1.Session(graph=graph, config=self.config)
        self.input = graph.get_tensor_by_name(f"{inputs[0]}:0")
        self.output = graph.get_tensor_by_name(f"{outputs[0]}:0")

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(self.output, {self.input: batch})

    def settings(self) -> dict:
        import tensorflow as tf

        return {
            "threads": self.config.intra_op_parallelism_threads,
            "inter_op_threads": self.config.inter_op_parallelism_threads,
            "tensorflow": tf.__version__,
        }


RUNTIMES = [TfGraphDefRuntime]
