"""The lean pipeline's stages as torch code, for a pipeline that stays on the GPU: decoded uint8 frames go over
once (from pinned memory), are letterboxed, colour-swapped, laid out and scaled there; the model's raw output
is decoded and NMS-ed there too, and only the final boxes come back to the host.

Every function here runs on any torch device: the tests hold them to the numpy stages (engine.pipeline) on CPU
tensors, the GPU runtimes call them on CUDA tensors. Geometry (where an image goes, how boxes map back) is the
numpy pipeline's own (pipeline.placement, pipeline.to_image_coords).
"""

from __future__ import annotations

import numpy as np

from engine.pipeline import LETTERBOX_FILL, Detection, Letterbox, placement, to_image_coords


def to_device(frames: list[np.ndarray], device) -> list:
    """Decoded HxWx3 uint8 frames as tensors on device: each copied once, from pinned (page-locked) host memory
    where the device is a GPU, so that the copy is a DMA transfer that does not wait on the host."""
    import torch

    tensors = [torch.from_numpy(frame) for frame in frames]
    if torch.device(device).type != "cuda":
        return [tensor.to(device) for tensor in tensors]
    return [tensor.pin_memory().to(device, non_blocking=True) for tensor in tensors]


def letterbox_batch(frames: list, size: int) -> tuple[object, list[Letterbox]]:
    """HxWx3 uint8 BGR frame tensors (one device) -> a (B, size, size, 3) uint8 BGR batch on that device, each
    resized bilinearly (OpenCV's INTER_LINEAR: half-pixel centres, no antialiasing) and padded with the
    letterbox grey as pipeline.letterbox_batch does, and where each image went."""
    import torch
    from torch.nn.functional import interpolate

    batch = torch.full((len(frames), size, size, 3), LETTERBOX_FILL, dtype=torch.uint8, device=frames[0].device)
    placements = []
    for slot, frame in zip(batch, frames):
        height, width = frame.shape[:2]
        placed, new_w, new_h = placement(height, width, size)
        if (new_w, new_h) == (width, height):
            inside = frame
        else:
            nchw = frame.permute(2, 0, 1).unsqueeze(0).float()
            resized = interpolate(nchw, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=False)
            inside = resized.round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
        top, left = int(placed.pad_y), int(placed.pad_x)
        slot[top : top + new_h, left : left + new_w] = inside
        placements.append(placed)
    return batch, placements


def model_input(batch, dtype):
    """A (B, H, W, 3) uint8 BGR batch -> the model's (B, 3, H, W) RGB input in [0, 1] of dtype, channels-last in
    memory (as convolutions on NVIDIA GPUs prefer it): one fused pass on the device."""
    import torch

    nchw = batch.flip(-1).permute(0, 3, 1, 2)  # BGR -> RGB, NHWC -> NCHW: views, nothing copied yet
    return nchw.to(dtype=dtype, memory_format=torch.channels_last).mul_(1 / 255)


def postprocess(raw, placements: list[Letterbox], conf: float, iou: float, max_det: int = 300) -> list[list]:
    """Raw (B, 4 + classes, anchors) xywh output on any device -> per-image detections in original pixels, as
    pipeline.postprocess gives them: the best class per anchor above conf, then class-wise NMS (torchvision's
    batched_nms over every image at once, images and classes kept apart by their index), at most max_det per
    image in score order. Only the kept boxes leave the device, in one copy."""
    import torch
    from torchvision.ops import batched_nms

    raw = raw.float()
    best, class_ids = raw[:, 4:].max(dim=1)  # (B, anchors)
    images, anchors = torch.nonzero(best > conf, as_tuple=True)
    xywh = raw[images, :4, anchors]  # (N, 4)
    xyxy = torch.cat((xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2), dim=1)
    scores, classes = best[images, anchors], class_ids[images, anchors]
    groups = images * (raw.shape[1] - 4) + classes  # one NMS group per image and class
    kept = batched_nms(xyxy, scores, groups, iou)  # in decreasing score
    rows = torch.cat(
        (images[kept, None].float(), xyxy[kept, :2], xywh[kept, 2:], scores[kept, None], classes[kept, None].float()),
        dim=1,
    ).cpu().numpy()  # fmt: skip
    results: list[list[Detection]] = []
    for index, placed in enumerate(placements):
        mine = rows[rows[:, 0] == index][:max_det]
        results.append(to_image_coords(mine[:, 1:5], mine[:, 5], mine[:, 6].astype(int), placed))
    return results
