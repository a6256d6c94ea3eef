"""The GPU pipeline's stages (engine/torch_stages.py) are torch code: run here on CPU tensors, they give what the
numpy stages give. The letterbox within one grey level (bilinear in float, rounded, against OpenCV's fixed
point), the model input within that level over 255, and decode + NMS the same boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import pipeline, torch_stages
from tests.conftest import TEST_IMGSZ


def _frames(sample_images) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((1080, 1920, 3), (37, 501, 3), (5000, 20, 3))]
    return [pipeline.decode_image(path) for path in sample_images] + noise


@pytest.mark.parametrize("size", [33, TEST_IMGSZ, 640])
def test_the_torch_letterbox_is_the_numpy_letterbox_within_one_grey_level(sample_images, size):
    frames = _frames(sample_images) + [np.full((size, size, 3), 7, np.uint8)]  # exactly the input size: a copy
    expected, expected_placements = pipeline.letterbox_batch(frames, size)
    got, placements = torch_stages.letterbox_batch(torch_stages.to_device(frames, "cpu"), size)
    assert placements == expected_placements
    assert got.dtype == torch.uint8 and tuple(got.shape) == expected.shape
    difference = np.abs(got.numpy().astype(int) - expected.astype(int))
    assert difference.max() <= 1, f"at most one grey level apart, found {difference.max()}"
    assert (difference > 0).mean() < 0.05, "and few pixels even that"


def test_the_model_input_is_rgb_nchw_in_zero_to_one(sample_images):
    frames = _frames(sample_images)[:2]
    expected, _ = pipeline.preprocess(frames, TEST_IMGSZ, "nchw")
    batch, _ = torch_stages.letterbox_batch(torch_stages.to_device(frames, "cpu"), TEST_IMGSZ)
    got = torch_stages.model_input(batch, torch.float32)
    assert got.is_contiguous(memory_format=torch.channels_last) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, atol=1 / 255 + 1e-6)
    assert torch_stages.model_input(batch, torch.float16).dtype == torch.float16


@pytest.fixture(scope="module")
def raw_output(detecting_model, sample_images):
    """The detecting model's raw output for the sample images (batch 2), and where each image went."""
    from engine.runtimes.pytorch import PyTorchRuntime

    runtime = PyTorchRuntime(detecting_model, "fp32", 2, 2, TEST_IMGSZ)
    runtime.load()
    tensor, placements = runtime.preprocess([pipeline.decode_image(path) for path in sample_images])
    return runtime.infer(tensor), placements


@pytest.mark.parametrize("max_det", [300, 3])
def test_decode_and_nms_give_the_numpy_path_s_boxes(raw_output, max_det):
    raw, placements = raw_output
    expected = pipeline.postprocess(raw, placements, 0.25, 0.45, max_det)
    got = torch_stages.postprocess(torch.from_numpy(raw), placements, 0.25, 0.45, max_det)
    assert sum(map(len, expected)) > 0, "the detecting model finds boxes"
    assert [len(found) for found in got] == [len(found) for found in expected]
    for found, wanted in zip(got, expected):
        for box, other in zip(found, wanted):
            assert box.class_id == other.class_id
            np.testing.assert_allclose(
                [box.x1, box.y1, box.x2, box.y2, box.score], [other.x1, other.y1, other.x2, other.y2, other.score],
                rtol=1e-5, atol=1e-3,
            )  # fmt: skip


def test_nms_keeps_images_and_classes_apart():
    """The same two overlapping boxes in two images, and a third box of another class over them: NMS suppresses
    only the weaker box of the same class in the same image."""
    raw = torch.zeros((2, 4 + 2, 3))
    raw[:, :4] = torch.tensor([[50.0, 52.0, 50.0], [50.0, 50.0, 50.0], [40.0, 40.0, 40.0], [40.0, 40.0, 40.0]])
    raw[:, 4, :2] = torch.tensor([0.9, 0.8])  # class 0: two boxes at IoU ~0.9
    raw[:, 5, 2] = 0.7  # class 1: the same place
    placements = [pipeline.Letterbox(1.0, 0, 0, 100, 100)] * 2
    for found in torch_stages.postprocess(raw, placements, 0.25, 0.45):
        assert [(d.class_id, round(d.score, 2)) for d in found] == [(0, 0.9), (1, 0.7)]
    assert torch_stages.postprocess(raw * 0, placements, 0.25, 0.45) == [[], []]


def test_the_pytorch_cuda_runtime_s_pipeline_runs_on_cpu_tensors(detecting_model, sample_images, raw_output):
    """pytorch-cuda's own preprocess, infer and postprocess, run on the CPU (CI has no GPU). Its input is the
    numpy pipeline's within one grey level; on the numpy pipeline's input its raw output is the CPU runtime's
    within float rounding, and its boxes are the same. (The detecting model's boosted class convolutions move
    boxes on a one-level change of 7% of the pixels, so its boxes are compared on the same input.)"""
    from engine.parity import match_detections
    from engine.runtimes.pytorch_cuda import PyTorchCudaRuntime

    class OnCpu(PyTorchCudaRuntime):
        torch_device = "cpu"

    runtime = OnCpu(detecting_model, "fp32", 2, 2, TEST_IMGSZ)
    runtime.load()
    frames = [pipeline.decode_image(path) for path in sample_images]
    numpy_input, expected_placements = pipeline.preprocess(frames, TEST_IMGSZ, "nchw")
    tensor, placements = runtime.preprocess(frames)
    assert placements == expected_placements
    np.testing.assert_allclose(tensor.numpy(), numpy_input, atol=1 / 255 + 1e-6)
    raw = runtime.infer(numpy_input)
    assert isinstance(raw, torch.Tensor) and runtime.graph is None and not runtime.settings()["cuda_graph"]
    expected_raw, _ = raw_output
    np.testing.assert_allclose(runtime.raw_to_host(raw), expected_raw, rtol=1e-3, atol=1e-3)
    found = runtime.postprocess(raw, placements, 0.25, 0.45)
    expected = pipeline.postprocess(expected_raw, placements, 0.25, 0.45)
    assert sum(map(len, expected)) > 0
    for got, wanted in zip(found, expected):
        as_dicts = [[vars(d) for d in boxes] for boxes in (got, wanted)]
        assert len(got) == len(wanted) == len(match_detections(*as_dicts, 0.99))
    in_flight = runtime.throughput([frames, frames[::-1]], 2, 0.5, 0.25, 0.45)
    assert in_flight["in_flight"] == 2 and in_flight["in_flight_ips"] > 0
    one_at_a_time = runtime.postprocess(runtime.infer(tensor), placements, 0.25, 0.45)
    assert in_flight["found"][0] == one_at_a_time, "each batch in flight finds the boxes found one at a time"


def test_the_gpu_monitor_samples_a_gpu_or_says_why_there_is_none():
    """Without an NVIDIA driver (CI) the result gets the reason, not figures; with one, a window has samples."""
    import time

    from engine import gpu_monitor
    from engine.runtimes.cuda import gpu_availability

    monitor, why = gpu_monitor.start()
    if not gpu_availability(())[0]:
        assert monitor is None and why
        return
    time.sleep(0.2)
    window = monitor.stop(images=1)
    assert window.samples > 0 and window.sm_clock_mhz_min > 0 and window.throttled == bool(window.throttle_reasons)
