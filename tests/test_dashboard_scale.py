"""A fleet's history (10,000 runs on 20 machines, benchmarks/history_scale.py's generator): the pages open on one
question at a time, read only what they draw, and keep every way to the rest."""

import sys
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import pytest

from dashboard import charts
from dashboard.history_scope import MAX_LINES, MAX_POINTS, PAGE_ROWS
from engine import api, store
from tests.conftest import ROOT
from tests.dashboard_app import figures, open_page, text_of, values_of

sys.path.insert(0, str(ROOT / "benchmarks"))
from history_scale import generate  # noqa: E402

RUNS, MACHINES = 10_000, 20


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    db = tmp_path_factory.mktemp("fleet") / "results.duckdb"
    generate(db, runs=RUNS, machines=MACHINES)
    return str(db)


def lines_of(figure) -> list[str]:
    """The series a reader tells apart: the legend's entries, the library-upgrade marks aside."""
    return [
        trace.name
        for trace in figure.data
        if trace.showlegend is not False and trace.name != "library versions changed"
    ]


def test_history_opens_on_the_newest_machine_and_model_in_a_readable_chart(fleet):
    app = open_page(fleet, "history")
    assert not app.exception
    newest = api.runs(fleet).iloc[0]
    assert app.selectbox(key="history_machine").value == newest["machine_id"]
    assert app.selectbox(key="history_model").value == newest["model"]
    over_time = figures(app)[0]
    assert 0 < len(lines_of(over_time)) <= MAX_LINES, lines_of(over_time)
    assert {trace.name for trace in over_time.data if trace.name == "library versions changed"}, "upgrades marked"
    assert len(app.dataframe[0].value) == PAGE_ROWS, "the table ships a page, not 40,000 rows"
    assert f"{RUNS * 4} results, newest first" in [header.value for header in app.subheader]


def test_every_machine_gets_a_panel_of_its_own(fleet):
    app = open_page(fleet, "history")
    app.selectbox(key="history_machine").set_value("every").run()
    assert not app.exception
    figure = figures(app)[0]
    panels = {annotation.text for annotation in figure.layout.annotations}
    assert len(panels) == 12 and panels <= {f"machine-{i}" for i in range(MACHINES)}
    assert "The 12 machines that ran last, of 20" in text_of(app.caption)
    for panel in {trace.yaxis for trace in figure.data}:
        shown = {trace.name for trace in figure.data if trace.yaxis == panel and trace.showlegend is not False}
        assert len(shown - {"library versions changed"}) <= MAX_LINES


def test_long_lines_are_reduced_in_the_database_and_the_chart_says_so(fleet):
    """A machine's 167 runs of a model are more points than a chart's width: two runs share each point, their
    median with a band from their lowest to their highest."""
    app = open_page(fleet, "history")
    assert "Each point stands for up to 2 consecutive runs" in text_of(app.caption)
    scope = {
        "machine_id": [app.selectbox(key="history_machine").value],
        "model": [app.selectbox(key="history_model").value],
    }
    points = store.history_points(fleet, scope, "infer_ms", ["runtime", "precision", "batch"], MAX_POINTS)
    every = api.results_summary(fleet, scope)
    for (runtime, _, _), line in points.groupby(["runtime", "precision", "batch"]):
        assert len(line) <= MAX_POINTS and line["runs"].max() == 2
        runs = every[every["runtime"] == runtime].sort_values(["started_at", "run_id"])
        assert line["runs"].sum() == len(runs) > MAX_POINTS, "every run is in exactly one point"
        first_two = runs["infer_ms"].iloc[:2]
        assert line["value"].iloc[0] == pytest.approx(first_two.median())
        assert (line["low"].iloc[0], line["high"].iloc[0]) == pytest.approx((first_two.min(), first_two.max()))
    drawn = figures(app)[0]
    bands = [trace for trace in drawn.data if trace.fill == "toself"]
    assert len(bands) == len(lines_of(drawn)), "each line has its band"


def test_few_runs_are_drawn_one_point_each():
    frame = pd.DataFrame(
        {
            "status": "completed",
            "run_id": ["a", "b", "c"],
            "runtime": "onnxruntime",
            "infer_ms": [1.0, 2.0, 3.0],
            "started_at": pd.date_range("2026-11-01", periods=3, freq="D", tz="UTC"),
        }
    )
    figure = charts.history_lines(frame, "infer_ms", ["runtime"])
    assert values_of(figure.data[0].y) == [1.0, 2.0, 3.0] and not [t for t in figure.data if t.fill == "toself"]


def test_the_url_carries_the_history_choice(fleet):
    """A link to History opens on the machine, model and metric it names, and a pick goes into the URL (in Chromium:
    AppTest does not read a bound widget's value from the URL)."""
    from playwright.sync_api import expect, sync_playwright

    from benchmarks.dashboard_scale import CHROMIUM, Server
    from tests.test_browser import CHROMIUM_ARGS, wait_until_idle

    server = Server(Path(fleet))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            chosen = {
                "history_machine": "machine-3",
                "history_model": "yolov8s",
                "history_metric": charts.METRICS["total_ms"],
            }
            page.goto(server.url + "history?" + urlencode(chosen))  # a bound widget's URL value: what it shows
            wait_until_idle(page)
            expect(page.get_by_role("combobox", name="Machine", exact=True)).to_have_value("machine-3")
            title = f"{charts.METRICS['total_ms']} over time"
            expect(page.locator(".js-plotly-plot .gtitle").filter(has_text=title)).to_have_count(1)
            page.get_by_role("combobox", name="Model", exact=True).click()
            page.get_by_role("option", name="yolov8s").click()
            wait_until_idle(page)
            assert "history_model=yolov8s" in page.url and "history_machine=machine-3" in page.url, page.url
            browser.close()
    finally:
        server.stop()


def test_the_history_table_pages_through_its_rows(fleet):
    app = open_page(fleet, "history")
    first = app.dataframe[0].value
    app.number_input(key="history_table_page").set_value(2).run()
    second = app.dataframe[0].value
    assert len(second) == PAGE_ROWS and not set(first["result_id"]) & set(second["result_id"])
    newest_first = api.results_summary(fleet).sort_values("started_at", ascending=False, kind="stable")
    assert set(second["result_id"]) == set(newest_first["result_id"].iloc[PAGE_ROWS : 2 * PAGE_ROWS])


def test_the_overview_shows_a_few_machines_and_a_picker_for_the_rest(fleet):
    app = open_page(fleet)
    assert not app.exception
    cards = [header.value for header in app.subheader if "computer" in header.value]
    assert cards == [f":material/computer: machine-{i}" for i in (19, 18, 17)], "those that ran last first"
    app.multiselect(key="overview_machines").set_value(["m0"]).run()
    assert [header.value for header in app.subheader if "computer" in header.value] == [":material/computer: machine-0"]


def test_run_pickers_offer_the_newest_runs_and_a_linked_older_one(fleet):
    app = open_page(fleet, "detections", query_params={"run": "run7"})
    picker = app.selectbox(key="run_picker")
    assert len(picker.options) == 501 and picker.value == "run7", "the 500 newest, and the link's old run"
    assert "The newest 501 of 10000 runs" in text_of(app.caption)


def test_the_fastest_machine_is_picked_from_the_same_rows_as_from_every_result(fleet, tmp_path):
    """The Machines page reads only the rows the pick can come from; the pick must be the one all rows give,
    parity failures included."""
    import shutil

    import duckdb

    db = tmp_path / "results.duckdb"
    shutil.copyfile(fleet, db)
    with duckdb.connect(str(db)) as con:  # the two fastest results of half the machines failed parity
        con.execute(
            """INSERT INTO parity (result_id, verdict, reason)
               SELECT result_id, 'fail', 'lost boxes' FROM results_summary WHERE machine_id IN ('m0', 'm2', 'm4')
               QUALIFY row_number() OVER (PARTITION BY machine_id, model ORDER BY total_ms) <= 2"""
        )
    for model in ("yolov8n", "yolov8s"):
        every = api.results_summary(str(db), {"model": [model]})
        candidates = store.fastest_candidates(str(db), {"model": [model]})
        assert len(candidates) < len(every) / 10
        best_every, passed_every = charts.fastest_per_machine(every)
        best, passed = charts.fastest_per_machine(candidates)
        assert best["result_id"].tolist() == best_every["result_id"].tolist()
        assert sorted(passed["result_id"]) == sorted(passed_every["result_id"]) and len(passed)
