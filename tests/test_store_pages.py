"""The store's reads shaped for the pages (engine/store.py): each returns what a page draws, from a planted history
whose answers are known."""

import pandas as pd
import pytest

from engine import store
from tests.rows import plant_run

DAY = pd.Timestamp("2026-11-01", tz="UTC")


def at(hours: float) -> pd.Timestamp:
    return DAY + pd.Timedelta(hours=hours)


@pytest.fixture
def history(tmp_path):
    """Machine m1 ('lab'): six runs of model a, then one of model b; machine m2 ('ci'): two runs of model a, the
    last of them the newest of all, and a failed result."""
    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    for hour in range(6):
        plant_run(db, f"lab{hour}", at(hour), [
            {"runtime": "onnxruntime", "total_ms": 10.0 + hour, "infer_ms": 8.0 + hour},
            {"runtime": "openvino", "batch": 2, "total_ms": 5.0 + hour, "infer_ms": 4.0 + hour},
        ], machine_label="lab", model="a")  # fmt: skip
    plant_run(db, "labb", at(7), [{"runtime": "onnxruntime", "total_ms": 30.0}], machine_label="lab", model="b")
    plant_run(db, "ci0", at(2.5), [{"runtime": "onnxruntime", "total_ms": 20.0}], "m2", machine_label="ci", model="a")
    plant_run(db, "ci1", at(9), [
        {"runtime": "onnxruntime", "total_ms": 21.0},
        {"runtime": "tflite", "status": "failed", "error": "boom"},
    ], "m2", machine_label="old-ci", model="a")  # fmt: skip
    return str(db)


def test_run_models_names_each_model_once(history):
    assert store.run_models(history) == ["a", "b"]


def test_history_choices_are_the_configurations_with_their_span(history):
    choices = store.history_choices(history)
    assert list(dict.fromkeys(choices["machine_id"])) == ["m2", "m1"], "the machine that ran last first"
    assert set(choices.loc[choices["machine_id"] == "m2", "machine_label"]) == {"old-ci"}, "its newest label"
    lab = choices[(choices["machine_id"] == "m1") & (choices["model"] == "a") & (choices["runtime"] == "openvino")]
    assert lab[["batch", "results"]].values.tolist() == [[2, 6]]
    assert (lab["first_at"].iloc[0], lab["last_at"].iloc[0]) == (at(0), at(5))
    assert "tflite" not in set(choices["runtime"]), "a failed result is no configuration to chart"
    only_b = store.history_choices(history, {"model": ["b"]})
    assert only_b[["machine_id", "runtime", "results"]].values.tolist() == [["m1", "onnxruntime", 1]]


def test_history_points_are_each_runs_value_until_a_line_is_too_long(history):
    lab_a = {"machine_id": ["m1"], "model": ["a"]}
    points = store.history_points(history, lab_a, "infer_ms", ["runtime"], 10)
    onnx = points[points["runtime"] == "onnxruntime"]
    assert onnx["value"].tolist() == [8.0, 9.0, 10.0, 11.0, 12.0, 13.0]
    assert onnx["runs"].tolist() == [1] * 6 and onnx["run_id"].tolist() == [f"lab{h}" for h in range(6)]
    assert onnx["started_at"].tolist() == [at(h) for h in range(6)]
    reduced = store.history_points(history, lab_a, "infer_ms", ["runtime"], 4)  # 6 runs, 4 points: 2 runs each
    onnx = reduced[reduced["runtime"] == "onnxruntime"]
    assert onnx["runs"].tolist() == [2, 2, 2] and onnx["run_id"].isna().all()
    assert onnx["value"].tolist() == [8.5, 10.5, 12.5]
    assert onnx["low"].tolist() == [8.0, 10.0, 12.0] and onnx["high"].tolist() == [9.0, 11.0, 13.0]
    assert onnx["machines"].tolist() == [1, 1, 1]
    total = store.history_points(history, lab_a, "total_ms", ["runtime", "batch"], 3)
    assert total.loc[total["runtime"] == "openvino", "value"].tolist() == [5.5, 7.5, 9.5]


def test_history_points_without_a_split_is_one_line_of_every_machine(history):
    points = store.history_points(history, {"model": ["a"], "runtime": ["onnxruntime"]}, "total_ms", [], 100)
    assert points["run_id"].tolist() == ["lab0", "lab1", "lab2", "ci0", "lab3", "lab4", "lab5", "ci1"]
    one_point = store.history_points(history, {"model": ["a"], "runtime": ["onnxruntime"]}, "total_ms", [], 1)
    assert one_point[["runs", "machines", "low", "high"]].values.tolist() == [[8, 2, 10.0, 21.0]]
    dated = store.history_points(history, {"model": ["a"], "since": at(4), "until": at(5)}, "total_ms", [], 9)
    assert dated["run_id"].tolist() == ["lab4", "lab5"], "a run is one point: the median of its results"
    assert dated["value"].tolist() == [11.5, 12.5]


def test_history_points_take_only_known_columns(history):
    with pytest.raises(ValueError, match="no history of"):
        store.history_points(history, {}, "infer_ms; DROP TABLE runs", [], 10)
    with pytest.raises(ValueError, match="no history of"):
        store.history_points(history, {}, "infer_ms", ["runtime", "error"], 10)


def test_results_page_is_newest_first_with_the_count(history):
    page, total = store.results_page(history, {}, 3, 0)
    assert total == 16
    assert page["run_id"].tolist() == ["ci1", "ci1", "labb"]
    assert page["runtime"].tolist()[:2] == ["onnxruntime", "tflite"], "a run's own order kept"
    second, _ = store.results_page(history, {}, 3, 3)
    assert second["run_id"].tolist() == ["lab5", "lab5", "lab4"]
    failed, failures = store.results_page(history, {"status": ["failed"]}, 10, 0)
    assert failures == 1 and failed["error"].tolist() == ["boom"]
    assert store.results_page(history, {"model": ["c"]}, 10, 0)[1] == 0


def test_latest_runs_per_machine_and_per_model(history):
    assert store.latest_runs(history)["run_id"].tolist() == ["ci1", "labb"]
    per_model = store.latest_runs(history, per_model=True)
    assert per_model["run_id"].tolist() == ["ci1", "labb", "lab5"]
    assert store.latest_runs(history, {"model": ["a"], "machine_id": ["m1"]})["run_id"].tolist() == ["lab5"]


def test_runs_with_results_lists_the_newest_and_the_named(history):
    runs = store.runs_with_results(history, {}, 2)
    assert runs["run_id"].tolist() == ["ci1", "labb"] and runs["matching"].tolist() == [9, 9]
    assert "newest" not in runs
    named = store.runs_with_results(history, {}, 2, ("lab0",))
    assert named["run_id"].tolist() == ["ci1", "labb", "lab0"]
    of_b = store.runs_with_results(history, {"model": ["b"]}, 5, ("lab0",))
    assert of_b["run_id"].tolist() == ["labb"], "a named run outside the filters stays out"


def test_fastest_candidates_keep_the_trusted_best_and_the_faster_failures(tmp_path):
    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    plant_run(db, "r1", at(0), [
        {"runtime": "onnxruntime", "total_ms": 10.0, "verdict": "pass"},
        {"runtime": "openvino", "total_ms": 6.0, "verdict": "fail"},
        {"runtime": "tflite", "total_ms": 8.0, "verdict": "drift"},
        {"runtime": "pytorch", "total_ms": 9.0},
        {"runtime": "tensorflow", "status": "failed", "error": "x"},
    ], model="a")  # fmt: skip
    plant_run(db, "r2", at(1), [
        {"runtime": "openvino", "total_ms": 3.0, "verdict": "fail"},
        {"runtime": "onnxruntime", "total_ms": 4.0, "verdict": "fail"},
    ], "m2", machine_label="other", model="a")  # fmt: skip
    candidates = store.fastest_candidates(str(db))
    mine = candidates[candidates["machine_label"] == "box"]
    assert sorted(mine["runtime"]) == ["openvino", "tflite"], "the drift counts; the slower ones are no candidates"
    other = candidates[candidates["machine_label"] == "other"]
    assert other["runtime"].tolist() == ["openvino"], "where every one failed parity, the fastest"
    assert set(candidates["results_at_size"]) == {6}
    assert store.fastest_candidates(str(db), {"model": ["b"]}).empty


def test_a_failed_result_with_figures_is_in_no_page_read_of_completed_results(history):
    """A result stored as failed keeps whatever it measured before it failed; the reads of completed results leave
    it out however fast it looks: the newest run of m2 below failed, at 1 ms."""
    from dataclasses import replace

    from tests.rows import flat_stats, result_record, run_row

    store.insert_run(history, run_row("ci2", started_at=at(12), machine_id="m2", machine_label="ci", model="a"))
    failed = result_record("ci2-0", "ci2", status="failed", error="crashed in postprocess")
    store.insert_result(history, replace(failed, stats={"total": flat_stats(1.0, 10), "infer": flat_stats(1.0, 10)}))
    store.finish_run(history, "ci2", "completed")
    assert store.latest_runs(history)["run_id"].tolist() == ["ci1", "labb"]
    assert "ci2" not in store.fastest_candidates(history)["run_id"].tolist()
    assert "ci2" not in store.recommend_candidates(history)["run_id"].tolist()
    points = store.history_points(history, {"machine_id": ["m2"]}, "total_ms", [], 150)
    assert points["run_id"].tolist() == ["ci0", "ci1"]
    assert (
        "ci2" not in set(store.history_choices(history)["last_at"].astype(str))
        and len(store.history_choices(history, {"machine_id": ["m2"]})) == 1
    )


def test_every_split_at_once_is_a_history(history):
    every = sorted(store.HISTORY_SPLITS)
    points = store.history_points(history, None, "total_ms", every, 150)
    assert len(points) == 15 and set(every) <= set(points.columns)  # a point per run of each series


def test_page_reads_of_a_database_not_there_are_empty(tmp_path):
    missing = tmp_path / "missing.duckdb"
    assert store.run_models(missing) == []
    assert store.machine_ids_named(missing, "lab") == []
    page, matching = store.results_page(missing, None, 100, 0)
    assert page.empty and matching == 0
    assert store.runs_with_results(missing, None, 500).empty


def test_runs_named_beyond_the_newest_are_each_listed(history):
    runs = store.runs_with_results(history, None, 1, include=("lab0", "lab1"))
    assert runs["run_id"].tolist() == ["ci1", "lab1", "lab0"] and set(runs["matching"]) == {9}
