"""OpenVINO's lean pipeline folds preprocessing into the model (PrePostProcessor: u8 NHWC BGR in); it must see
the same input as the numpy preprocessing, so outputs and boxes stay those of the unfolded model."""

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


def loaded(model_file: str, folded: bool):
    from engine.runtimes.openvino import OpenVinoRuntime

    runtime = type("Variant", (OpenVinoRuntime,), {"fold_preprocessing": folded})(model_file, "fp32", 2, 1,
                                                                                     TEST_IMGSZ)
    runtime.load()
    return runtime


def test_folded_preprocessing_gives_the_numpy_pipeline_outputs_and_boxes(openvino_file, sample_images):
    folded, unfolded = loaded(openvino_file, True), loaded(openvino_file, False)
    assert folded.settings()["preprocessing"].startswith("in the model")
    boxes = 0
    for image in sample_images:
        frames = [decode_image(image)]
        batch, placements = folded.preprocess(frames)
        assert batch.dtype == np.uint8 and batch.shape == (1, TEST_IMGSZ, TEST_IMGSZ, 3)
        raw_folded = folded.infer(batch)
        float_batch, _ = unfolded.preprocess(frames)
        raw_unfolded = unfolded.infer(float_batch)
        np.testing.assert_allclose(raw_folded, raw_unfolded, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(folded.infer(float_batch), raw_unfolded, rtol=1e-4, atol=1e-4,
                                   err_msg="a float32 NCHW batch (reference, mAP) is converted back for the model")
        found = folded.postprocess(raw_folded, placements, 0.25, 0.45)[0]
        expected = unfolded.postprocess(raw_unfolded, placements, 0.25, 0.45)[0]
        # The same boxes; coordinates within 0.05 px (the raw outputs agree to 1e-4 relative, and rounding both
        # to 0.01 px split 188.655 on an AVX-512 machine).
        assert [d.class_id for d in found] == [d.class_id for d in expected]
        for got, want in zip(found, expected):
            assert (got.x1, got.y1, got.x2, got.y2) == pytest.approx((want.x1, want.y1, want.x2, want.y2), abs=0.05)
        boxes += len(found)
    assert boxes > 0, "the detecting model finds boxes, so there is something to compare"


def test_the_unfolded_variant_takes_the_numpy_float_batch(openvino_file, sample_images):
    unfolded = loaded(openvino_file, False)
    batch, _ = unfolded.preprocess([decode_image(sample_images[0])])
    expected, _ = preprocess([decode_image(sample_images[0])], TEST_IMGSZ, "nchw")
    assert np.array_equal(batch, expected)


def pytorch_loaded(model_file, folded: bool):
    from engine.runtimes.pytorch import PyTorchRuntime

    runtime = type("Variant", (PyTorchRuntime,), {"fold_preprocessing": folded})(model_file, "fp32", 2, 1,
                                                                                 TEST_IMGSZ)
    runtime.load()
    return runtime


def test_pytorch_folded_preprocessing_gives_the_numpy_pipeline_outputs_and_boxes(detecting_model, sample_images):
    """PyTorch's lean pipeline hands the uint8 BGR frames over as float32 in their NHWC memory (channels-last, as
    the weights) with the colour order and 1/255 in the first convolution's weights: the unfolded model's
    outputs and boxes, whether it gets those frames or the numpy float32 NCHW RGB batch (reference, mAP)."""
    import torch

    folded, unfolded = pytorch_loaded(detecting_model, True), pytorch_loaded(detecting_model, False)
    assert folded.settings()["preprocessing"].startswith("u8 BGR NHWC frames")
    boxes = 0
    for image in sample_images:
        frames = [decode_image(image)]
        batch, placements = folded.preprocess(frames)
        assert batch.dtype == torch.float32 and tuple(batch.shape) == (1, 3, TEST_IMGSZ, TEST_IMGSZ)
        assert batch.is_contiguous(memory_format=torch.channels_last), "the frames' own memory, not a copy"
        raw_folded = folded.infer(batch)
        float_batch, _ = unfolded.preprocess(frames)
        raw_unfolded = unfolded.infer(float_batch)
        np.testing.assert_allclose(raw_folded, raw_unfolded, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(folded.infer(float_batch), raw_unfolded, rtol=1e-4, atol=1e-4)
        found = folded.postprocess(raw_folded, placements, 0.25, 0.45)[0]
        expected = unfolded.postprocess(raw_unfolded, placements, 0.25, 0.45)[0]
        assert [d.class_id for d in found] == [d.class_id for d in expected]
        for got, want in zip(found, expected):
            assert (got.x1, got.y1, got.x2, got.y2) == pytest.approx((want.x1, want.y1, want.x2, want.y2), abs=0.05)
        boxes += len(found)
    assert boxes > 0, "the detecting model finds boxes, so there is something to compare"
