"""Recommend: the pick under a budget, the Pareto front, a tie within noise, why each other configuration is out, and
"nothing fits", from a planted history whose answers are known; the CLI and the engine's API agree."""

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from engine import api, store
from engine.config import BenchError
from engine.recommend import Budget
from tests.conftest import ROOT
from tests.rows import plant_run

DAY = pd.Timestamp("2026-11-01", tz="UTC")
BUDGET = Budget(max_p99_ms=30, parity="pass", max_memory_mb=500)


def config(runtime, precision, total, p99, verdict, memory, batch=1, **more) -> dict:
    return {"runtime": runtime, "precision": precision, "batch": batch, "total_ms": total, "total_p99_ms": p99,
            "verdict": verdict, "peak_memory_mb": memory, "model_mb": 12.0, **more}  # fmt: skip


@pytest.fixture
def planted(tmp_path):
    """Model a on machine 'lab': eight configurations whose fate under BUDGET is known; an older run of openvino
    fp32 that the newer one supersedes; model b, newer, on machine 'ci'."""
    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    plant_run(db, "old", DAY, [config("openvino", "fp32", 2.0, 2.5, "pass", 100)], machine_label="lab", model="a")
    plant_run(db, "lab", DAY + pd.Timedelta(days=1), [
        config("openvino", "fp32", 6.0, 8.0, "pass", 400, total_ci=(5.5, 6.5)),  # the pick
        config("onnxruntime", "fp32", 10.0, 12.0, "pass", 450, total_ci=(9.0, 11.0)),  # fits; beaten on all four
        config("tensorflow", "fp32", 20.0, 25.0, "pass", 500),  # fits, at the memory limit; beaten
        config("openvino", "int8", 4.0, 5.0, "drift", 350),  # out: parity
        config("tflite", "fp32", 5.0, 40.0, "pass", 200),  # out: p99
        config("pytorch", "fp32", 5.5, 7.0, "pass", 900),  # out: memory
        config("onnxruntime", "fp32", 3.0, 3.5, "pass", 600, batch=4),  # out: memory; p99 per call 14 ms
        config("pytorch-cuda", "fp16", 1.0, 1.5, "pass", None, device="gpu"),  # out: CPU only
    ], machine_label="lab", model="a")  # fmt: skip
    plant_run(db, "ci", DAY + pd.Timedelta(days=2), [
        config("openvino", "fp32", 6.0, 7.0, "pass", 300, total_ci=(5.8, 6.3)),
        config("onnxruntime", "fp32", 6.2, 7.5, "pass", 300, total_ci=(6.1, 6.9)),
    ], "m2", machine_label="ci", model="b")  # fmt: skip
    return str(db)


def names(candidates) -> list[str]:
    return [f"{c.runtime}:{c.precision}:b{c.batch}" for c in candidates]


def test_the_pick_is_the_fastest_that_meets_the_budget(planted):
    recommendation, model = api.recommend(planted, BUDGET, "lab", "a")
    assert model == "a"
    assert recommendation.pick.runtime == "openvino" and recommendation.pick.run_id == "lab", "the latest result"
    assert recommendation.pick.p99_ms == 8.0 and recommendation.pick.images_per_s == pytest.approx(1000 / 6)
    assert names([recommendation.runner_up]) == ["onnxruntime:fp32:b1"]
    assert not recommendation.tie_within_noise and "tie" not in recommendation.reason
    assert recommendation.reason.startswith("openvino:fp32 batch 1 on lab: the fastest of the 3 configuration(s)")
    assert "95% interval 5.50-6.50 ms" in recommendation.reason
    assert recommendation.evidence == "8 configuration(s), each its latest result, from runs of 2026-11-02; " + (
        "8 of 8 judged stable"
    )


def test_each_rejected_configuration_names_what_it_broke(planted):
    recommendation, _ = api.recommend(planted, BUDGET, "lab", "a")
    broke = {
        f"{r.candidate.runtime}:{r.candidate.precision}:b{r.candidate.batch}": r.broke for r in recommendation.rejected
    }
    assert broke == {
        "openvino:int8:b1": ("parity drift, pass asked",),
        "tflite:fp32:b1": ("p99 per call 40.0 ms > 30.0 ms",),
        "pytorch:fp32:b1": ("peak memory 900 MB > 500 MB",),
        "onnxruntime:fp32:b4": ("peak memory 600 MB > 500 MB",),
        "pytorch-cuda:fp16:b1": ("runs on the GPU; CPU only asked", "peak memory not measured"),
    }


def test_the_front_holds_what_no_other_configuration_beats(planted):
    recommendation, _ = api.recommend(planted, BUDGET, "lab", "a")
    front = names(recommendation.front)
    assert "onnxruntime:fp32:b1" not in front, "openvino fp32 is faster, lower in p99, as good in parity, leaner"
    assert "tensorflow:fp32:b1" not in front
    assert set(front) == {
        "pytorch-cuda:fp16:b1", "onnxruntime:fp32:b4", "openvino:int8:b1", "tflite:fp32:b1", "pytorch:fp32:b1",
        "openvino:fp32:b1",
    }  # fmt: skip
    assert front[0] == "pytorch-cuda:fp16:b1", "fastest first"


def test_a_pick_whose_interval_overlaps_the_runner_up_is_a_tie_within_noise(planted):
    recommendation, model = api.recommend(planted, Budget(), None, None)
    assert model == "b", "the newest run's model"
    assert recommendation.pick.runtime == "openvino" and recommendation.tie_within_noise
    assert "a tie within noise with onnxruntime:fp32 batch 1 on ci (6.20 ms, 95% interval 6.10-6.90 ms)" in (
        recommendation.reason
    )


def test_nothing_fits_names_the_closest_and_how_far_it_misses(planted):
    recommendation, _ = api.recommend(planted, Budget(max_p99_ms=4.0, max_memory_mb=500), "lab", "a")
    assert recommendation.pick is None and recommendation.runner_up is None
    closest = recommendation.closest
    assert (closest.candidate.runtime, closest.candidate.precision, closest.rules) == ("openvino", "fp32", 0)
    assert closest.miss == pytest.approx(1.0)  # p99 8 ms against 4
    assert recommendation.reason == (
        "nothing meets this budget; closest: openvino:fp32 batch 1 on lab, which misses by p99 per call 8.0 ms > 4.0 ms"
    )


def test_drift_precisions_throughput_in_flight_and_gpu_widen_or_narrow_the_choice(planted, tmp_path):
    int8, _ = api.recommend(planted, Budget(parity="drift", precisions=("int8",)), "lab", "a")
    assert names([int8.pick]) == ["openvino:int8:b1"]
    assert "precision fp32 not allowed" in int8.rejected[0].broke
    gpu, _ = api.recommend(planted, Budget(gpu=True), "lab", "a")
    assert names([gpu.pick]) == ["pytorch-cuda:fp16:b1"]
    fast, _ = api.recommend(planted, Budget(min_images_per_s=200, max_memory_mb=1000), "lab", "a")
    assert names([fast.pick]) == ["onnxruntime:fp32:b4"]
    out = {names([r.candidate])[0]: r.broke for r in fast.rejected}
    assert out["openvino:fp32:b1"] == ("166.7 img/s < 200.0 img/s",)
    assert store.recommend_candidates(planted, {"model": ["a"]})["runtime"].tolist()[0] == "pytorch-cuda"
    with pytest.raises(BenchError, match="no machine named 'nowhere'"):
        api.recommend(planted, BUDGET, "nowhere", None)


@pytest.mark.parametrize(
    "budget, message",
    [
        ({"parity": "perfect"}, "parity must be one of pass, drift, any, not 'perfect'"),
        ({"max_p99_ms": -5.0}, "a p99 per call limit of -5.0 is out of range: give a positive number, or none"),
        ({"min_images_per_s": 0.0}, "a images/s limit of 0.0 is out of range"),
        ({"max_memory_mb": float("nan")}, "a peak memory limit of nan is out of range"),
        ({"precisions": ("fp33",)}, "unknown precision 'fp33', did you mean 'fp32'?"),
    ],
)
def test_a_budget_refuses_what_cannot_be_met_by_anything(budget, message):
    with pytest.raises(BenchError, match=re.escape(message)):
        Budget(**budget)


def test_the_cli_says_what_is_wrong_in_one_line(planted):
    done = subprocess.run(
        [sys.executable, "-m", "engine", "recommend", "--db", planted, "--max-p99-ms", "-1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: a p99 per call limit of -1.0 is out of range: give a positive number, or none"
    ]
    empty = subprocess.run(
        [sys.executable, "-m", "engine", "recommend", "--db", planted.replace("results", "missing")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert empty.returncode == 2 and "does not exist" in empty.stderr


def test_the_cli_gives_the_apis_answer(planted):
    command = [sys.executable, "-m", "engine", "recommend", "--db", planted, "--machine", "lab", "--model", "a",
               "--max-p99-ms", "30", "--max-memory-mb", "500"]  # fmt: skip
    done = subprocess.run([*command, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    recommendation, _ = api.recommend(planted, BUDGET, "lab", "a")
    assert document["pick"]["result_id"] == recommendation.pick.result_id
    assert document["reason"] == recommendation.reason and document["model"] == "a"
    assert len(document["front"]) == 6 and len(document["rejected"]) == 5
    text = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert text.returncode == 0 and f"pick: {recommendation.reason}" in text.stdout
    assert "out: tflite:fp32 batch 1 on lab: p99 per call 40.0 ms > 30.0 ms" in text.stdout
    nothing = subprocess.run([*command[:-4], "--max-p99-ms", "1"], cwd=ROOT, capture_output=True, text=True)
    assert nothing.returncode == 1 and "nothing meets this budget" in nothing.stdout


def test_the_page_gives_the_clis_answer(planted):
    from tests.dashboard_app import figures, open_page, text_of

    app = open_page(planted, "recommend")
    assert not app.exception
    assert app.selectbox(key="recommend_machine").value == "m2", "the machine that ran last"
    app.selectbox(key="recommend_machine").set_value("m1").run()
    app.selectbox(key="recommend_model").set_value("a").run()
    app.slider(key="recommend_p99").set_value(30.0).run()
    app.slider(key="recommend_memory").set_value(500.0).run()
    assert not app.exception
    recommendation, _ = api.recommend(planted, BUDGET, "lab", "a")
    assert text_of(app.success) == f"**Ship** {recommendation.reason}"
    front, out = app.dataframe[0].value, app.dataframe[1].value
    assert len(front) == 6 and len(out) == 5
    assert "tflite:fp32 batch 1 on lab" in out["configuration"].tolist()
    (pick,) = [trace for trace in figures(app)[0].data if trace.name == "the pick"]
    assert list(pick.x) == [8.0]
    app.slider(key="recommend_p99").set_value(4.0).run()
    assert text_of(app.warning).startswith("Nothing meets this budget; closest: openvino:fp32 batch 1 on lab")


def test_the_page_reads_its_question_from_the_url(planted):
    """A shared link asks the same question (in Chromium: AppTest does not read a bound widget from the URL)."""
    from urllib.parse import urlencode

    from playwright.sync_api import expect, sync_playwright

    from benchmarks.dashboard_scale import CHROMIUM, Server
    from tests.test_browser import CHROMIUM_ARGS, SCREENSHOTS, wait_until_idle

    recommendation, _ = api.recommend(planted, BUDGET, "lab", "a")
    question = {"recommend_machine": "lab", "recommend_model": "a", "recommend_p99": 30.0, "recommend_memory": 500.0}
    server = Server(ROOT / planted)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url + "recommend?" + urlencode(question))
            wait_until_idle(page)
            expect(page.locator("[data-testid='stAlertContentSuccess']")).to_contain_text(
                "the fastest of the 3 configuration(s)"
            )
            expect(page.locator(".js-plotly-plot .scatterlayer .trace").last).to_be_visible()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / "recommend.png", full_page=True)
            browser.close()
    finally:
        server.stop()
    assert recommendation.pick.runtime == "openvino"
