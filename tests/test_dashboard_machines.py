"""Comparing machines: History normalised by a reference machine and runtime; the fastest machine for a model."""

import sys

import pytest

from tests.conftest import ROOT
from tests.dashboard_app import figures, open_page, text_of, values_of

sys.path.insert(0, str(ROOT / "benchmarks"))
from history_scale import generate  # noqa: E402  (the benchmark's generator: a history from 3 machines)


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("fleet") / "results.duckdb"
    generate(db, runs=40, machines=3)
    return db


def test_history_normalises_machines_by_a_reference(fleet_db):
    app = open_page(fleet_db, "history")
    assert not app.exception
    app.selectbox(key="reference_machine").set_value("machine-1").run()
    reference_variant = app.selectbox(key="reference_variant").value
    normalised = [f for f in figures(app) if f.layout.title.text and "relative to machine-1" in f.layout.title.text]
    assert normalised, "the normalised chart is drawn"
    trace = next(t for t in normalised[0].data if t.name == "machine-1")
    ratios = dict(zip(trace.x, values_of(trace.y)))
    assert ratios[reference_variant] == pytest.approx(1.0)


def test_machines_page_names_the_fastest_machine_and_runtime_with_evidence(fleet_db):
    from engine import api

    app = open_page(fleet_db, "machines")
    assert not app.exception
    summary = api.results_summary(str(fleet_db))
    best = summary[summary["model"] == app.selectbox(key="fastest_model").value].sort_values("total_ms").iloc[0]
    text = text_of(app.markdown)
    assert f"**{best['machine_label']}** with **{best['runtime']}:{best['precision']}**" in text
    assert f"{best['total_ms']:.2f} ms" in text and best["run_id"] in text
