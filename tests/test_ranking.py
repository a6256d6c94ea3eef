"""The one rule for naming a result fastest, and how the CLI says it after its table."""

from engine.cli_output import print_fastest
from engine.ranking import fastest, least


def result(
    runtime: str,
    precision: str,
    total_ms: float | None,
    verdict: str | None,
    status: str = "completed",
    reason: str = "",
) -> dict:
    return {
        "result_id": f"{runtime}-{precision}",
        "runtime": runtime,
        "precision": precision,
        "batch": 1,
        "mode": "lean",
        "status": status,
        "total_ms": total_ms,
        "parity_verdict": verdict,
        "parity_reason": reason,
    }


RESULTS = [
    result("onnxruntime", "fp32", 20.0, "pass"),
    result("tensorflow", "fp32", None, None, status="failed"),
    result("openvino", "int8", 5.0, "fail", reason="found 6 of the reference's 42 boxes"),
    result("tflite", "int8", 7.0, "drift"),
    result("openvino", "fp32", 8.0, "fail"),
]


def test_a_result_that_failed_parity_is_passed_over_and_a_drift_is_not():
    best, passed_over = fastest(RESULTS)
    assert best["result_id"] == "tflite-int8", "drift works, not identically: still a candidate"
    assert [r["result_id"] for r in passed_over] == ["openvino-int8"], "only the faster failures are named"


def test_no_verdict_is_no_failure_and_all_failed_falls_back_to_the_fastest():
    assert fastest([{**r, "parity_verdict": None} for r in RESULTS])[0]["result_id"] == "openvino-int8"
    best, passed_over = fastest([{**r, "parity_verdict": "fail"} for r in RESULTS])
    assert best["result_id"] == "openvino-int8" and passed_over == []
    assert fastest([RESULTS[1]]) == (None, [])


def test_the_cli_names_the_fastest_and_the_faster_failures_with_their_reason(capsys):
    print_fastest(RESULTS)
    assert capsys.readouterr().out.splitlines() == [
        "fastest: tflite:int8 b1, 7.00 ms per image end to end, parity drift",
        "  faster but failed parity: openvino:int8 b1, 5.00 ms: found 6 of the reference's 42 boxes",
    ]


def test_the_smallest_model_is_chosen_among_results_whose_parity_did_not_fail():
    sized = [{**r, "model_mb": size} for r, size in zip(RESULTS, [12.2, 12.3, 3.5, 3.2, 12.3])]
    assert least(sized, "model_mb")["result_id"] == "tflite-int8"
    assert (
        least([{**r, "model_mb": 1.0} if r["runtime"] == "openvino" else r for r in sized], "model_mb")["result_id"]
        == "tflite-int8"
    ), "openvino's 1.0 MB files failed parity"
    assert least(RESULTS, "model_mb") is None, "no figure, no answer (results from before schema v9)"


def test_a_failed_result_is_never_fastest_whatever_figure_it_kept():
    crashed = result("openvino", "fp32", 5.0, None, status="failed")  # failed after part of its measurement
    best, passed_over = fastest([crashed, result("onnxruntime", "fp32", 20.0, "pass")])
    assert best["runtime"] == "onnxruntime" and passed_over == []


def test_a_failed_parity_result_as_fast_as_the_fastest_is_not_passed_over():
    best, passed_over = fastest([result("openvino", "int8", 20.0, "fail"), result("onnxruntime", "fp32", 20.0, "pass")])
    assert best["runtime"] == "onnxruntime" and passed_over == [], "only a faster one was passed over"
