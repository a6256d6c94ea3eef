"""Bad input gets a one-line message naming the problem, a non-zero exit, and nothing written to the DB."""

import hashlib

import duckdb
import pytest

from tests.conftest import engine_run


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, sample_images):
    folder = tmp_path_factory.mktemp("bad")
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(sample_images[0].read_bytes()[:2000])
    text = folder / "notes.jpg"
    text.write_text("this is not an image")
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    random_pt = folder / "random.pt"
    random_pt.write_bytes(bytes(range(256)) * 64)
    text_model = folder / "model.txt"
    text_model.write_text("hello")
    newer = folder / "newer.duckdb"
    with duckdb.connect(str(newer)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        con.execute("INSERT INTO schema_version VALUES (99, now())")
    return {"truncated": truncated, "text": text, "empty": empty, "random_pt": random_pt,
            "text_model": text_model, "newer": newer, "folder": folder}


CASES = {
    "missing image": (["--images", "/nonexistent/bus.jpg"], "does not exist"),
    "truncated jpeg": (["--images", "{truncated}"], "truncated or corrupt"),
    "text file named .jpg": (["--images", "{text}"], "not an image file"),
    "empty image file": (["--images", "{empty}"], "not an image file"),
    "random bytes .pt": (["--model", "{random_pt}"], "not an Ultralytics model checkpoint"),
    "not a model file": (["--model", "{text_model}"], "is not a .pt, .onnx or .yaml"),
    "segmentation architecture": (["--model", "yolov8n-seg.yaml"], "segment model"),
    "unknown runtime": (["--runtimes", "onnxruntime,caffe"], "unknown runtime 'caffe'"),
    "batch 0": (["--batch", "0"], "batch size 0 is out of range"),
    "batch 100000": (["--batch", "100000"], "batch size 100000 is out of range"),
    "batch not a number": (["--batch", "two"], "whole numbers"),
    "iterations 0": (["--iters", "0"], "iterations 0 is out of range"),
    "image size not a multiple of 32": (["--imgsz", "100"], "image size 100"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_before_writing(case, bad_files, tmp_path):
    args, expected = CASES[case]
    args = [a.format(**bad_files) for a in args]
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--runtimes", "onnxruntime", "--iters", "2", *args) if "--runtimes" not in args \
        else engine_run(db, "--iters", "2", *args)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()
    assert message[-1].startswith("error: ") and expected in message[-1], done.stderr
    assert not db.exists(), "nothing may be written for bad input"


def test_newer_database_is_refused_and_unchanged(bad_files):
    before = _digest(bad_files["newer"])
    done = engine_run(bad_files["newer"], "--runtimes", "onnxruntime", "--iters", "2")
    assert done.returncode == 2
    assert "newer than this engine" in done.stderr
    assert _digest(bad_files["newer"]) == before


@pytest.mark.parametrize("db_path, expected", [
    ("/nonexistent-folder/results.duckdb", "does not exist"),
    ("/proc/results.duckdb", "cannot be opened"),
])
def test_unwritable_database_path(db_path, expected):
    from pathlib import Path

    done = engine_run(Path(db_path), "--runtimes", "onnxruntime", "--iters", "2")
    assert done.returncode == 2
    assert expected in done.stderr.strip().splitlines()[-1]


def test_database_path_that_is_a_folder(tmp_path):
    done = engine_run(tmp_path, "--runtimes", "onnxruntime", "--iters", "2")
    assert done.returncode == 2 and "is a folder" in done.stderr
