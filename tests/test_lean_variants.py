"""OpenVINO's and PyTorch's lean pipelines fold preprocessing into the model (OpenVINO's PrePostProcessor: u8 NHWC
BGR in; PyTorch: the frames as float32 in NHWC memory, colour order and scale in the first convolution); each must
see the same input as the numpy preprocessing, so outputs and boxes stay those of the unfolded model."""

import duckdb
import numpy as np
import pytest

from engine.pipeline import decode_image, preprocess
from tests.conftest import TEST_IMGSZ, engine_run


@pytest.fixture(scope="module")
def openvino_file(tmp_path_factory, detecting_model) -> str:
    db = tmp_path_factory.mktemp("folded") / "results.duckdb"
    done = engine_run(db, "--model", str(detecting_model), "--runtimes", "openvino", "--iters", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT model_file FROM results WHERE runtime = 'openvino'").fetchall()[0][0]


def loaded(runtime_class, model_file, folded: bool):
    runtime = type("Variant", (runtime_class,), {"fold_preprocessing": folded})(model_file, "fp32", 2, 1, TEST_IMGSZ)
    runtime.load()
    return runtime


def openvino_loaded(model_file: str, folded: bool):
    from engine.runtimes.openvino import OpenVinoRuntime

    return loaded(OpenVinoRuntime, model_file, folded)


def assert_folded_gives_the_unfolded_outputs_and_boxes(folded, unfolded, sample_images, folded_input) -> None:
    """For each image: the folded batch passes folded_input(batch), and the folded model gives the unfolded
    one's outputs, from its own batch and from the numpy float32 NCHW RGB one (reference, mAP), and its boxes."""
    boxes = 0
    for image in sample_images:
        frames = [decode_image(image)]
        batch, placements = folded.preprocess(frames)
        folded_input(batch)
        raw_folded = folded.infer(batch)
        float_batch, _ = unfolded.preprocess(frames)
        raw_unfolded = unfolded.infer(float_batch)
        np.testing.assert_allclose(raw_folded, raw_unfolded, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(
            folded.infer(float_batch),
            raw_unfolded,
            rtol=1e-4,
            atol=1e-4,
            err_msg="a float32 NCHW batch (reference, mAP) is converted back for the model",
        )
        found = folded.postprocess(raw_folded, placements, 0.25, 0.45)[0]
        expected = unfolded.postprocess(raw_unfolded, placements, 0.25, 0.45)[0]
        # The same boxes; coordinates within 0.05 px (the raw outputs agree to 1e-4 relative, and rounding both
        # to 0.01 px split 188.655 on an AVX-512 machine).
        assert [d.class_id for d in found] == [d.class_id for d in expected]
        for got, want in zip(found, expected):
            assert (got.x1, got.y1, got.x2, got.y2) == pytest.approx((want.x1, want.y1, want.x2, want.y2), abs=0.05)
        boxes += len(found)
    assert boxes > 0, "the detecting model finds boxes, so there is something to compare"


def test_folded_preprocessing_gives_the_numpy_pipeline_outputs_and_boxes(openvino_file, sample_images):
    folded, unfolded = openvino_loaded(openvino_file, True), openvino_loaded(openvino_file, False)
    assert folded.settings()["preprocessing"].startswith("in the model")

    def u8_nhwc(batch):
        assert batch.dtype == np.uint8 and batch.shape == (1, TEST_IMGSZ, TEST_IMGSZ, 3)

    assert_folded_gives_the_unfolded_outputs_and_boxes(folded, unfolded, sample_images, u8_nhwc)


def test_the_unfolded_variant_takes_the_numpy_float_batch(openvino_file, sample_images):
    unfolded = openvino_loaded(openvino_file, False)
    batch, _ = unfolded.preprocess([decode_image(sample_images[0])])
    expected, _ = preprocess([decode_image(sample_images[0])], TEST_IMGSZ, "nchw")
    assert np.array_equal(batch, expected)


def test_pytorch_folded_preprocessing_gives_the_numpy_pipeline_outputs_and_boxes(detecting_model, sample_images):
    """PyTorch's folded batch is the frames' own NHWC memory as float32 (channels-last, as the weights)."""
    import torch

    from engine.runtimes.pytorch import PyTorchRuntime

    folded = loaded(PyTorchRuntime, detecting_model, True)
    unfolded = loaded(PyTorchRuntime, detecting_model, False)
    assert folded.settings()["preprocessing"].startswith("u8 BGR NHWC frames")

    def channels_last_float(batch):
        assert batch.dtype == torch.float32 and tuple(batch.shape) == (1, 3, TEST_IMGSZ, TEST_IMGSZ)
        assert batch.is_contiguous(memory_format=torch.channels_last), "the frames' own memory, not a transpose"

    assert_folded_gives_the_unfolded_outputs_and_boxes(folded, unfolded, sample_images, channels_last_float)
