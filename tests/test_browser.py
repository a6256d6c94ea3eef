"""The dashboard as a person meets it: served exactly as `make run` serves it, driven in a real
headless Chromium (Debian's, installed by `make browser`). Screenshots land in test-output/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from engine import api
from tests.conftest import TEST_IMGSZ
from tests.dashboard_app import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
RUN_TIMEOUT_MS = 240_000
PAGE_TITLES = {
    "overview": "Overview",
    "run": "Run",
    "detections": "Detections",
    "history": "History",
    "machines": "Machines",
    "compare": "Compare",
    "recommend": "Recommend",
    "profiles": "Profiles",
    "share": "Share",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_db(filled_db, tmp_path_factory) -> Path:
    """A copy of the filled database, so the pages have a run to show before the browser starts its own."""
    db = tmp_path_factory.mktemp("served") / "results.duckdb"
    shutil.copyfile(filled_db, db)
    return db


@pytest.fixture(scope="module")
def server(served_db, tmp_path_factory):
    """`python -m dashboard.serve` as `make run` starts it, on a free port, its database from YOLO_BENCH_DB."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            [sys.executable, "-m", "dashboard.serve", "--server.address", "127.0.0.1", "--server.port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "YOLO_BENCH_DB": str(served_db)},
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, f"streamlit exited: {log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no health answer in 60 s: {log_path.read_text()[-3000:]}"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-5000:]


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make browser` installs Debian's chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    yield tab
    context.close()


def wait_until_idle(page: Page) -> None:
    page.wait_for_selector(IDLE, timeout=60_000)
    page.wait_for_timeout(300)  # let charts and images paint after the script ends
    page.wait_for_selector(IDLE, timeout=60_000)


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    wait_until_idle(page)


def go_to(page: Page, name: str) -> None:
    """Through the sidebar's navigation, as a person clicks."""
    page.locator("[data-testid='stSidebarNav'] a").filter(has_text=PAGE_TITLES[name]).click()
    expect(page.locator("h1").first).to_be_visible()
    wait_until_idle(page)


def no_error_on(page: Page) -> None:
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    expect(page.locator("[data-testid='stAlertContentError']")).to_have_count(0)


def screenshot(page: Page, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its main area, so the window grows to fit it first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(height, 6000))})
    page.wait_for_timeout(400)
    target = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(target))
    page.set_viewport_size({"width": 1400, "height": 1000})
    return target


def loaded_images(page: Page) -> int:
    return page.evaluate(
        "[...document.querySelectorAll(\"[data-testid='stImage'] img\")]"
        ".filter(image => image.complete && image.naturalWidth > 0).length"
    )


def fill_number(page: Page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_until_idle(page)


def start_small_run(page: Page, iterations: int) -> None:
    """On the Run page: ONNX Runtime alone, small images, then Start."""
    for info in api.runtimes():
        if info.available and info.name in ("openvino",):
            page.locator("[data-testid='stCheckbox']").filter(has_text=info.name).locator("label").click()
            wait_until_idle(page)
    fill_number(page, "Image size (px)", TEST_IMGSZ)
    fill_number(page, "Warm-up iterations", 1)
    fill_number(page, "Measured iterations", iterations)
    page.get_by_role("button", name="Start run").click()
    expect(page.get_by_text("Job ", exact=False).first).to_be_visible(timeout=30_000)


def test_a_run_started_in_the_browser_finishes_and_shows_detections_and_history(page, server):
    open_app(page, server + "run")
    start_small_run(page, iterations=3)
    expect(page.get_by_text("finished: completed")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    wait_until_idle(page)
    assert "job=" in page.url, "the job is in the URL, so a reload finds it"
    page.reload()
    wait_until_idle(page)
    expect(page.get_by_text("finished: completed")).to_be_visible()
    no_error_on(page)
    screenshot(page, "run-finished")

    page.get_by_role("link", name="See its detections").click()
    wait_until_idle(page)
    expect(page.locator("[data-testid='stImage'] img").first).to_be_visible()
    assert loaded_images(page) >= 1, "the new run's annotated image is shown"
    run_id = page.url.split("run=")[1]
    expect(page.get_by_role("combobox", name="Run")).to_have_value(re.compile(run_id))
    screenshot(page, "run-detections")

    go_to(page, "history")
    expect(page.locator(".js-plotly-plot .scatterlayer .trace").first).to_be_visible()
    no_error_on(page)
    screenshot(page, "run-in-history")


def test_every_page_opens_and_shows_its_content(page, server):
    open_app(page, server)
    expected = {
        "overview": ".js-plotly-plot",
        "run": "[data-testid='stButton'] button:has-text('Start run')",
        "detections": "[data-testid='stImage'] img",
        "history": ".js-plotly-plot",
        "machines": "[data-testid='stMetric']",
        "compare": "h1:has-text('Compare two runs')",
        "recommend": "[data-testid='stAlertContentSuccess'], [data-testid='stAlertContentWarning']",
        "profiles": "[data-testid='stAlertContentInfo']:has-text('This run took no profiles')",
        "share": "[data-testid='stDownloadButton']",
    }
    for name, content in expected.items():
        if name != "overview":
            go_to(page, name)
        expect(page.locator(content).first).to_be_visible()
        no_error_on(page)
        if name == "detections":
            assert loaded_images(page) >= 1, "the annotated images are decoded by the browser"
        screenshot(page, name)


def test_the_overview_headline_is_not_cut_in_a_laptop_window(page, server):
    """Five fixed columns cut 'onnxruntime:fp32' and '7.26 ms' to '…' between 1000 and 1280 px."""
    cut = (
        "[...document.querySelectorAll(\"[data-testid='stMetricValue'] div\")]"
        ".filter(value => value.scrollWidth > value.clientWidth).map(value => value.textContent)"
    )
    for width in (1000, 1100, 1280, 1400):
        page.set_viewport_size({"width": width, "height": 900})
        open_app(page, server)
        expect(page.locator("[data-testid='stMetricValue']").first).to_be_visible()
        assert page.evaluate(cut) == [], f"metric values cut at {width} px"
    screenshot(page, "overview-headline")


def test_cancel_in_the_browser_stops_the_run(page, server):
    open_app(page, server + "run")
    start_small_run(page, iterations=100_000)
    expect(page.get_by_text("of 100000 measured iterations")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_text("was cancelled")).to_be_visible(timeout=60_000)
    wait_until_idle(page)
    no_error_on(page)
    screenshot(page, "run-cancelled")


def test_the_shared_report_opens_offline_with_its_charts_and_images(page, server, served_db, filled_run, tmp_path):
    run_id = filled_run["run_id"]
    open_app(page, server + f"share?run={run_id}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the HTML report").click()
    report = tmp_path / "report.html"
    download.value.save_as(report)

    requested = []
    page.route(
        "**/*",
        lambda route: (
            requested.append(route.request.url),
            route.continue_() if route.request.url.startswith("file:") else route.abort(),
        ),
    )
    page.goto(report.as_uri())
    expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=30_000)
    assert [url for url in requested if not url.startswith(("file:", "data:"))] == [], "it needs no network"
    images = page.evaluate("[...document.images].filter(image => image.complete && image.naturalWidth > 0).length")
    expect(page.locator("h1")).to_have_text(f"YOLO runtime benchmark: run {run_id}")
    annotated = api.result_images(str(served_db), run_id)["annotated_path"].notna().sum()
    assert images == annotated > 0, "every annotated image is inside the file"
    expect(page.get_by_text("untrained weights").first).to_be_visible()
    expect(page.locator(".gtitle", has_text="Every measured iteration")).to_be_visible()
    assert page.locator(".boxlayer .trace").count() == len(api.results_summary(str(served_db), {"run_id": run_id}))
    page.set_viewport_size({"width": 1400, "height": 2400})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "share-report.png"))


def draw(page: Page, figure, width: int, folder: Path, marks: str = ".scatterlayer .point") -> None:
    """A dashboard figure drawn by Plotly in Chromium, as wide as the page would make it."""
    html = folder / "figure.html"
    figure.update_layout(width=width).write_html(html, include_plotlyjs=True, full_html=True)
    page.goto(html.as_uri())
    expect(page.locator(".main-svg").first).to_be_visible(timeout=30_000)
    expect(page.locator(marks).first).to_be_visible(timeout=30_000)


def boxes_of(page: Page, selector: str) -> list[list[float]]:
    return page.evaluate(
        """selector => [...document.querySelectorAll(selector)].map(e => {
        const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })""",
        selector,
    )


def crossing(a, b, slack=1.0) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > slack and min(a[3], b[3]) - max(a[1], b[1]) > slack


AGREEMENT_CASES = {
    # the lean results of one run of every CPU runtime here (11-29): equal output differences side by side
    "raw difference": dict(
        runtime=[
            "openvino",
            "openvino",
            "tflite",
            "tflite",
            "onnxruntime",
            "tensorflow",
            "openvino",
            "torchscript",
            "pytorch",
        ],
        precision=["int8", "bf16", "int8", "fp32", "fp32", "fp32", "fp32", "fp32", "fp32"],
        total_ms=[9.19, 13.48, 14.23, 25.30, 27.32, 30.58, 23.00, 28.20, 31.21],
        parity_raw_mean_abs=[4.8e-7, 4.8e-7, 8.7e-8, 9.6e-8, 5.3e-8, 3.2e-8, 3.5e-9, 0.0, 0.0],
    ),
    # trained weights: every runtime finds the reference's boxes, so every point sits on one line at 1.0
    "boxes agreeing": dict(
        runtime=["openvino", "openvino", "onnxruntime", "tflite", "openvino", "pytorch", "torchscript"],
        precision=["int8", "bf16", "fp32", "int8", "fp32", "fp32", "fp32"],
        total_ms=[9.2, 10.1, 12.3, 13.0, 14.1, 28.2, 29.0],
        parity_matched=[12, 12, 12, 12, 12, 12, 12],
        parity_missed=0,
        parity_extra=0,
    ),
}


@pytest.mark.parametrize("case", AGREEMENT_CASES)
@pytest.mark.parametrize("width", [520, 900])  # the Overview's chart at a 1000 px and a 1400 px window
def test_speed_against_agreement_labels_cover_no_label_and_no_point(page, tmp_path, case, width):
    """Labels of points at the same agreement printed over one another ("openvino:int8 · lean · b1openvino:bf16",
    seen in a screenshot). Drawn by Plotly in Chromium, no label box may cross another or a marker."""
    from dashboard import charts

    rows = pd.DataFrame(
        {
            "status": "completed",
            "batch": 1,
            "imgsz": 640,
            "threads": 2,
            "mode": "lean",
            "parity_verdict": "pass",
            **AGREEMENT_CASES[case],
        }
    )
    draw(page, charts.speed_vs_agreement(rows), width, tmp_path)
    names = {f"{runtime}:{precision}" for runtime, precision in zip(rows["runtime"], rows["precision"])}
    if case == "boxes agreeing":  # no room for seven labels on one line: a colour and a legend entry each
        assert page.locator(".scatterlayer .textpoint text").count() == 0
        legend = page.evaluate("[...document.querySelectorAll('.legend .traces .legendtext')].map(t => t.textContent)")
        assert {entry.split(",")[0] for entry in legend} == names, legend
        return
    labels = page.evaluate("""[...document.querySelectorAll('.scatterlayer .textpoint text')].map(t => {
        const b = t.getBoundingClientRect(); return [t.textContent, b.left, b.top, b.right, b.bottom]; })""")
    markers = boxes_of(page, ".scatterlayer .point")
    plot = boxes_of(page, ".nsewdrag")[0]
    assert len(labels) == len(rows) == len(markers)
    assert {text for text, *_ in labels} == names, "what every point shares (lean, batch 1) is noise"

    for index, (text, *box) in enumerate(labels):
        for other_text, *other in labels[index + 1 :]:
            assert not crossing(box, other), f"{text!r} covers {other_text!r} at {width} px"
        assert not any(crossing(box, marker) for marker in markers), f"{text!r} covers a point at {width} px"
        assert plot[0] - 1 <= box[0] and box[2] <= plot[2] + 1, f"{text!r} runs out of the plot at {width} px"


@pytest.mark.parametrize("width", [540, 900])  # the Overview's chart at a 1000 px and a 1400 px window
def test_every_total_label_of_the_stage_bars_stays_inside_the_plot(page, tmp_path, width):
    """A sweep of both modes (18 bars, 10 to 79 ms): the slowest bars' labels ran off the chart at a 1000 px
    window ("total 79.0 ms · 1", screenshot)."""
    from dashboard import charts

    totals = [
        10.2,
        12.4,
        13.5,
        14.2,
        15.5,
        24.1,
        24.3,
        26.2,
        26.4,
        28.5,
        28.9,
        29.6,
        31.5,
        33.5,
        35.8,
        48.4,
        71.4,
        79.0,
    ]
    variants = [
        (runtime, precision, mode)
        for runtime, precision in [
            ("openvino", "int8"),
            ("tflite", "int8"),
            ("openvino", "bf16"),
            ("openvino", "fp32"),
            ("tflite", "fp32"),
            ("onnxruntime", "fp32"),
            ("torchscript", "fp32"),
            ("pytorch", "fp32"),
            ("tensorflow", "fp32"),
        ]
        for mode in ("lean", "ultralytics")
    ]
    rows = pd.DataFrame(
        [
            {
                "status": "completed",
                "runtime": runtime,
                "precision": precision,
                "mode": mode,
                "batch": 1,
                "imgsz": 640,
                "threads": 2,
                "run_id": "run",
                "pre_ms": 0.4,
                "infer_ms": total - 0.6,
                "post_ms": 0.2,
                "total_ms": total,
                "throughput_ips": 1000 / total,
            }
            for (runtime, precision, mode), total in zip(variants, totals)
        ]
    )
    draw(page, charts.stage_bars(rows), width, tmp_path, marks=".textpoint text")
    plot = boxes_of(page, ".nsewdrag")[0]
    labels = boxes_of(page, ".textpoint text")
    assert len(labels) == len(rows)
    for label in labels:
        assert plot[0] - 1 <= label[0] and label[2] <= plot[2] + 1, f"a total's label leaves the plot at {width} px"


@pytest.mark.parametrize("width", [520, 900])
def test_a_legend_covers_neither_the_chart_title_nor_the_plot(page, tmp_path, width):
    """Four points with long names and no room for their labels (a detecting model's run in both modes, 11-29):
    the legend took two rows and its title on top of the plot and ran over the chart's title (screenshot)."""
    from dashboard import charts

    rows = pd.DataFrame(
        {
            "status": "completed",
            "batch": 1,
            "imgsz": 160,
            "threads": 2,
            "runtime": ["onnxruntime", "onnxruntime", "openvino", "openvino"],
            "precision": ["fp32", "fp32", "int8", "int8"],
            "mode": ["lean", "ultralytics"] * 2,
            "total_ms": [2.16, 2.69, 1.36, 2.30],
            "parity_verdict": ["pass", "pass", "fail", "fail"],
            "parity_matched": [42, 42, 9, 9],
            "parity_missed": [0, 0, 33, 33],
            "parity_extra": [0, 0, 45, 45],
        }
    )
    draw(page, charts.speed_vs_agreement(rows), width, tmp_path)
    assert page.locator(".legend .traces").count() == 4, "the points are named by a legend here"
    legend = boxes_of(page, ".legend")[0]
    title = boxes_of(page, ".gtitle")[0]
    assert not crossing(legend, title), f"the legend covers the chart's title at {width} px"
    assert not crossing(legend, boxes_of(page, ".nsewdrag")[0]), f"the legend covers the plot at {width} px"


@pytest.mark.parametrize("width", [600, 1000])
@pytest.mark.parametrize("chart", ["batch size", "over time"])
def test_a_legend_below_the_plot_covers_neither_axis_titles_nor_plot(page, tmp_path, chart, width):
    """Eighteen configurations (a sweep in both modes): the legend's first row covered the "batch size" axis
    titles on History (screenshot), when it was placed at a fraction of the plot's height below it."""
    from dashboard import charts

    names = [
        (runtime, precision, mode)
        for runtime, precision in [
            ("onnxruntime", "fp32"),
            ("openvino", "fp32"),
            ("openvino", "bf16"),
            ("openvino", "int8"),
            ("pytorch", "fp32"),
            ("torchscript", "fp32"),
            ("tensorflow", "fp32"),
            ("tflite", "fp32"),
            ("tflite", "int8"),
        ]
        for mode in ("lean", "ultralytics")
    ]
    rows = pd.DataFrame(
        [
            {
                "status": "completed",
                "runtime": runtime,
                "precision": precision,
                "mode": mode,
                "batch": batch,
                "imgsz": 640,
                "threads": 2,
                "machine_label": "vm",
                "run_id": f"run{day}",
                "started_at": pd.Timestamp("2026-11-20", tz="UTC") + pd.Timedelta(days=day),
                "total_ms": 10.0 + index + batch,
                "infer_ms": 9.0 + index,
                "throughput_ips": 100.0 - index,
            }
            for index, (runtime, precision, mode) in enumerate(names)
            for batch in (1, 4)
            for day in (0, 1)
        ]
    )
    figure = (
        charts.batch_scaling(rows)
        if chart == "batch size"
        else charts.history_lines(rows, "infer_ms", ["runtime", "precision", "mode"])
    )
    draw(page, figure, width, tmp_path)
    legend = boxes_of(page, ".legend")[0]
    titles = boxes_of(page, ".g-xtitle text, .g-x2title text")
    plots = boxes_of(page, ".nsewdrag")
    assert titles and plots
    assert not any(crossing(legend, title) for title in titles), f"the legend covers an axis title at {width} px"
    assert not any(crossing(legend, plot) for plot in plots), f"the legend covers a plot at {width} px"
    assert len(page.locator(".legend .traces").all()) == len(names)


def test_a_ratio_near_one_is_not_printed_over_the_line_at_one(page, tmp_path):
    """Compare printed "0.98x" at its bar's end, right on the dashed line at 1 (screenshot)."""
    from dashboard import charts

    compared = pd.DataFrame(
        {
            "label": ["onnxruntime:fp32 · b4", "openvino:int8 · b1", "tflite:int8 · b1"],
            "infer_ms_ratio": [0.98, 1.17, 0.45],
        }
    )
    draw(page, charts.ratio_bars(compared, "infer_ms"), 700, tmp_path, marks=".bars .point")
    line = boxes_of(page, ".shapelayer path")[0]
    labels = page.evaluate("""[...document.querySelectorAll('.annotation-text, .bartext')].map(t => {
        const b = t.getBoundingClientRect(); return [t.textContent, b.left, b.top, b.right, b.bottom]; })""")
    assert sorted(text for text, *_ in labels) == ["0.45x", "0.98x", "1.17x"]
    for text, *box in labels:
        assert box[0] >= line[2] - 1 or box[2] <= line[0] + 1, f"{text} lies on the line at 1"
