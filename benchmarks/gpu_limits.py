"""GPU limits: the bare floors of each step next to the engine's end-to-end figure for the same configurations,
in one run on one machine (issue 34's targets are ratios of these).

Floors, each the median of --repeats timed calls after warm-up (CUDA events on a GPU, perf_counter on a CPU):
- inference of the fused model at batch 1 and at --large-batch: eager, CUDA graph (GPU only), torch.compile;
- host-to-device copies of decoded 1080p uint8 frames, from pageable and from pinned memory;
- the raw (B, 84, anchors) output copied to the host;
- the GPU letterbox of 1080p frames (engine.torch_stages) and decode + NMS of a raw output with about 300
  candidates per image.
Then the engine itself: `python -m engine run --runtimes pytorch-cuda,torch-compile-cuda` at batch 1 and the
large batch, whose end-to-end ms per image and images/s are set against the floors:
- batch 1: end to end at most 2x the CUDA-graph inference plus its transfers;
- the large batch: images/s at least 0.5x the bare inference's.

    .venv/bin/python benchmarks/gpu_limits.py [--precision fp16] [--large-batch 64] [--imgsz 640]
    .venv/bin/python benchmarks/gpu_limits.py --device cpu --imgsz 160 --large-batch 4 --out /tmp/t.md  # a check

Without a GPU, --device cuda says so and exits 0 (CI has none); --device cpu runs the same steps on the CPU
(no CUDA graph, no pinned memory), to check the script, not to measure a GPU. Prints a Markdown table and
writes it to docs/results/ (benchmarks/publish.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.publish import publish  # noqa: E402 - after the path line above

FRAME = (1080, 1920, 3)
CANDIDATES = 300  # anchors above the threshold per image in the NMS floor


class Timer:
    """Median milliseconds of a callable: CUDA events around each call on a GPU, perf_counter on a CPU."""

    def __init__(self, device: str, repeats: int, warmup: int = 3):
        import torch

        self.torch, self.cuda, self.repeats, self.warmup = torch, device == "cuda", repeats, warmup

    def __call__(self, call) -> float:
        torch = self.torch
        for _ in range(self.warmup):
            call()
        times = []
        for _ in range(self.repeats):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                torch.cuda.synchronize()
                start.record()
                call()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            else:
                began = time.perf_counter()
                call()
                times.append((time.perf_counter() - began) * 1000)
        return statistics.median(times)


def fused_model(model_path: str, device: str, dtype):
    import torch
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(model_path, device=device, fuse=True)
    return model.to(dtype).eval().to(memory_format=torch.channels_last)


def inference_floors(model, device: str, dtype, imgsz: int, batch: int, timer: Timer) -> dict[str, float]:
    """ms per call of the bare model: eager, CUDA graph (GPU), compiled."""
    import torch

    x = torch.rand((batch, 3, imgsz, imgsz), device=device).to(dtype).to(memory_format=torch.channels_last)
    floors = {}
    with torch.no_grad():
        floors["eager"] = timer(lambda: model(x))
        if device == "cuda":
            from engine.runtimes.pytorch_cuda import capture_cuda_graph

            graph, _ = capture_cuda_graph(model, x)
            floors["cuda graph"] = timer(graph.replay)
        compiled = torch.compile(model, backend="inductor", dynamic=False)
        floors["compiled"] = timer(lambda: compiled(x))
    return floors


def transfer_floors(device: str, batch: int, outputs: int, timer: Timer) -> dict[str, float]:
    """ms per batch: decoded frames to the device (pageable and pinned), the raw output back."""
    import torch

    frames = torch.randint(0, 256, (batch, *FRAME), dtype=torch.uint8)
    floors = {"frames to device, pageable": timer(lambda: frames.to(device))}
    if device == "cuda":
        pinned = frames.pin_memory()
        floors["frames to device, pinned"] = timer(lambda: pinned.to(device, non_blocking=True))
    raw = torch.rand((batch, 84, outputs), device=device)
    floors["raw output to host"] = timer(lambda: raw.cpu())
    return floors


def stage_floors(device: str, batch: int, imgsz: int, timer: Timer) -> dict[str, float]:
    """ms per batch of the GPU pipeline's own stages: letterbox of 1080p frames, decode + NMS."""
    import torch

    from engine import torch_stages

    frames = [torch.randint(0, 256, FRAME, dtype=torch.uint8, device=device) for _ in range(batch)]
    letterbox = timer(lambda: torch_stages.letterbox_batch(frames, imgsz))
    _, placements = torch_stages.letterbox_batch(frames, imgsz)
    anchors = sum((imgsz // stride) ** 2 for stride in (8, 16, 32))
    raw = torch.zeros((batch, 84, anchors), device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    raw[:, :2] = torch.rand((batch, 2, anchors), device=device, generator=generator) * imgsz
    raw[:, 2:4] = 8 + torch.rand((batch, 2, anchors), device=device, generator=generator) * 64
    chosen = torch.randperm(anchors, device=device, generator=generator)[:CANDIDATES]
    raw[:, 4, chosen] = 0.3 + 0.6 * torch.rand((batch, CANDIDATES), device=device, generator=generator)
    nms = timer(lambda: torch_stages.postprocess(raw, placements, 0.25, 0.45))
    return {"letterbox 1080p": letterbox, f"decode + NMS, {CANDIDATES} candidates": nms}


def engine_figures(model: str, precision: str, imgsz: int, batches: list[int], device: str) -> dict:
    """(runtime, batch) -> (end-to-end ms per image, images/s, status) of a real engine run."""
    runtimes = "pytorch-cuda,torch-compile-cuda" if device == "cuda" else "pytorch,torch-compile"
    db = Path(tempfile.mkdtemp(prefix="gpu-limits-")) / "results.duckdb"
    command = [sys.executable, "-m", "engine", "run", "--db", str(db), "--model", model, "--runtimes", runtimes,
               "--precisions", precision, "--batch", ",".join(map(str, batches)), "--imgsz", str(imgsz),
               "--iters", "20", "--json"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if not done.stdout.strip():
        raise SystemExit(f"the engine run failed:\n{done.stderr[-3000:]}")
    results = json.loads(done.stdout)["results"]
    return {
        (r["runtime"], r["batch"]): (r.get("total_ms"), r.get("throughput_ips"), r["status"], r.get("error"))
        for r in results
    }, " ".join(command[4:]).replace(str(db), "<tmp>.duckdb")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--model", default="yolov8n.yaml")
    parser.add_argument("--precision", default="fp16", choices=("fp16", "fp32"))
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--large-batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", default="gpu_limits.md", help="an absolute path writes the table there alone")
    args = parser.parse_args()

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_limits: no CUDA device here; nothing measured (run it on a machine with an NVIDIA GPU)")
        return
    from engine import models

    started = time.time()
    model = models.resolve(args.model).path
    dtype = torch.float16 if args.precision == "fp16" and args.device == "cuda" else torch.float32
    timer = Timer(args.device, args.repeats)
    fused = fused_model(model, args.device, dtype)
    anchors = sum((args.imgsz // stride) ** 2 for stride in (8, 16, 32))
    batches = [1, args.large_batch]
    floors = {}
    for batch in batches:
        floors[batch] = {
            **{f"inference, {name}": ms for name, ms in inference_floors(
                fused, args.device, dtype, args.imgsz, batch, timer).items()},
            **transfer_floors(args.device, batch, anchors, timer),
            **stage_floors(args.device, batch, args.imgsz, timer),
        }  # fmt: skip
    precision = args.precision if args.device == "cuda" else "fp32"  # the CPU runtimes offer fp32
    figures, command = engine_figures(args.model, precision, args.imgsz, batches, args.device)

    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    lines = [
        f"`benchmarks/gpu_limits.py --device {args.device} --precision {args.precision} --imgsz {args.imgsz} "
        f"--large-batch {args.large_batch}` on {device_name}, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {time.time() - started:.0f} s. Floors: medians of {args.repeats} "
        f"calls ({'CUDA events' if args.device == 'cuda' else 'perf_counter'}), ms per batch and per image; "
        f"the engine: `python -m engine run {command}`.",
        "",
        "| step | batch 1, ms | batch " + str(args.large_batch) + ", ms per batch | ms per image |",
        "|---|---|---|---|",
    ]
    for name in floors[args.large_batch]:
        one, many = floors[1].get(name), floors[args.large_batch][name]
        lines.append(f"| {name} | {one:.3f} | {many:.3f} | {many / args.large_batch:.4f} |")
    lines += ["", "| engine runtime | batch | end to end ms/img | img/s | against the floor |", "|---|---|---|---|---|"]
    graph_name = "inference, cuda graph" if args.device == "cuda" else "inference, eager"
    copy_name = "frames to device, pinned" if args.device == "cuda" else "frames to device, pageable"
    for (runtime, batch), (total, ips, status, error) in sorted(figures.items()):
        if status != "completed":
            lines.append(f"| {runtime} | {batch} | {status}: {error} | | |")
            continue
        if batch == 1:
            floor = floors[1][graph_name] + floors[1][copy_name]  # only the final boxes come back: next to nothing
            verdict = f"{total / floor:.2f}x the bare {graph_name.split(', ')[1]} + copies (target <= 2)"
        else:
            bare_ips = 1000 * batch / min(v for k, v in floors[batch].items() if k.startswith("inference"))
            verdict = f"{ips / bare_ips:.2f}x the bare inference's {bare_ips:.0f} img/s (target >= 0.5)"
        lines.append(f"| {runtime} | {batch} | {total:.3f} | {ips:.1f} | {verdict} |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
