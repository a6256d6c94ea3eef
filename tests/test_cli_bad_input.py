"""Bad input gets a one-line message naming the problem, a non-zero exit, and nothing written to the DB."""

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zlib

import duckdb
import onnx
import pytest
from PIL import Image

from tests.conftest import NO_NETWORK, TEST_IMGSZ, engine_run


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
    tiny = folder / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    huge = folder / "huge.png"
    huge.write_bytes(png_header_only(20000, 20000))
    random_onnx = folder / "random.onnx"
    random_onnx.write_bytes(bytes(range(256)) * 64)
    wrong_rank = folder / "wrong_rank.onnx"
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "not_yolo",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 10])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])],
    )
    onnx.save(onnx.helper.make_model(graph), wrong_rank)
    models = {}
    for task in ("cls", "seg"):
        models[task] = folder / f"yolov8n-{task}.pt"
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"from ultralytics import YOLO; YOLO('yolov8n-{task}.yaml').save(r'{models[task]}')",
            ],
            check=True,
            capture_output=True,
            cwd=folder,
        )
    return {
        "truncated": truncated,
        "text": text,
        "empty": empty,
        "random_pt": random_pt,
        "text_model": text_model,
        "newer": newer,
        "folder": folder,
        "tiny": tiny,
        "huge": huge,
        "random_onnx": random_onnx,
        "wrong_rank": wrong_rank,
        "cls_pt": models["cls"],
        "seg_pt": models["seg"],
    }


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds no pixels: what a decompression bomb's header looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


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
    "image size 0": (["--imgsz", "0"], "image size 0"),
    "1x1 image": (["--images", "{tiny}"], "is 1x1"),
    "20000x20000 image": (["--images", "{huge}"], "too large"),
    "random bytes .onnx": (["--model", "{random_onnx}"], "not a readable ONNX model"),
    "ONNX with the wrong input rank": (["--model", "{wrong_rank}"], "does not look like a YOLO detection model"),
    "classification checkpoint": (["--model", "{cls_pt}"], "classify model"),
    "segmentation checkpoint": (["--model", "{seg_pt}"], "segment model"),
    "negative batch": (["--batch", "-1"], "batch size -1 is out of range"),
    "huge iterations": (["--iters", "1000000000"], "iterations 1000000000 is out of range"),
    "negative threads": (["--threads", "-1"], "threads -1 is out of range"),
    "more threads than CPUs": (["--threads", str(len(os.sched_getaffinity(0)) + 1)], "logical CPU(s)"),
    "negative warm-up": (["--warmup", "-5"], "warm-up -5 is out of range"),
    "unknown precision": (["--precisions", "fp8"], "unknown precision 'fp8'"),
    "timeout 0": (["--timeout", "0"], "timeout 0"),
    "memory limit too small": (["--memory-limit", "10"], "too small"),
    "no runtime": (["--runtimes", ","], "no runtime chosen"),
    "a precision no chosen runtime offers": (["--runtimes", "tensorrt"], "precision fp32 (tensorrt offers fp16, int8)"),
}


@pytest.fixture(scope="module")
def holding_db(tmp_path_factory):
    """A database that already holds a run (the kept fixture's): bad input must leave it byte for byte."""
    from engine import api
    from tests.test_fixture_bundle import FIXTURES

    db = tmp_path_factory.mktemp("holding") / "results.duckdb"
    api.import_bundle(str(db), str(FIXTURES / "run-before-typed-records.zip"))
    return db


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_before_writing(case, bad_files, holding_db, tmp_path):
    args, expected = CASES[case]
    args = [a.format(**bad_files) for a in args]
    for db in (tmp_path / "results.duckdb", tmp_path / "held.duckdb"):
        if db.name == "held.duckdb":
            shutil.copyfile(holding_db, db)
        before = _digest(db) if db.exists() else None
        runtimes = () if "--runtimes" in args else ("--runtimes", "onnxruntime")
        done = engine_run(db, *runtimes, "--iters", "6", *args)
        assert done.returncode == 2, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and expected in errors[0], done.stderr
        assert done.stderr.rstrip().endswith(errors[0]) and "Traceback" not in done.stderr, done.stderr
        if before is None:
            assert not db.exists(), "nothing may be written for bad input"
        else:
            assert _digest(db) == before and sorted(p.name for p in tmp_path.iterdir()) == sorted(["held.duckdb"]), (
                "a database that was there is left byte for byte, with nothing beside it"
            )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--batch", "1,2"], "takes batch 1 only (its input is fixed at 1x3x{size}x{size}), not 2: use --batch 1"),
        (
            ["--imgsz", "320"],
            "takes {size}x{size} images only (its input is fixed at 1x3x{size}x{size}): use --imgsz {size}",
        ),
    ],
)
def test_an_onnx_with_a_fixed_input_is_refused_other_sizes_before_running(filled_run, tmp_path, args, expected):
    """Asked for batch 2, a static export failed inside each runtime, after the run had started, in their words."""
    with duckdb.connect(str(filled_run["db"]), read_only=True) as con:
        onnx_file = con.execute(
            "SELECT model_file FROM results WHERE runtime = 'onnxruntime' AND batch = 1"
        ).fetchall()[0][0]
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--model", onnx_file, "--runtimes", "onnxruntime", "--iters", "2", *args)
    assert done.returncode == 2, done.stderr
    assert expected.format(size=TEST_IMGSZ) in done.stderr.strip().splitlines()[-1], done.stderr
    assert not db.exists(), "refused before anything was written"


def test_runtimes_all_means_every_runtime_available_here(tmp_path):
    """Seen through the message naming what each chosen runtime offers: no CPU runtime offers fp16."""
    from engine.runtimes import registry

    available = [info for info in registry.describe() if info.available]
    if any("fp16" in info.precisions for info in available):
        pytest.skip("a GPU runtime here offers fp16: the run would start")
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--runtimes", "all", "--precisions", "fp16", "--iters", "2")
    assert done.returncode == 2, done.stderr
    offers = "; ".join(f"{info.name} offers {', '.join(info.precisions)}" for info in available)
    assert f"none of the chosen runtimes offers precision fp16 ({offers})" in done.stderr, done.stderr
    assert not db.exists()


@pytest.mark.parametrize("name, hint", [("yolo11n.pt", True), ("yolov8s.pt", True), ("yolo_nonesuch.pt", False)])
def test_an_official_name_offline_points_to_its_architecture(name, hint, tmp_path):
    """Only yolov8n.pt falls back to untrained weights by itself; another official name tells how to get them."""
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--runtimes", "onnxruntime", "--iters", "2", "--model", name, env=NO_NETWORK)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert "neither a local file nor downloadable" in message, message
    offer = f"--model {name.removesuffix('.pt')}.yaml benchmarks its architecture with untrained weights"
    assert (offer in message) == hint, message
    assert not db.exists()


def test_newer_database_is_refused_and_unchanged(bad_files):
    before = _digest(bad_files["newer"])
    done = engine_run(bad_files["newer"], "--runtimes", "onnxruntime", "--iters", "2")
    assert done.returncode == 2
    assert "newer than this engine" in done.stderr
    assert _digest(bad_files["newer"]) == before


@pytest.mark.parametrize(
    "db_path, expected",
    [("/nonexistent-folder/results.duckdb", "does not exist"), ("/proc/results.duckdb", "cannot be opened")],
)
def test_unwritable_database_path(db_path, expected):
    from pathlib import Path

    done = engine_run(Path(db_path), "--runtimes", "onnxruntime", "--iters", "2")
    assert done.returncode == 2
    assert expected in done.stderr.strip().splitlines()[-1]


def test_database_path_that_is_a_folder(tmp_path):
    done = engine_run(tmp_path, "--runtimes", "onnxruntime", "--iters", "2")
    assert done.returncode == 2 and "is a folder" in done.stderr


def test_unusual_but_valid_images_are_measured(tmp_path, sample_images):
    """Alpha channel, 16-bit depth and grayscale are converted, not refused. Given as a folder, the
    folder's other files are named as left out, and hidden files (macOS '._' copies) are skipped."""
    import cv2
    import numpy as np

    folder = tmp_path / "photos"
    folder.mkdir()
    source = np.asarray(Image.open(sample_images[0]).convert("RGB"))
    Image.fromarray(np.dstack([source, np.full(source.shape[:2], 128, np.uint8)]), "RGBA").save(folder / "alpha.png")
    cv2.imwrite(str(folder / "sixteen_bit.png"), source[..., ::-1].astype(np.uint16) * 257)  # 16 bits per channel
    Image.fromarray(source).convert("L").save(folder / "gray.jpg")
    Image.fromarray(source).save(folder / "moving.gif")
    (folder / "notes.txt").write_text("not an image")
    (folder / "._gray.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--runtimes", "onnxruntime", "--iters", "2", "--images", str(folder))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "3 images; left out 2 file(s) that are not .jpg/.jpeg/.png/.bmp/.webp/.tif/.tiff: moving.gif, notes.txt"
        in done.stderr
    ), done.stderr[-2000:]
    with duckdb.connect(str(db), read_only=True) as con:
        images = con.execute("SELECT count(*) FROM result_images").fetchall()[0][0]
    assert images == 3
