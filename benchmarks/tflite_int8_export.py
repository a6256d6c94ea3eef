"""TFLite int8: Ultralytics' own int8 SavedModel export against the engine's conversion of the fp32 SavedModel.

Ultralytics' saved_model export with int8=True ships onnx2tf's dynamic-range file as <stem>_int8.tflite, after
calibrating integer variants it deletes or leaves unused. The engine converts the fp32 SavedModel it exports anyway
(engine/export.py write_tflite_files), with Ultralytics' normalised TFLite boxes. This times both for one batch
size and compares the two files' outputs on the same input through the LiteRT interpreter, the engine's boxes
multiplied back to pixels as its TFLite runtime does. Prints a Markdown table and writes it to
docs/results/ (benchmarks/publish.py).

    .venv/bin/python benchmarks/tflite_int8_export.py [--imgsz 640]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.publish import publish  # noqa: E402 - after the path line above


def outputs(tflite: Path, batch) -> "np.ndarray":  # noqa: F821, UP037 - numpy is imported where it runs
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite), num_threads=2)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args()

    import numpy as np

    from engine.export import TF_CALIBRATION_FILE, calibration_dataset, write_tf_calibration, write_tflite_files
    from engine.models import resolve
    from engine.paths import sample_images

    model = resolve("yolov8n.pt")
    images = [str(p) for p in sample_images()]
    work = Path(tempfile.mkdtemp(prefix="tflite-int8-"))
    previous = os.getcwd()
    os.chdir(work)  # onnx2tf reads its calibration file from the working directory
    try:
        write_tf_calibration(images, work / TF_CALIBRATION_FILE)
        from ultralytics import YOLO

        timings = {}
        for name, extra in (
            ("ultralytics", {"int8": True, "data": str(calibration_dataset(images, {}))}),
            ("engine", {}),
        ):
            source = work / name / "model.pt"
            source.parent.mkdir()
            shutil.copyfile(model.path, source)
            started = time.perf_counter()
            folder = Path(
                YOLO(str(source), task="detect").export(
                    format="saved_model", imgsz=args.imgsz, batch=1, device="cpu", verbose=False, **extra
                )
            )
            timings[name] = {"export": time.perf_counter() - started, "folder": folder}
        started = time.perf_counter()
        derived = write_tflite_files(timings["engine"]["folder"])["int8"]
        timings["engine"]["convert"] = time.perf_counter() - started
    finally:
        os.chdir(previous)
    ultralytics_file = next(timings["ultralytics"]["folder"].glob("*_int8.tflite"))
    batch = np.random.default_rng(0).random((1, args.imgsz, args.imgsz, 3), dtype=np.float32)
    theirs, ours = outputs(ultralytics_file, batch), outputs(derived, batch)
    ours[:, :4] *= args.imgsz  # normalised boxes back to pixels (square input)
    difference = float(np.abs(theirs - ours).max())
    from engine.machine import fingerprint

    machine = fingerprint()
    export_fp32 = timings["engine"]["export"]
    lines = [
        f"`benchmarks/tflite_int8_export.py --imgsz {args.imgsz}` on {machine['cpu_model']} "
        f"({machine['physical_cores']} cores), {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}; "
        f"model {model.display_name} ({model.source}), batch 1.",
        "",
        "| how the int8 .tflite is made | seconds | file MB |",
        "|---|---|---|",
        f"| Ultralytics `export(format='saved_model', int8=True)` (also writes the fp32 files) | "
        f"{timings['ultralytics']['export']:.1f} | {ultralytics_file.stat().st_size / 1e6:.1f} |",
        "| fp32 `export(format='saved_model')`, then the engine's conversions (fp32 and int8 files) | "
        f"{export_fp32:.1f} + "
        f"{timings['engine']['convert']:.1f} | {derived.stat().st_size / 1e6:.1f} |",
        "",
        f"Outputs on one random {args.imgsz}x{args.imgsz} input: max abs difference {difference:g} "
        f"(output range {float(theirs.min()):.3g} to {float(theirs.max()):.3g}). Both files carry Ultralytics' "
        "metadata: the conversion copies it from the float32 file.",
    ]
    publish(lines, "tflite_int8_export.md")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
