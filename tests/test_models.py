"""Resolving --model: what a .pt file's contents gave is kept by its hash and read without a worker later."""

import json
import shutil

import pytest

from engine import models


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_checkpoint_resolved_before_is_known_by_its_contents(cache, tmp_path, monkeypatch):
    built = models.resolve("yolov8n.yaml")  # a real checkpoint, as the offline fallback builds it
    first = tmp_path / "first.pt"
    shutil.copyfile(built.path, first)
    assert models.kept(str(first)) is None, "nothing kept yet: the worker resolves it"
    models.keep(models.resolve(str(first)).to_dict())
    assert models.kept(str(first)) == models.resolve(str(first))
    copy = tmp_path / "elsewhere" / "copy.pt"
    copy.parent.mkdir()
    shutil.copyfile(first, copy)
    assert models.kept(str(copy)) == models.resolve(str(copy)), "a copy elsewhere: its own path and source"
    monkeypatch.chdir(tmp_path)
    assert models.kept("first.pt") == models.resolve("first.pt"), "a path relative to where the run starts"
    assert models.kept("yolov8n.pt") is None, "offline with no copy: the worker tries the download"
    shutil.copyfile(first, cache / "models" / "yolov8n.pt")  # an official name downloaded before
    known = models.kept("yolov8n.pt")
    assert known == models.resolve("yolov8n.pt") and known.source == "Ultralytics release asset yolov8n.pt"
    first.write_bytes(first.read_bytes() + b"\0")  # the same path rewritten: other contents
    assert models.kept(str(first)) is None
    record = next((cache / "models" / "resolved").glob("*.json"))
    kept = json.loads(record.read_text())
    record.write_text(json.dumps({**kept, "key": {**kept["key"], "ultralytics": "0.0.1"}}))
    assert models.kept(str(copy)) is None, "kept by another Ultralytics: read again"


def test_only_checkpoints_are_kept(cache, tmp_path):
    models.keep({"kind": "onnx", "sha256": "ab" * 32, "trained": None, "names": {}, "gflops_640": None})
    assert not (cache / "models" / "resolved").exists()
    assert models.kept(str(tmp_path / "missing.pt")) is None and models.kept("model.onnx") is None


def test_the_offline_fallback_has_one_name_however_it_is_given(cache, tmp_path):
    """The default name offline, the fallback file's path, or that path known from an earlier run: one model, one
    name in the history and its charts."""
    built = models.resolve("yolov8n.yaml")
    assert built.display_name == "yolov8n (untrained weights, seed 0)"
    by_path = models.resolve(built.path)
    assert by_path.display_name == built.display_name
    models.keep(by_path.to_dict())
    assert models.kept(built.path).display_name == built.display_name
    renamed = tmp_path / "mine.pt"
    shutil.copyfile(built.path, renamed)
    assert models.resolve(str(renamed)).display_name == models.kept(str(renamed)).display_name == "mine.pt"
