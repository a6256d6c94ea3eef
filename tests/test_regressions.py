"""Regression watch: a verdict only when the new result's confidence interval clears the history's noise."""

import contextlib
import io

import pandas as pd
import pytest

from engine import api, store
from engine.cli_output import print_watch
from engine.measure import Stats
from engine.records import ParityRow, ResultRecord, StageSample
from engine.regressions import check
from tests.conftest import engine

BASE = {
    "machine_id": "m1",
    "machine_label": "lab",
    "model": "yolov8n",
    "runtime": "onnxruntime",
    "precision": "fp32",
    "batch": 1,
    "mode": "lean",
    "imgsz": 640,
    "threads": 2,
    "status": "completed",
}


def history(*medians, newest_ci=None):
    rows = []
    for i, median in enumerate(medians):
        low, high = newest_ci if (newest_ci and i == len(medians) - 1) else (median * 0.99, median * 1.01)
        rows.append(
            {
                **BASE,
                "result_id": f"r{i}",
                "run_id": f"run{i}",
                "started_at": pd.Timestamp("2026-11-01") + pd.Timedelta(days=i),
                "infer_ms": median,
                "infer_ci_low_ms": low,
                "infer_ci_high_ms": high,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "medians, newest_ci, expected",
    [
        ((10.0, 10.2, 9.9, 12.0), (11.8, 12.2), "regression"),
        ((10.0, 10.2, 9.9, 8.0), (7.9, 8.1), "improvement"),
        ((10.0, 10.2, 9.9, 10.1), (9.8, 10.4), "no change"),
        ((10.0, 10.2, 9.9, 11.0), (9.9, 12.0), "no change"),  # median moved, but its interval does not clear
        ((10.0, 13.0, 10.0, 12.5), (12.4, 12.6), "no change"),  # a noisy history raises the floor to 30%
        ((10.0, 12.0), (11.9, 12.1), "not enough history"),
    ],
)
def test_verdicts(medians, newest_ci, expected):
    (verdict,) = check(history(*medians, newest_ci=newest_ci))
    assert verdict.verdict == expected
    assert verdict.history == len(medians) - 1


def test_configurations_are_judged_apart():
    mixed = pd.concat(
        [
            history(10.0, 10.1, 10.0, 14.0, newest_ci=(13.9, 14.1)),
            history(10.0, 10.1, 10.0, 10.0).assign(batch=2, result_id=lambda f: f.result_id + "b2"),
        ]
    )
    verdicts = {v.batch: v.verdict for v in check(mixed)}
    assert verdicts == {1: "regression", 2: "no change"}


def test_pipeline_modes_are_judged_apart():
    """One run's ultralytics-mode result is no history for its lean result, nor the other way round."""
    mixed = pd.concat(
        [
            history(10.0, 10.1, 10.0, 10.0),
            history(14.0, 14.1, 14.0).assign(mode="ultralytics", result_id=lambda f: f.result_id + "u"),
        ]
    )
    verdicts = {v.mode: (v.verdict, v.history) for v in check(mixed)}
    assert verdicts == {"lean": ("no change", 3), "ultralytics": ("no change", 2)}


def test_a_newest_result_that_failed_is_judged_not_hidden():
    """A crash in the newest run used to leave the verdict of the run before it ('no change')."""
    failed = {
        **BASE,
        "result_id": "crash",
        "run_id": "run9",
        "started_at": pd.Timestamp("2026-11-09"),
        "status": "failed",
        "error": "worker process crashed with SIGSEGV",
        "infer_ms": None,
        "infer_ci_low_ms": None,
        "infer_ci_high_ms": None,
    }
    (verdict,) = check(pd.concat([history(10.0, 10.1, 10.0), pd.DataFrame([failed])]))
    assert (verdict.verdict, verdict.result_id, verdict.history) == ("stopped working", "crash", 3)
    assert verdict.previous_run_id == "run2", "the run of the last result that completed: what changed since"
    assert verdict.infer_ms is None and verdict.baseline_ms == 10.0 and "SIGSEGV" in verdict.error
    (never,) = check(pd.DataFrame([failed]))
    assert (never.verdict, never.history) == ("failed", 0), "it never worked: nothing regressed"
    (recovered,) = check(
        pd.concat(
            [
                pd.DataFrame([failed]),
                history(10.0, 10.1, 10.0).assign(started_at=lambda f: f.started_at + pd.Timedelta(days=30)),
            ]
        )
    )
    assert recovered.verdict == "no change", "an older failure is no history and no verdict"


def test_a_result_exported_where_it_cannot_run_is_not_judged():
    """CoreML off macOS is exported and stored, not run: no verdict, and no "failed" in the watch."""
    exported = {**BASE, "result_id": "mac", "run_id": "run9", "started_at": pd.Timestamp("2026-11-09"),
                "status": "exported", "error": "CoreML runs on macOS only", "infer_ms": None}  # fmt: skip
    assert check(pd.DataFrame([exported])) == []
    (verdict,) = check(pd.concat([history(10.0, 10.1, 10.0, 10.05), pd.DataFrame([exported])]))
    assert (verdict.verdict, verdict.result_id) == ("no change", "r3")


def test_parity_worse_than_the_run_before_is_flagged_apart_from_speed():
    """A library upgrade that breaks an export keeps its speed: the detections changing is the news."""
    verdicts = ["pass", "drift", "pass", "fail"]
    rows = history(10.0, 10.1, 10.0, 10.0).assign(
        parity_verdict=verdicts, parity_reason=["", "", "", "found 3 of the reference's 42 boxes"]
    )
    (verdict,) = check(rows)
    assert (verdict.verdict, verdict.parity_change) == ("no change", "pass -> fail"), "against the run just before"
    assert verdict.parity_reason == "found 3 of the reference's 42 boxes" and verdict.regressed
    for unflagged in [
        ("fail", "fail", "pass"),
        ("pass", "drift", "drift"),
        ("pass", "pass", None),
        (None, None, "fail"),
    ]:  # better, the same, no verdict now, none before
        (same,) = check(history(10.0, 10.1, 10.0).assign(parity_verdict=list(unflagged)))
        assert same.parity_change is None and not same.regressed, unflagged
    (no_column,) = check(history(10.0, 10.1, 10.0))
    assert no_column.parity_change is None


def _store_run(db, run_id, day, results, parity=None, imgsz=640, libraries=None, iterations=20):
    """One run whose results are {runtime: inference ms} for completed ones, {runtime: reason} for failed ones;
    parity: {runtime: (verdict, reason)}; libraries: {name: version}, as the engine records them."""
    store.insert_run(
        db,
        {
            "run_id": run_id,
            "started_at": pd.Timestamp(f"2026-11-{day:02d}", tz="UTC"),
            "machine_id": "m1",
            "machine_label": "lab",
            "model": "yolov8n",
            "model_sha256": "x",
            "model_source": "test",
            "weights_trained": False,
            "imgsz": imgsz,
            "images": [],
            "config": {},
            "libraries": libraries or {},
            "pid": 1,
        },
    )
    for runtime, outcome in results.items():
        failed = isinstance(outcome, str)
        samples, per_stage = [], {}
        if not failed:
            samples = [
                StageSample(decode=1, pre=1_000_000, infer=int(outcome * 1e6) + i * 1000, post=1)
                for i in range(iterations)
            ]
            per_stage = {
                stage: Stats.from_values([getattr(s, stage) / 1e6 for s in samples])
                for stage in ("decode", "pre", "infer", "post")
            }
            per_stage["total"] = Stats.from_values([s.total / 1e6 for s in samples])
        store.insert_result(
            db,
            ResultRecord(
                result_id=f"{run_id}-{runtime}",
                run_id=run_id,
                runtime=runtime,
                precision="fp32",
                batch=1,
                status="failed" if failed else "completed",
                error=outcome if failed else None,
                imgsz=imgsz,
                threads=2,
                samples=tuple(samples),
                stats=per_stage,
                parity=_parity_row(*(parity or {}).get(runtime, (None, None))),
            ),
        )
    store.finish_run(db, run_id, "completed")


def _parity_row(verdict, reason):
    return (
        ParityRow(reference="pytorch:fp32 yolov8n.pt", iou_threshold=0.5, verdict=verdict, reason=reason)
        if verdict
        else None
    )


def test_cli_fails_on_a_regression_only_when_asked(tmp_path):
    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    for day, infer_ms in ((1, 60.0), (2, 61.0), (3, 60.5), (4, 80.0)):
        _store_run(db, f"run{day}", day, {"onnxruntime": infer_ms})
    _store_run(db, "run5", 5, {"onnxruntime": 20.0}, imgsz=320)
    report = engine("check-regressions", "--db", str(db))
    lines = report.stdout.splitlines()
    assert report.returncode == 0 and lines[0].split()[5:7] == ["size", "thr"], report.stdout
    size_at = lines[0].index("size")  # two sizes of one runtime are two histories, told apart by the column
    verdicts = {line[size_at - 1 : size_at + 4].strip(): line[:20].strip() for line in lines[1:-1]}
    assert verdicts == {"640": "regression", "320": "not enough history"}, report.stdout
    assert lines[-1] == "1 of 2 configuration(s) regressed (--fail-on-regression would exit 1)", report.stdout
    failing = engine("check-regressions", "--db", str(db), "--fail-on-regression")
    assert failing.returncode == 1 and failing.stdout.splitlines()[-1] == "1 of 2 configuration(s) regressed: exit 1"

    # in CI, the run just made: another configuration's news fails no one else's job
    own = engine("check-regressions", "--db", str(db), "--run", "run5", "--fail-on-regression")
    assert own.returncode == 0, own.stdout
    assert [line[:20].strip() for line in own.stdout.splitlines()[1:-1]] == ["not enough history"], own.stdout
    assert engine("check-regressions", "--db", str(db), "--run", "run4", "--fail-on-regression").returncode == 1
    superseded = engine("check-regressions", "--db", str(db), "--run", "run3")
    assert superseded.stdout.startswith("nothing of run run3 to judge: newer runs measured"), superseded.stdout


def test_cli_fails_when_a_configuration_stopped_working(tmp_path):
    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    for day, infer_ms in ((1, 60.0), (2, 61.0), (3, 60.5)):
        _store_run(db, f"run{day}", day, {"onnxruntime": infer_ms})
    _store_run(
        db, "run4", 4, {"onnxruntime": "measurement failed: worker process crashed with SIGSEGV", "openvino": 50.0}
    )
    report = engine("check-regressions", "--db", str(db))
    assert report.returncode == 0, report.stderr
    assert "stopped working" in report.stdout and "SIGSEGV" in report.stdout, report.stdout
    assert engine("check-regressions", "--db", str(db), "--fail-on-regression").returncode == 1

    from tests.dashboard_app import open_page, text_of

    app = open_page(db, "overview")  # the latest run, where OpenVINO completed and ONNX Runtime crashed
    assert not app.exception
    flagged = text_of(app.error).replace("*", "")
    assert (
        "stopped working: onnxruntime:fp32 batch 1 failed in this run; it completed in its 3 earlier run(s), "
        "median 60.5"
        in flagged
        and "ms. measurement failed: worker process crashed with SIGSEGV" in flagged
    )


def test_cli_on_a_single_run_has_not_enough_history(filled_db):
    done = engine("check-regressions", "--db", str(filled_db), "--fail-on-regression")
    assert done.returncode == 0 and "not enough history" in done.stdout


def test_the_overview_flags_a_regression(tmp_path):
    from tests.dashboard_app import open_page, text_of

    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    for day, infer_ms, version in ((1, 60.0, "1.31.0"), (2, 61.0, "1.31.0"), (3, 60.5, "1.31.0"), (4, 80.0, "1.32.0")):
        _store_run(
            db, f"run{day}", day, {"onnxruntime": infer_ms}, libraries={"onnxruntime": version, "numpy": "2.1.3"}
        )
    app = open_page(db, "overview")
    assert not app.exception
    flagged = text_of(app.error).replace("*", "")
    assert "regression: onnxruntime:fp32 batch 1 infers in 80.0" in flagged
    # the likely cause, named beside the flag: the library versions that changed since the run before
    assert flagged.endswith("(noise floor 3%). Since the run before: onnxruntime 1.31.0 → 1.32.0"), flagged
    report = engine("check-regressions", "--db", str(db)).stdout
    since = "  since the run before: onnxruntime 1.31.0 → 1.32.0"
    assert f"\n{since}\n1 of 1 configuration(s) regressed" in report, report
    watch = io.StringIO()
    with contextlib.redirect_stdout(watch):  # what `run` ends with
        print_watch(api.regressions_of_run(str(db), "run4")[0])
    assert watch.getvalue().splitlines()[1:] == [since], watch.getvalue()


def test_cli_and_overview_flag_parity_that_got_worse(tmp_path):
    from tests.dashboard_app import open_page, text_of

    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    for day, verdict in ((1, "pass"), (2, "pass")):
        _store_run(db, f"run{day}", day, {"onnxruntime": 60.0}, {"onnxruntime": (verdict, "agree")})
    assert engine("check-regressions", "--db", str(db), "--fail-on-regression").returncode == 0
    _store_run(db, "run3", 3, {"onnxruntime": 60.2}, {"onnxruntime": ("fail", "found 3 of the reference's 42 boxes")})
    report = engine("check-regressions", "--db", str(db))
    assert report.returncode == 0
    flagged = [line.split() for line in report.stdout.splitlines() if line.startswith("detections changed")]
    assert [words[2:6] for words in flagged] == [["onnxruntime", "fp32", "1", "lean"]], report.stdout
    assert "parity pass -> fail: found 3 of the reference's 42 boxes" in report.stdout
    assert engine("check-regressions", "--db", str(db), "--fail-on-regression").returncode == 1
    app = open_page(db, "overview")
    assert not app.exception
    assert (
        "detections changed: onnxruntime:fp32 batch 1 parity went pass → fail against the run before: found 3 "
        "of the reference's 42 boxes" in text_of(app.error).replace("*", "")
    )


def test_a_result_without_an_interval_gets_no_verdict():
    """Two runs of --iters 3 once read "regression: 6.53 ms against 6.09 ms" and failed CI: with fewer than 6
    iterations the median has no 95% interval, and the watch fell back to the median without saying so."""
    thin = history(10.0, 10.2, 9.9, 13.0).assign(iterations=[20, 20, 20, 3])
    thin.loc[3, ["infer_ci_low_ms", "infer_ci_high_ms"]] = None
    (verdict,) = check(thin)
    assert verdict.verdict == "not enough samples (3)", verdict
    assert not verdict.flagged and not verdict.regressed and not verdict.judged
    thin_history = history(10.0, 10.2, 13.0, newest_ci=(12.9, 13.1)).assign(iterations=[3, 20, 20])
    thin_history.loc[0, ["infer_ci_low_ms", "infer_ci_high_ms"]] = None
    (earlier,) = check(thin_history)
    assert earlier.verdict == "not enough samples (3)", "an earlier result without an interval is no evidence"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        print_watch([verdict])
    assert "not enough samples (3)" in printed.getvalue() and "--iters 6" in printed.getvalue()


def test_check_regressions_never_fails_on_thin_evidence(tmp_path):
    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    for day, infer_ms in ((1, 60.0), (2, 61.0), (3, 60.5)):
        _store_run(db, f"run{day}", day, {"onnxruntime": infer_ms})
    _store_run(db, "run4", 4, {"onnxruntime": 80.0}, iterations=3)
    done = engine("check-regressions", "--db", str(db), "--fail-on-regression")
    assert done.returncode == 0 and "not enough samples (3)" in done.stdout, done.stdout + done.stderr
    summary = api.results_summary(str(db)).set_index("run_id")
    assert pd.isna(summary.loc["run4", "stable"]) and bool(summary.loc["run1", "stable"]), "stable needs evidence"


def test_two_machines_under_one_label_are_judged_apart():
    """Two CI runners both labelled "ci": a slow runner's newest result is held against its own history, not
    flagged against the fast runner's."""
    fast = history(10.0, 10.1, 10.0).assign(machine_label="ci", machine_id="runner-a")
    slow = history(20.0, 20.2, 20.1, newest_ci=(19.9, 20.3)).assign(
        machine_label="ci", machine_id="runner-b", result_id=lambda f: "b-" + f.result_id,
        started_at=lambda f: f.started_at + pd.Timedelta(hours=1),
    )  # fmt: skip
    verdicts = {v.result_id: v for v in check(pd.concat([fast, slow], ignore_index=True))}
    assert verdicts["b-r2"].verdict == "no change" and verdicts["b-r2"].baseline_ms == pytest.approx(20.1)
    assert verdicts["r2"].verdict == "no change" and len(verdicts) == 2, "one verdict per machine"


def test_a_regression_verdict_carries_the_configuration_and_its_figures():
    (verdict,) = check(history(10.0, 10.2, 9.9, 12.0, newest_ci=(11.8, 12.2)).sample(frac=1, random_state=3))
    assert verdict.to_dict() == {
        "machine_label": "lab", "model": "yolov8n", "runtime": "onnxruntime", "precision": "fp32", "batch": 1,
        "imgsz": 640, "threads": 2, "result_id": "r3", "verdict": "regression", "infer_ms": 12.0, "ci_low_ms": 11.8,
        "ci_high_ms": 12.2, "baseline_ms": 10.0, "noise_floor": 0.03, "history": 3, "mode": "lean", "error": None,
        "parity_change": None, "parity_reason": None, "run_id": "run3", "previous_run_id": "run2",
        "library_changes": [],
    }  # fmt: skip
    assert verdict.flagged and verdict.regressed and verdict.judged


@pytest.mark.parametrize(
    "newest_ci, expected",
    [
        ((10.0, 10.5), "no change"),  # the interval's low end at exactly baseline x (1 + floor): not beyond it
        ((10.01, 10.5), "regression"),
        ((5.5, 6.0), "no change"),  # the high end at exactly baseline x (1 - floor)
        ((5.5, 5.99), "improvement"),
    ],
)
def test_the_noise_floor_is_how_far_the_history_spread(newest_ci, expected):
    """History 8, 10, 8: baseline 8, floor 25% (2 off 8); a verdict needs the interval beyond 10 or 6."""
    (verdict,) = check(history(8.0, 10.0, 8.0, sum(newest_ci) / 2, newest_ci=newest_ci))
    assert (verdict.verdict, verdict.baseline_ms, verdict.noise_floor) == (expected, 8.0, 0.25)


def test_a_completed_result_without_figures_is_no_result():
    rows = history(10.0, 10.1, 10.0, 10.0)
    rows.loc[3, ["infer_ms", "infer_ci_low_ms", "infer_ci_high_ms"]] = None
    (verdict,) = check(rows)
    assert (verdict.result_id, verdict.history) == ("r2", 2)


def test_a_failure_without_a_reason_says_so():
    failed = history(10.0, 10.1, 10.0, 10.0).assign(status=["completed"] * 3 + ["failed"], error=None)
    failed.loc[3, ["infer_ms", "infer_ci_low_ms", "infer_ci_high_ms"]] = None
    (verdict,) = check(failed)
    assert (verdict.verdict, verdict.error, verdict.baseline_ms) == ("stopped working", "no reason recorded", 10.0)
    assert verdict.previous_run_id == "run2" and verdict.infer_ms is None and verdict.noise_floor is None


def test_thin_evidence_without_an_iteration_count_is_counted_as_unknown():
    thin = history(10.0, 10.2, 9.9, 13.0)
    thin.loc[3, ["infer_ci_low_ms", "infer_ci_high_ms"]] = None
    (verdict,) = check(thin)
    assert verdict.verdict == "not enough samples (?)"
    (with_count,) = check(thin.assign(iterations=[20, 20, 20, None]))
    assert with_count.verdict == "not enough samples (?)"


def test_a_parity_change_without_a_reason_says_so():
    (verdict,) = check(history(10.0, 10.1, 10.0).assign(parity_verdict=["pass", "pass", "drift"]))
    assert (verdict.parity_change, verdict.parity_reason) == ("pass -> drift", "no reason recorded")
    failed_before = history(10.0, 10.1, 10.0).assign(parity_verdict=["pass", "fail", "drift"])
    failed_before.loc[1, "status"] = "failed"
    (against_completed,) = check(failed_before)
    assert against_completed.parity_change == "pass -> drift", "a failed result's verdict is no comparison"


def test_verdicts_come_in_the_order_of_their_configurations():
    """Whatever order the results were stored in: by machine, model, runtime, precision, batch..."""
    openvino = history(10.0, 10.1, 10.0).assign(runtime="openvino", result_id=lambda f: "ov-" + f.result_id)
    onnx = history(10.0, 10.1, 10.0).assign(
        batch=[2, 2, 2], started_at=lambda f: f.started_at + pd.Timedelta(hours=1)
    )  # fmt: skip
    onnx_b1 = onnx.assign(batch=1, result_id=lambda f: "b1-" + f.result_id)
    verdicts = check(pd.concat([openvino, onnx, onnx_b1], ignore_index=True))
    assert [(v.runtime, v.batch) for v in verdicts] == [("onnxruntime", 1), ("onnxruntime", 2), ("openvino", 1)]


def test_a_configuration_that_never_completed_has_no_baseline():
    failed = history(10.0).assign(status="failed", error="it broke", infer_ms=None)
    (verdict,) = check(failed)
    assert (verdict.verdict, verdict.baseline_ms, verdict.previous_run_id) == ("failed", None, None)
    assert not verdict.flagged and not verdict.regressed and not verdict.judged
