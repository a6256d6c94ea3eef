"""A run's settings, checked in-process: each limit at its edge, the messages a user reads, the matrix a request
expands to, and what it names but cannot run."""

from __future__ import annotations

import pytest

from engine import config as cfg
from engine.config import BenchError, RunConfig, Variant, validate
from engine.runtimes import registry


def settings(**changes) -> RunConfig:
    return RunConfig(**{"runtimes": ["onnxruntime"], "db": "results.duckdb", **changes})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"runtimes": []}, "no runtime chosen"),
        ({"runtimes": ["caffe"]}, "unknown runtime 'caffe'"),
        ({"runtimes": ["openvno"]}, "unknown runtime 'openvno', did you mean 'openvino'?"),
        ({"precisions": ["fp8"]}, "unknown precision 'fp8'"),
        ({"precisions": ["fp61"]}, "did you mean 'fp16'?"),
        ({"modes": []}, "no pipeline mode given"),
        ({"modes": ["fast"]}, "unknown pipeline mode 'fast'"),
        ({"batch_sizes": []}, "no batch size given"),
        ({"batch_sizes": [0]}, "batch size 0 is out of range: use 1 to 64"),
        ({"batch_sizes": [cfg.MAX_BATCH + 1]}, f"batch size {cfg.MAX_BATCH + 1} is out of range"),
        ({"imgsz": 0}, "image size 0 is not usable"),
        ({"imgsz": 100}, "image size 100 is not usable: use a multiple of 32 from 32 to 1920"),
        ({"imgsz": cfg.MAX_IMGSZ + 32}, "image size 1952"),
        ({"iters": 0}, "iterations 0 is out of range: use 1 to 100000"),
        ({"iters": cfg.MAX_ITERS + 1}, "iterations 100001"),
        ({"warmup": -1}, "warm-up -1 is out of range: use 0 to 10000"),
        ({"warmup": cfg.MAX_WARMUP + 1}, "warm-up 10001"),
        ({"min_duration_s": -0.5}, "minimum duration -0.5 s is out of range: use 0 to 3600"),
        ({"min_duration_s": 3600.5}, "minimum duration 3600.5 s"),
        ({"in_flight": -1}, "requests in flight -1 is out of range: use 0 (off) to 64"),
        ({"in_flight": cfg.MAX_IN_FLIGHT + 1}, "requests in flight 65"),
        ({"threads": -1}, "threads -1 is out of range"),
        ({"threads": 10_000}, "logical CPU(s)"),
        ({"memory_limit_mb": -1}, "memory limit -1 MB is out of range"),
        ({"memory_limit_mb": 255}, "memory limit 255 MB is too small"),
        ({"memory_limit_mb": 16 * 2**20 + 1}, "is out of range"),
        ({"timeout_s": 0.5}, "timeout 0.5 s is out of range: use 1 to 86400"),
        ({"timeout_s": cfg.MAX_TIMEOUT_S + 1}, "timeout 86401"),
        ({"conf": 0.0}, "confidence and IoU thresholds must lie strictly between 0 and 1"),
        ({"conf": 1.0}, "confidence and IoU"),
        ({"iou": 0.0}, "confidence and IoU"),
        ({"iou": 1.0}, "confidence and IoU"),
        ({"parity_iou": 0.0}, "parity IoU 0.0 must lie strictly between 0 and 1"),
        ({"parity_iou": 1.0}, "parity IoU 1.0"),
        ({"reference": "model.onnx"}, "reference model model.onnx must be a PyTorch .pt"),
        ({"data": "/nowhere/data.yaml"}, "labelled data /nowhere/data.yaml does not exist"),
        ({"machine_label": "x" * 201}, "machine label (200) or note (2000 characters) is too long"),
        ({"note": "x" * 2001}, "is too long"),
    ],
)
def test_a_setting_out_of_range_is_refused_with_its_message(changes, message):
    with pytest.raises(BenchError) as refused:
        validate(settings(**changes))
    assert message in str(refused.value), str(refused.value)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"batch_sizes": [1, cfg.MAX_BATCH]},
        {"imgsz": cfg.MIN_IMGSZ},
        {"imgsz": cfg.MAX_IMGSZ},
        {"iters": 1},
        {"iters": cfg.MAX_ITERS},
        {"warmup": 0},
        {"warmup": cfg.MAX_WARMUP},
        {"min_duration_s": cfg.MAX_MIN_DURATION_S},
        {"in_flight": cfg.MAX_IN_FLIGHT},
        {"threads": cfg.usable_cpus()},
        {"memory_limit_mb": 256},
        {"timeout_s": 1.0},
        {"timeout_s": cfg.MAX_TIMEOUT_S},
        {"reference": "weights.pt"},
        {"reference": "yolov8n.yaml"},
        {"machine_label": "x" * 200, "note": "x" * 2000},
        {"precisions": ["all"], "modes": ["lean", "ultralytics"]},
        {"runtimes": ["onnxruntime:fp32"]},
    ],
)
def test_a_setting_at_its_limit_is_taken(changes):
    validate(settings(**changes))


def test_lists_parse_as_a_user_types_them():
    assert cfg.parse_int_list("1, 2,4,", "--batch") == [1, 2, 4]
    with pytest.raises(BenchError, match="--batch must be whole numbers separated by commas, got 'two'"):
        cfg.parse_int_list("two", "--batch")
    with pytest.raises(BenchError, match="--batch is empty"):
        cfg.parse_int_list(" , ", "--batch")
    assert cfg.parse_name_list(" onnxruntime, ,openvino ") == ["onnxruntime", "openvino"]
    assert cfg.parse_modes("all") == list(cfg.MODES) == cfg.parse_modes("both")
    assert cfg.parse_modes("ultralytics") == ["ultralytics"]
    assert cfg.parse_runtimes("onnxruntime,openvino") == ["onnxruntime", "openvino"]
    assert "onnxruntime" in cfg.parse_runtimes("all")
    assert cfg.did_you_mean("zzzz", cfg.PRECISIONS) == ""


def test_a_request_expands_to_what_each_runtime_offers():
    request = settings(runtimes=["torchscript", "openvino"], precisions=["int8", "fp32"], modes=["lean", "ultralytics"])
    variants = cfg.expand_variants(request)
    assert variants == [Variant("torchscript", "fp32", "lean"), Variant("torchscript", "fp32", "ultralytics"),
                        Variant("openvino", "int8", "lean"), Variant("openvino", "int8", "ultralytics"),
                        Variant("openvino", "fp32", "lean"), Variant("openvino", "fp32", "ultralytics")]  # fmt: skip
    assert cfg.not_measured(request, variants) == ["not measured: torchscript:int8 (torchscript offers fp32)"]
    assert cfg.expand_variants(settings(runtimes=["openvino:bf16"])) == [Variant("openvino", "bf16", "lean")]
    with pytest.raises(BenchError, match="runtime openvino offers fp32, bf16, int8, not 'fp16'"):
        cfg.expand_variants(settings(runtimes=["openvino:fp16"]))
    with pytest.raises(BenchError, match="none of the chosen runtimes offers precision int8"):
        cfg.expand_variants(settings(runtimes=["pytorch"], precisions=["int8"]))
    assert Variant("onnxruntime", "fp32", "ultralytics").label == "onnxruntime:fp32/ultralytics"
    assert Variant("onnxruntime", "fp32").label == "onnxruntime:fp32"


def test_in_flight_where_it_is_not_offered_is_named():
    request = settings(runtimes=["onnxruntime", "torchscript"], in_flight=2, modes=["lean", "ultralytics"])
    said = cfg.not_measured(request, cfg.expand_variants(request))
    assert said == ["not measured in flight: torchscript:fp32 (it offers one request at a time only)"]
    assert cfg.not_measured(settings(runtimes=["torchscript"]), [Variant("torchscript", "fp32")]) == []


def test_an_onnx_model_runs_where_its_file_is_taken():
    variants = [Variant("pytorch", "fp32"), Variant("onnxruntime", "fp32"), Variant("openvino", "fp32")]
    assert cfg.runnable_on_onnx(variants) == (variants[1:], ["pytorch"])


def test_an_onnx_model_is_not_run_at_a_precision_its_file_cannot_give():
    """int8 is quantised from the .pt: an .onnx file given as the model runs fp32 (and OpenVINO's bf16 hint) only,
    and the precisions it cannot give are named by runtime and precision."""
    variants = [
        Variant("onnxruntime", "fp32"),
        Variant("onnxruntime", "int8"),
        Variant("openvino", "bf16"),
        Variant("openvino", "int8"),
        Variant("opencv-dnn", "fp32"),
        Variant("ncnn", "fp32"),
    ]
    takes, cannot = cfg.runnable_on_onnx(variants)
    assert takes == [variants[0], variants[2], variants[4]]
    assert cannot == ["ncnn", "onnxruntime:int8", "openvino:int8"]


def test_a_config_round_trips_and_ignores_unknown_keys():
    request = settings(iters=7, note="n")
    assert RunConfig.from_dict({**request.to_dict(), "host": "vm"}) == request
    assert settings(threads=2).effective_threads == 2 and settings().effective_threads == cfg.physical_cores()
    assert settings(memory_limit_mb=512).effective_memory_limit_mb == 512
    assert settings().effective_memory_limit_mb > 256
    assert RunConfig().runtimes == list(cfg.DEFAULT_RUNTIMES)


def test_what_a_request_names_but_cannot_measure_is_named_in_full():
    """Each missing precision of an unpinned runtime, in the request's order, beside what it offers; a pinned
    runtime or "all" asks only for what is offered; in flight and profiles by mode and runtime."""
    request = settings(runtimes=["tflite", "onnxruntime:fp32", "openvino"], precisions=["fp16", "bf16", "fp32"])
    assert cfg.not_measured(request, []) == [
        "not measured: tflite:fp16,bf16 (tflite offers fp32, int8)",
        "not measured: openvino:fp16 (openvino offers fp32, bf16, int8)",
    ]
    assert cfg.not_measured(settings(runtimes=["onnxruntime:fp32"], precisions=["int8"]), []) == []
    assert cfg.not_measured(settings(runtimes=["onnxruntime"], precisions=["all"]), []) == []
    in_flight = settings(runtimes=["pytorch-cuda", "openvino"], in_flight=2)
    variants = [Variant("pytorch-cuda", "fp16", "ultralytics"), Variant("openvino", "fp32", "ultralytics"),
                Variant("openvino", "fp32", "lean")]  # fmt: skip
    assert cfg.not_measured(in_flight, variants) == [
        "not measured in flight: pytorch-cuda:fp16/ultralytics (it offers one request at a time only)"
    ]
    profiled = settings(runtimes=["tflite", "openvino"], profile=5)
    variants = [Variant("tflite", "fp32", "lean"), Variant("openvino", "fp32", "ultralytics"),
                Variant("openvino", "fp32", "lean")]  # fmt: skip
    assert cfg.not_measured(profiled, variants) == [
        "not profiled: tflite:fp32 (its Python API gives no per-op timing)",
        "not profiled: openvino:fp32/ultralytics (profiles are taken in the lean mode)",
    ]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"runtimes": []}, "no runtime chosen: pass --runtimes, e.g. --runtimes onnxruntime,openvino"),
        ({"runtimes": ["caffe"]}, f"unknown runtime 'caffe': choose from {', '.join(registry.names())} or 'all'"),
        ({"runtimes": ["caffe:fp32:x"]}, f"unknown runtime 'caffe': choose from {', '.join(registry.names())} "
                                          "or 'all'"),
        ({"precisions": ["fp8"]}, "unknown precision 'fp8': choose from fp32, fp16, bf16, int8 or 'all'"),
        ({"modes": []}, "no pipeline mode given: pass --modes, e.g. --modes lean,ultralytics"),
        ({"modes": ["fast"]}, "unknown pipeline mode 'fast': choose from lean, ultralytics or 'all'"),
        ({"batch_sizes": []}, "no batch size given: pass --batch, e.g. --batch 1,2,4"),
        ({"conf": 0.0}, "confidence and IoU thresholds must lie strictly between 0 and 1"),
        ({"machine_label": "x" * 201}, "machine label (200) or note (2000 characters) is too long"),
        ({"profile": cfg.MAX_PROFILE_CALLS + 1}, "profile calls 101 is out of range: use 0 (off) to 100"),
        ({"memory_limit_mb": 16 * 2**20 + 1}, "memory limit 16777217 MB is out of range: use 0 (80% of RAM) or a "
                                              "size in MB"),
    ],
)  # fmt: skip
def test_a_refusal_is_its_whole_message(changes, message):
    with pytest.raises(BenchError) as refused:
        validate(settings(**changes))
    assert str(refused.value) == message


def test_limits_of_profiles_memory_and_references_are_taken():
    validate(settings(profile=cfg.MAX_PROFILE_CALLS, memory_limit_mb=16 * 2**20, reference="weights.yml"))
    validate(settings(reference="WEIGHTS.YML"))


def test_all_precisions_are_each_runtimes_own_and_a_request_none_offers_names_what_each_does():
    assert cfg.expand_variants(settings(runtimes=["tflite"], precisions=["all"])) == [
        Variant("tflite", "fp32", "lean"), Variant("tflite", "int8", "lean")
    ]  # fmt: skip
    with pytest.raises(BenchError) as refused:
        cfg.expand_variants(settings(runtimes=["tflite", "pytorch"], precisions=["fp16", "bf16"]))
    assert str(refused.value) == (
        "none of the chosen runtimes offers precision fp16, bf16 (tflite offers fp32, int8; pytorch offers fp32): "
        "pass --precisions with one they offer, or 'all'"
    )
