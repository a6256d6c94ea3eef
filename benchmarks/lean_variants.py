"""Lean pipeline variants side by side: which preprocessing and postprocessing each runtime's lean mode keeps.

- PyTorch: the engine's preprocessing (the letterboxed uint8 BGR frames as float32 in their own NHWC memory,
  channels-last like the weights, the colour order and 1/255 folded into the first convolution) against the
  numpy/OpenCV float32 NCHW RGB batch, and against pre- and postprocessing in torch (the uint8 batch made a
  tensor once, box decode and torchvision's batched_nms on the output tensor, as Ultralytics does).
- PyTorch weights: channels-last (the engine's) against the default contiguous format.
- OpenVINO: the numpy preprocessing (float32 NCHW RGB in [0, 1]) against preprocessing folded into the model with
  OpenVINO's PrePostProcessor (u8 NHWC BGR in; convert, colour, layout and scale in the graph).

Each variant runs in a fresh process, letterbox + infer + postprocess per iteration on a decoded frame, fp32,
batch 1; rounds alternate the variants so drift hits all alike. Prints a Markdown table and writes it to
docs/results/ (benchmarks/publish.py). The export comes from the engine's cache (one short engine run makes it).

    .venv/bin/python benchmarks/lean_variants.py [--rounds 3] [--iters 40] [--imgsz 640]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.publish import publish  # noqa: E402 - after the path line above

VARIANTS = {  # name: (runtime, description)
    "pytorch-folded": ("pytorch", "u8 frames as f32 channels-last, colour and scale in the first conv (the engine's)"),
    "pytorch-numpy": ("pytorch", "numpy/OpenCV pre (f32 NCHW RGB) + post, channels-last weights"),
    "pytorch-torch": ("pytorch", "torch pre + post (torchvision batched_nms)"),
    "pytorch-contiguous": ("pytorch", "numpy/OpenCV pre + post, weights in the default contiguous format"),
    "openvino-numpy": ("openvino", "numpy pre, f32 NCHW input"),
    "openvino-folded": ("openvino", "PrePostProcessor: u8 NHWC BGR input"),
}
THREADS = 2


def torch_variant(base):
    """The PyTorch runtime with its lean stages in torch."""
    import numpy as np
    import torch
    from torchvision.ops import batched_nms

    from engine.pipeline import letterbox_batch, to_image_coords

    scale = np.float32(1 / 255)  # the numpy pipeline's factor: the same input, bit for bit

    class TorchStages(base):
        fold_preprocessing = False

        def preprocess(self, frames):
            batch, placements = letterbox_batch(frames, self.imgsz)
            tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).flip(1)  # NHWC BGR -> NCHW RGB
            return tensor.to(torch.float32, memory_format=torch.contiguous_format).mul_(scale), placements

        def infer(self, batch):
            with torch.inference_mode():
                output = self.model(batch)
            return output[0] if isinstance(output, (list, tuple)) else output

        def postprocess(self, raw, placements, conf, iou, max_det=300):
            results = []
            with torch.inference_mode():
                for prediction, placement in zip(raw, placements):
                    scores, class_ids = prediction[4:].max(dim=0)
                    keep = scores > conf
                    if not keep.any():
                        results.append([])
                        continue
                    xywh, scores, class_ids = prediction[:4, keep].T, scores[keep], class_ids[keep]
                    corner = xywh[:, :2] - xywh[:, 2:] / 2
                    chosen = batched_nms(torch.cat([corner, corner + xywh[:, 2:]], 1), scores, class_ids, iou)[:max_det]
                    rects = torch.cat([corner[chosen], xywh[chosen, 2:]], 1)
                    results.append(
                        to_image_coords(rects.numpy(), scores[chosen].numpy(), class_ids[chosen].numpy(), placement)
                    )
            return results

    return TorchStages


def contiguous_variant(base):
    """The PyTorch runtime with its weights back in the default memory format."""
    import torch

    class Contiguous(base):
        fold_preprocessing = False

        def load(self):
            super().load()
            self.model = self.model.to(memory_format=torch.contiguous_format)

    return Contiguous


def child(variant: str, model_file: str, image: str, imgsz: int, iters: int, warmup: int) -> dict:
    from engine.pipeline import decode_image
    from engine.runtimes import registry

    runtime_name = VARIANTS[variant][0]
    runtime_class = registry.get(runtime_name)
    runtime_class.configure_process(THREADS)
    if variant == "pytorch-torch":
        runtime_class = torch_variant(runtime_class)
    elif variant == "pytorch-contiguous":
        runtime_class = contiguous_variant(runtime_class)
    elif variant in ("pytorch-numpy", "pytorch-folded"):
        runtime_class = type("Variant", (runtime_class,), {"fold_preprocessing": variant == "pytorch-folded"})
    elif variant in ("openvino-numpy", "openvino-folded"):
        runtime_class = openvino_variant(runtime_class, folded=variant == "openvino-folded")
    runtime = runtime_class(Path(model_file), "fp32", THREADS, 1, imgsz)
    runtime.load()
    frames = [decode_image(image)]
    stages = {"pre": [], "infer": [], "post": [], "total": []}
    boxes = None
    for i in range(warmup + iters):
        t0 = time.perf_counter_ns()
        batch, placements = runtime.preprocess(frames)
        t1 = time.perf_counter_ns()
        raw = runtime.infer(batch)
        t2 = time.perf_counter_ns()
        found = runtime.postprocess(raw, placements, 0.25, 0.7)
        t3 = time.perf_counter_ns()
        if i >= warmup:
            for stage, ns in (("pre", t1 - t0), ("infer", t2 - t1), ("post", t3 - t2), ("total", t3 - t0)):
                stages[stage].append(ns / 1e6)
        boxes = [[round(v, 3) for v in (d.x1, d.y1, d.x2, d.y2, d.score)] + [d.class_id] for d in found[0]]
    return {"stages": stages, "boxes": boxes}


def openvino_variant(base, folded: bool):
    """The OpenVINO runtime with or without preprocessing folded into the model, whatever the engine's default."""

    class Variant(base):
        fold_preprocessing = folded

    return Variant


def engine_exports(imgsz: int) -> tuple[dict, str]:
    """The fp32 batch-1 model files of pytorch and openvino, from a short engine run (exports cached)."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "results.duckdb"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "engine",
                "run",
                "--runtimes",
                "pytorch,openvino",
                "--precisions",
                "fp32",
                "--batch",
                "1",
                "--imgsz",
                str(imgsz),
                "--iters",
                "1",
                "--warmup",
                "0",
                "--db",
                str(db),
                "--json",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(done.stdout)
        from engine import store

        summary = store.run_table(db, report["run_id"], "results")
    files = {row.runtime: row.model_file for row in summary.itertuples()}
    from engine.paths import sample_images

    return files, str(sample_images()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, model_file, image = json.loads(args.child)
        print(json.dumps(child(variant, model_file, image, args.imgsz, args.iters, args.warmup)))
        return
    started = time.time()
    load = os.getloadavg()[0]
    files, image = engine_exports(args.imgsz)
    samples = {name: {"pre": [], "infer": [], "post": [], "total": []} for name in VARIANTS}
    boxes = {}
    for _ in range(args.rounds):
        for name, (runtime, _) in VARIANTS.items():
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    json.dumps([name, files[runtime], image]),
                    "--iters",
                    str(args.iters),
                    "--warmup",
                    str(args.warmup),
                    "--imgsz",
                    str(args.imgsz),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            for stage, values in measured["stages"].items():
                samples[name][stage] += values
            boxes[name] = measured["boxes"]
    from engine.machine import fingerprint

    machine = fingerprint()
    lines = [
        f"`benchmarks/lean_variants.py --rounds {args.rounds} --iters {args.iters}` on {machine['cpu_model']} "
        f"({machine['physical_cores']} cores), {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{time.time() - started:.0f} s wall, load average {load:.2f} at the start.",
        "",
        f"Medians in ms per image over {args.rounds} alternating rounds of {args.iters} iterations, each variant in "
        f"a fresh process; fp32, batch 1, {args.imgsz}x{args.imgsz}, {THREADS} threads, one decoded frame "
        f"(bus.jpg). Same boxes: the variant's final boxes equal the numpy variant's (rounded to 1e-3); with untrained "
        f"weights both find none, and tests/test_lean_variants.py compares the boxes of a model that detects.",
        "",
        "| variant | what | pre ms | infer ms | post ms | pre + infer + post ms | vs numpy | same boxes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (runtime, what) in VARIANTS.items():
        medians = {stage: statistics.median(values) for stage, values in samples[name].items()}
        baseline = statistics.median(samples[f"{runtime}-numpy"]["total"])
        lines.append(
            f"| {name} | {what} | {medians['pre']:.2f} | {medians['infer']:.2f} | {medians['post']:.2f} "
            f"| {medians['total']:.2f} | {medians['total'] / baseline:.2f} "
            f"| {'yes' if boxes[name] == boxes[f'{runtime}-numpy'] else 'NO'} |"
        )
    publish(lines, "lean_variants.md")


if __name__ == "__main__":
    main()
