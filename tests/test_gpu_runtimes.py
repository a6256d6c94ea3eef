"""GPU runtimes: without an NVIDIA GPU they are listed unavailable with the reason and fail only their own results."""

import json

import pytest

from engine.machine import gpus
from engine.runtimes.cuda import NO_GPU_REASON
from tests.conftest import engine, engine_run

GPU_RUNTIMES = {"pytorch-cuda", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt"}
needs_no_gpu = pytest.mark.skipif(bool(gpus()), reason="this machine has an NVIDIA GPU")


@needs_no_gpu
def test_gpu_runtimes_are_listed_unavailable_with_reason():
    listed = {r["name"]: r for r in json.loads(engine("runtimes", "--json").stdout)}
    assert set(listed) >= GPU_RUNTIMES
    for name in GPU_RUNTIMES:
        assert listed[name]["available"] is False
        assert listed[name]["reason"] == NO_GPU_REASON


@needs_no_gpu
def test_asking_for_a_gpu_runtime_fails_that_result_only(tmp_path):
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--runtimes", "pytorch-cuda,tensorrt:fp16,onnxruntime", "--iters", "2", "--json")
    assert done.returncode == 1
    results = {r["runtime"]: r for r in json.loads(done.stdout)["results"]}
    assert results["onnxruntime"]["status"] == "completed"
    for name in ("pytorch-cuda", "tensorrt"):
        assert results[name]["status"] == "failed"
        assert NO_GPU_REASON in results[name]["error"]
