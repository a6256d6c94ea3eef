"""Per-layer profiles: op names charged to the model's modules, and a model with one module made heavier, profiled
by each runtime's own profiler, naming that module on every runtime; stored, bundled, printed and shown."""

import json

import pytest

from engine import api
from engine.config import RunConfig, Variant, not_measured
from engine.profiles import UNMAPPED, OpTime, charged, layout_of, module_index, module_table, rows_of
from engine.runtimes import registry
from tests.conftest import ROOT, engine, engine_run

HEAVY = ROOT / "tests" / "fixtures" / "yolov8n-heavy.yaml"
PROFILED = ("pytorch", "torchscript", "onnxruntime", "openvino")


@pytest.mark.parametrize(
    "name, module",
    [
        ("/model.12/cv1/conv/Conv", 12),  # ONNX
        ("/model.2/m.0/cv1/conv/Conv_output_0_nchwc", 2),  # ONNX Runtime's layout-changed node
        ("__module.model.22.cv3.2.1.act/aten::silu_/Swish_51", 22),  # OpenVINO from PyTorch
        ("x.1_f32_abcd_bf16_acdb___module.model.0.conv/aten::_convolution/Convolution", 0),  # its reorder
        ("model.9/aten::max_pool2d", 9),  # the PyTorch runtimes
        ("ReorderInput_token_17", None),
        ("submodel.3/Conv", None),
        ("model.22x", None),
    ],
)
def test_an_op_name_names_its_module(name, module):
    assert module_index(name) == module


def test_an_op_that_names_no_module_is_charged_to_the_node_it_prepares():
    ops = [OpTime("ReorderInput_token_1", "ReorderInput", 1.0), OpTime("/model.0/conv/Conv", "Conv", 2.0),
           OpTime("ReorderOutput_token_2", "ReorderOutput", 0.5), OpTime("/model.1/conv/Conv", "Conv", 3.0),
           OpTime("ReorderOutput_token_3", "ReorderOutput", 0.25)]  # fmt: skip
    assert charged(ops) == [0, 0, 1, 1, 1], "before a node: its; at the end: the one before"
    assert charged([OpTime("a", "x", 1.0), OpTime("b", "y", 1.0)]) == [None, None]


def test_rows_sum_per_module_and_op_type_and_keep_what_maps_nowhere():
    layout = layout_of(HEAVY)
    assert layout.types[:3] == ("Conv", "Conv", "C2f") and layout.types[-1] == "Detect"
    assert layout.stages[9] == "backbone" and layout.stages[10] == "neck" and layout.stages[22] == "head"
    assert layout.sources[11] == [-1, 6]
    ops = [OpTime("/model.2/a/Conv", "Conv", 1.0), OpTime("/model.2/b/Conv", "Conv", 2.0),
           OpTime("/model.2/Concat", "Concat", 0.5), OpTime("/model.22/Conv", "Conv", 4.0)]  # fmt: skip
    rows = rows_of(ops, layout)
    assert [(r.module, r.module_type, r.stage, r.op_type, r.ms, r.ops) for r in rows] == [
        ("model.2", "C2f", "backbone", "Concat", 0.5, 1),
        ("model.2", "C2f", "backbone", "Conv", 3.0, 2),
        ("model.22", "Detect", "head", "Conv", 4.0, 1),
    ]
    nowhere = rows_of([OpTime("mystery_op", "Gemm", 1.5), OpTime("other", "Gemm", 0.5)], layout)
    assert [(r.module, r.stage, r.ms, r.names) for r in nowhere] == [(UNMAPPED, UNMAPPED, 2.0, "mystery_op, other")]
    without_layout = rows_of([OpTime("/model.7/Conv", "Conv", 1.0)], None)
    assert (without_layout[0].module, without_layout[0].module_type) == ("model.7", "")


def test_the_plan_names_what_will_not_be_profiled():
    config = RunConfig(runtimes=["tflite", "openvino"], profile=5)
    variants = [Variant("tflite", "fp32", "lean"), Variant("openvino", "fp32", "ultralytics"),
                Variant("openvino", "fp32", "lean")]  # fmt: skip
    said = [line for line in not_measured(config, variants) if line.startswith("not profiled")]
    assert said == [
        "not profiled: tflite:fp32 (its Python API gives no per-op timing)",
        "not profiled: openvino:fp32/ultralytics (profiles are taken in the lean mode)",
    ]
    assert {name for name in PROFILED if registry.get(name).offers_profile()} == set(PROFILED)


@pytest.fixture(scope="module")
def heavy_run(tmp_path_factory):
    db = tmp_path_factory.mktemp("profiles") / "results.duckdb"
    done = engine_run(db, "--model", str(HEAVY), "--runtimes", ",".join(PROFILED), "--iters", "2", "--profile", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    return str(db), api.runs(str(db))["run_id"].iloc[0], done


def test_every_profiled_runtime_names_the_heavy_module(heavy_run):
    db, run_id, done = heavy_run
    rows = api.profiles(db, run_id)
    assert set(rows["runtime"]) == set(PROFILED)
    table = module_table(rows)
    for runtime in PROFILED:
        variant = f"{runtime}:fp32 b1"
        heaviest = table.loc[table[variant].idxmax()]
        assert (heaviest["module"], heaviest["module_type"]) == ("model.2", "C2f"), (
            runtime,
            table[["module", variant]],
        )
        mine = rows[rows["runtime"] == runtime]
        mapped = mine.loc[mine["module"] != UNMAPPED, "ms"].sum() / mine["ms"].sum()
        assert mapped >= 0.95, (runtime, mapped)
    assert "profile (onnxruntime" in done.stderr and "charged to a module" in done.stderr, "progress says so"


def test_the_cli_prints_a_runs_profiles(heavy_run):
    db, run_id, _ = heavy_run
    text = engine("profile", run_id, "--db", db)
    assert text.returncode == 0, text.stderr
    assert "model.2    C2f       backbone" in text.stdout
    assert "onnxruntime:fp32 b1 (onnxruntime " in text.stdout and "100% charged to a module" in text.stdout
    document = json.loads(engine("profile", run_id, "--db", db, "--json").stdout)
    assert {line["name"] for line in document["results"]} == {f"{name}:fp32 b1" for name in PROFILED}
    assert all(line["mapped_share"] >= 0.95 for line in document["results"])
    plain = engine_run(ROOT / db, "--runtimes", "onnxruntime", "--iters", "2")
    newest = api.runs(db)["run_id"].iloc[0]
    none = engine("profile", newest, "--db", db)
    assert plain.returncode == 0 and none.returncode == 2
    assert (
        none.stderr.strip()
        == f"error: run {newest} has no profiles: run the benchmark with --profile N (e.g. 10) to take them"
    )


def test_a_bundle_carries_the_profiles(heavy_run, tmp_path):
    db, run_id, _ = heavy_run
    bundle = api.write_bundle(db, run_id, str(tmp_path / "run.zip"))
    other = tmp_path / "other.duckdb"
    api.import_bundle(str(other), str(bundle))
    columns = ["result_id", "module", "op_type", "ms", "ops"]
    kept = api.profiles(str(other), run_id)[columns].sort_values(columns).reset_index(drop=True)
    assert kept.equals(api.profiles(db, run_id)[columns].sort_values(columns).reset_index(drop=True))
    assert len(kept) > 20


def test_the_profiles_page_shows_where_each_runtime_spends(heavy_run):
    from tests.dashboard_app import figures, open_page, text_of

    db, run_id, _ = heavy_run
    app = open_page(db, "profiles", query_params={"run": run_id})
    assert not app.exception
    summary = app.dataframe[0].value
    assert set(summary["result"]) == {f"{name}:fp32 b1" for name in PROFILED}
    assert set(summary["charged to a module"]) == {"100%"}
    stages, types = figures(app)
    assert {trace.name for trace in stages.data} == {"backbone", "neck", "head"}
    assert "C2f" in {trace.name for trace in types.data}
    modules = app.dataframe[1].value
    assert modules["module"].tolist()[:3] == ["model.0", "model.1", "model.2"]
    assert "aten::_convolution" in text_of(app.markdown) or "Convolution" in text_of(app.markdown)


def test_the_profiles_page_in_chromium(heavy_run):
    """As a person opens it: both charts drawn, the module table there (the screenshot is looked at)."""
    from playwright.sync_api import expect, sync_playwright

    from benchmarks.dashboard_scale import CHROMIUM, Server
    from tests.test_browser import CHROMIUM_ARGS, SCREENSHOTS, wait_until_idle

    db, run_id, _ = heavy_run
    server = Server(ROOT / db)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server.url}profiles?run={run_id}")
            wait_until_idle(page)
            expect(page.locator(".js-plotly-plot .gtitle").filter(has_text="Where each runtime spends")).to_have_count(
                2
            )
            expect(page.locator("[data-testid='stException']")).to_have_count(0)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / "profiles-heavy-model.png")
            browser.close()
    finally:
        server.stop()
