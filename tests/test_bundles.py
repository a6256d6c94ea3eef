"""Run bundles round-trip between databases: identical rows, idempotent, damage and conflicts refused."""

import json
import zipfile

import duckdb
import pandas as pd
import pytest

from tests.conftest import engine


def summary(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT * EXCLUDE (settings) FROM results_summary ORDER BY result_id").df()


def counts(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("machines", "runs", "results", "samples", "stats", "detections", "result_images")
        }


@pytest.fixture(scope="module")
def bundle(filled_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "run.zip"
    done = engine("bundle", "--run", filled_run["run_id"], "--db", str(filled_run["db"]), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_a_bundle_round_trips_to_identical_summary_rows(filled_run, bundle, tmp_path):
    target = tmp_path / "gathered.duckdb"
    done = engine("import", str(bundle), "--db", str(target))
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr
    pd.testing.assert_frame_equal(summary(target), summary(filled_run["db"]))
    assert counts(target) == counts(filled_run["db"])
    with duckdb.connect(str(target), read_only=True) as con:
        paths = [
            row[0]
            for row in con.execute(
                "SELECT annotated_path FROM result_images WHERE annotated_path IS NOT NULL"
            ).fetchall()
        ]
    assert paths and all(str(tmp_path / "gathered.artifacts") in p for p in paths), "images travel with the rows"


def test_importing_twice_adds_nothing(bundle, tmp_path):
    target = tmp_path / "gathered.duckdb"
    engine("import", str(bundle), "--db", str(target))
    before = counts(target)
    again = engine("import", str(bundle), "--db", str(target))
    assert again.returncode == 0 and "already present" in again.stdout
    assert counts(target) == before


def test_a_damaged_bundle_is_refused_and_writes_nothing(bundle, tmp_path):
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(damaged, "w") as copy:
        for item in source.infolist():
            data = source.read(item)
            copy.writestr(item, data[:-10] + b"0123456789" if item.filename == "tables/samples.parquet" else data)
    target = tmp_path / "gathered.duckdb"
    done = engine("import", str(damaged), "--db", str(target))
    assert done.returncode == 2 and "checksum of tables/samples.parquet does not match" in done.stderr
    assert not target.exists()


def test_a_manifest_naming_files_outside_the_bundle_is_refused(bundle, tmp_path):
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(hostile, "w") as copy:
        manifest = json.loads(source.read("manifest.json"))
        manifest["files"]["images/../../escape.txt"] = "0" * 64
        for item in source.infolist():
            if item.filename != "manifest.json":
                copy.writestr(item, source.read(item))
        copy.writestr("manifest.json", json.dumps(manifest))
    done = engine("import", str(hostile), "--db", str(tmp_path / "x.duckdb"))
    assert done.returncode == 2 and "outside tables/ and images/" in done.stderr


def test_a_conflicting_run_id_is_detected(bundle, tmp_path):
    target = tmp_path / "gathered.duckdb"
    engine("import", str(bundle), "--db", str(target))
    with duckdb.connect(str(target)) as con:
        con.execute("UPDATE runs SET model_sha256 = 'another model'")
    done = engine("import", str(bundle), "--db", str(target))
    assert done.returncode == 2 and "conflicts with a different run" in done.stderr


def test_a_file_that_is_not_a_bundle(tmp_path):
    fake = tmp_path / "notes.zip"
    fake.write_text("hello")
    done = engine("import", str(fake), "--db", str(tmp_path / "x.duckdb"))
    assert done.returncode == 2 and "not a readable zip bundle" in done.stderr


def test_the_machines_page_imports_a_bundle_into_an_empty_database(bundle, tmp_path):
    from tests.dashboard_app import open_page, text_of

    app = open_page(tmp_path / "results.duckdb", "machines")
    app.file_uploader(key="bundle_uploads").upload("from-the-lab.zip", bundle.read_bytes(), "application/zip")
    app.run()
    app.button(key="import_bundles").click().run()
    assert not app.exception and not app.error, text_of(app.error)
    assert "from-the-lab.zip: imported" in text_of(app.success)
    assert len(app.get("metric")) >= 3, "the imported machine is listed with its cores, memory and runs"


def test_delete_keeps_the_run_as_a_bundle_and_import_brings_it_back(filled_run, bundle, tmp_path):
    """A run measured on a busy machine widens the regression watch's noise floor for good: it can be deleted,
    and nothing is lost for good. A run still being measured is refused (its worker would go on writing)."""
    import os
    import socket

    from engine import store
    from engine.records import ResultRecord

    lab = tmp_path / "lab.duckdb"
    assert engine("import", str(bundle), "--db", str(lab)).returncode == 0
    run_id = filled_run["run_id"]
    live = {
        "run_id": "live",
        "started_at": pd.Timestamp("2026-11-29", tz="UTC"),
        "machine_id": "m-live",
        "machine_label": "lab",
        "model": "yolov8n",
        "model_sha256": "x",
        "model_source": "test",
        "weights_trained": False,
        "imgsz": 640,
        "images": [],
        "config": {"host": socket.gethostname()},
        "libraries": {},
        "pid": os.getpid(),
    }
    store.insert_run(lab, live)
    store.insert_result(
        lab,
        ResultRecord(
            result_id="live-r", run_id="live", runtime="onnxruntime", precision="fp32", batch=1, status="completed"
        ),
    )
    refused = engine("delete", "live", "--db", str(lab))
    assert refused.returncode == 2 and "run live is still running" in refused.stderr, refused.stderr
    before = counts(lab)

    done = engine("delete", run_id, "--db", str(lab))
    assert done.returncode == 0, done.stderr
    kept = tmp_path / "lab.artifacts" / "deleted" / f"{run_id}.zip"
    assert f"kept as {kept}" in done.stdout and f"engine import {kept}" in done.stdout, done.stdout
    left = counts(lab)
    assert (left["runs"], left["results"], left["samples"]) == (1, 1, 0), "only the live run's rows are left"
    assert left["machines"] == before["machines"], "machines stay: other runs share them"
    from engine.store import export_run_arrow

    left_of_it = {
        table: rows.num_rows
        for table, rows in export_run_arrow(lab, run_id).items()
        if table not in ("machines", "machine_peaks")
    }
    assert set(left_of_it.values()) == {0}, f"no table keeps a row of it: {left_of_it}"
    assert not (tmp_path / "lab.artifacts" / run_id).exists(), "its annotated images went with it"
    assert engine("delete", run_id, "--db", str(lab)).returncode == 2, "deleting twice: no such run"

    assert engine("import", str(kept), "--db", str(lab)).returncode == 0
    assert counts(lab) == before
    back = summary(lab)
    pd.testing.assert_frame_equal(
        back[back["run_id"] == run_id].reset_index(drop=True), summary(filled_run["db"]), check_dtype=False
    )  # nullable here: the live result has no image size
    assert (tmp_path / "lab.artifacts" / run_id).is_dir(), "and its images"
