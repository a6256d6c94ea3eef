"""Hostile input through the dashboard: upload names, untrusted pickles, quotes, SQL and unicode in filters."""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

import duckdb
import pytest

from dashboard.jobs import upload_allowed, upload_name, uploads_folder
from engine.api import BenchError
from tests.conftest import engine_run
from tests.dashboard_app import open_page, text_of

HOSTILE_NAME = 'd\'oh "🚀" ; DROP TABLE runs; --'


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.jpg",
        "/absolute/path/model.onnx",
        "..\\..\\windows\\system32\\x.png",
        "a" * 400 + ".jpg",
        "名前 with spaces.jpeg",
        ".hidden.png",
        "nul\x00byte.onnx",
    ],
)
def test_upload_names_are_generated_inside_the_private_folder(name):
    generated = upload_name(name, b"payload")
    assert "/" not in generated and "\\" not in generated and "\x00" not in generated and ".." not in generated
    assert len(generated) <= 16 + 1 + 40 + 6
    target = uploads_folder() / generated
    assert target.parent == uploads_folder()
    assert stat.S_IMODE(uploads_folder().stat().st_mode) == 0o700


@pytest.mark.parametrize("name", ["run.exe", "model.pkl", "no_suffix", "shell.sh"])
def test_upload_types_outside_the_list_are_refused(name):
    with pytest.raises(BenchError, match="not accepted"):
        upload_name(name, b"x")


def test_a_pt_upload_needs_the_trust_switch():
    assert not upload_allowed("weights.pt", trust_pt=False)
    assert upload_allowed("weights.pt", trust_pt=True)
    assert upload_allowed("weights.onnx", trust_pt=False)


def test_the_run_page_refuses_an_untrusted_pt_and_starts_nothing(tmp_path, capfd):
    app = open_page(tmp_path / "results.duckdb", "run")
    app.radio(key="model_source").set_value("Upload a model").run()
    assert app.toggle(key="trust_pt").value is False, "off by default"
    # sent past the browser's filter (the uploader takes .onnx only while the switch is off): Streamlit refuses it
    # as the session's widgets are read, before the page runs; its message is in the server's log, redacted on the
    # page (showErrorDetails = "none"). check_model_upload below is the page's own check behind it.
    app.file_uploader(key="model_upload").upload("evil.pt", b"not really a pickle", "application/octet-stream")
    app.button(key="start_run").click().run()
    captured = capfd.readouterr()
    logged = re.sub(r"\x1b\[[0-9;]*m", "", captured.out + captured.err)  # the traceback is printed in colour
    assert "Invalid file extension: `.pt`" in logged, "refused for its type, not for another fault"
    assert "job_id" not in app.session_state
    assert not list(uploads_folder().glob("*-evil.pt")), "the file was not even written"


def test_the_server_checks_a_pt_upload_again_whatever_the_uploader_let_through():
    """A request made by hand can carry a .pt past the uploader's own filter: the server refuses it unless the
    switch is on, with a message that says why."""
    from types import SimpleNamespace

    from dashboard.jobs import check_model_upload

    crafted = SimpleNamespace(name="evil.pt")
    for trust in (False, None):
        with pytest.raises(BenchError, match="evil.pt is a .pt file, which runs code when loaded"):
            check_model_upload(crafted, trust)
    check_model_upload(crafted, True)
    check_model_upload(SimpleNamespace(name="model.onnx"), False)
    check_model_upload(None, False)


def test_with_trust_switched_on_a_pt_upload_is_accepted(tmp_path):
    app = open_page(tmp_path / "results.duckdb", "run")
    app.radio(key="model_source").set_value("Upload a model").run()
    app.toggle(key="trust_pt").set_value(True).run()
    app.file_uploader(key="model_upload").upload("mine.pt", b"x", "application/octet-stream")
    assert not app.exception


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory, filled_run):
    """A real run of a real ONNX export whose file name carries quotes, unicode and SQL."""
    folder = tmp_path_factory.mktemp("hostile")
    with duckdb.connect(str(filled_run["db"]), read_only=True) as con:
        onnx_file = con.execute(
            "SELECT model_file FROM results WHERE runtime = 'onnxruntime' AND batch = 1"
        ).fetchall()[0][0]
    model = folder / f"{HOSTILE_NAME}.onnx"
    shutil.copyfile(onnx_file, model)
    db = folder / "results.duckdb"
    done = engine_run(
        db, "--model", str(model), "--runtimes", "onnxruntime", "--iters", "3", "--label", "machine 'ü' \"; --"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return db


@pytest.mark.parametrize("page", ["overview", "history", "detections", "compare", "machines", "share"])
def test_quotes_sql_and_unicode_in_filters_are_plain_values(hostile_db, page):
    app = open_page(hostile_db, page)
    app.multiselect(key="model_filter").set_value([f"{HOSTILE_NAME}.onnx"]).run()
    assert not app.exception and not app.error, text_of(app.error)
    with duckdb.connect(str(hostile_db), read_only=True) as con:
        assert con.execute("SELECT model FROM runs").fetchall() == [(f"{HOSTILE_NAME}.onnx",)]


@pytest.mark.parametrize("path", ["'; DROP TABLE runs; --", "/nonexistent/ü/results.duckdb", "results\x00.duckdb"])
def test_a_hostile_database_path_is_a_message(path):
    app = open_page(Path(path), "history")
    assert not app.exception


def test_the_run_page_takes_every_image_type_the_engine_reads(tmp_path, sample_images):
    """The CLI read .webp and .tif images that the page's uploader refused."""
    from engine.api import IMAGE_SUFFIXES

    app = open_page(tmp_path / "results.duckdb", "run")
    app.radio(key="images_source").set_value("Upload images").run()
    assert set(app.file_uploader(key="image_uploads").proto.type) == set(IMAGE_SUFFIXES)
    for suffix in IMAGE_SUFFIXES:
        app.file_uploader(key="image_uploads").upload(f"photo{suffix}", sample_images[0].read_bytes(), "image/jpeg")
        assert not app.exception, suffix
        assert upload_name(f"photo{suffix}", b"x").endswith(suffix)
