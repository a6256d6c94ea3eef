"""A YOLOv8n that really outputs boxes on the shipped images, without training: for parity and mAP tests.

Random weights alone detect nothing: the signal fades layer by layer (features ~1e-7 at the head), so every
anchor gets the same score and biases alone give either no box or all of them. So the BatchNorm statistics
are recomputed on the images themselves (one forward pass, no gradient), which carries image-dependent
features to the head; the final class convs are scaled up and their shared bias set so that a few dozen
anchors clear the confidence threshold with a clear gap around it (fp32 noise cannot flip a box), and the
box-distribution biases favour short distances (boxes a few strides wide rather than the whole image).

The checkpoint has no train_args, so the engine records it as untrained, which it is: its boxes are
deterministic and image-dependent, not meaningful.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

DETECTING_SEED = 4  # of seeds 0-7, the one whose boxes spread over both bus.jpg and zidane.jpg at 160
CLASS_WEIGHT_SCALE = 4.0
DFL_SLOPE = 1.0  # box-distribution bias falls by this per bin: short distances are likely
CONF = 0.25  # the engine's default confidence threshold, which the gap is placed around
WANTED_ANCHORS = (20, 60)  # anchors above the threshold before NMS, over all images
FIXED_DATE = "2000-01-01T00:00:00+00:00"


@contextmanager
def torch_threads(count: int):
    """torch on `count` threads inside the block, and as it was after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_detecting_model(target: Path, images: list, imgsz: int = 160) -> Path:
    """The same bytes every build, so the engine's export cache keeps hitting: on one thread, as sums taken over
    two threads round differently (a test that had run a one-thread runtime in the process changed the model)."""
    with torch_threads(1):
        return _build(target, images, imgsz)


def _build(target: Path, images: list, imgsz: int) -> Path:
    import torch
    from ultralytics import YOLO

    from engine.pipeline import decode_image, preprocess

    torch.manual_seed(DETECTING_SEED)
    yolo = YOLO("yolov8n.yaml")
    model = yolo.model
    batch, _ = preprocess([decode_image(p) for p in images], imgsz, "nchw")
    inputs = torch.from_numpy(batch)
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average: one pass sets the statistics of these images
    model.train()
    with torch.no_grad():
        model(inputs)
    model.eval()
    head = model.model[-1]
    with torch.no_grad():
        for branch in head.cv3:
            branch[-1].weight.mul_(CLASS_WEIGHT_SCALE)
            branch[-1].bias.zero_()
        for branch in head.cv2:
            branch[-1].bias.copy_(torch.tensor([-DFL_SLOPE * k for k in range(head.reg_max)] * 4))
        model.half().float()  # the checkpoint stores half precision: pick the bias on the weights it will hold
        scores = model(inputs)[0][:, 4:].amax(1).flatten()
    logits = torch.logit(scores.clamp(1e-7, 1 - 1e-7)).sort(descending=True).values
    low, high = WANTED_ANCHORS
    gaps = logits[low - 1 : high - 1] - logits[low:high]
    k = low - 1 + int(gaps.argmax())
    threshold_logit = float(logits[k] + logits[k + 1]) / 2
    bias = math.log(CONF / (1 - CONF)) - threshold_logit
    with torch.no_grad():
        for branch in head.cv3:
            branch[-1].bias.fill_(bias)
    yolo.save(str(target))
    checkpoint = torch.load(target, map_location="cpu", weights_only=False)
    checkpoint["date"] = FIXED_DATE  # the same bytes every build
    torch.save(checkpoint, target)
    return Path(target)
