"""Hostile input through the dashboard: upload names, untrusted pickles, quotes, SQL and unicode in filters."""

from __future__ import annotations

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


def test_the_run_page_refuses_an_untrusted_pt_and_starts_nothing(tmp_path):
    app = open_page(tmp_path / "results.duckdb", "run")
    app.radio(key="model_source").set_value("Upload a model").run()
    assert app.toggle(key="trust_pt").value is False, "off by default"
    try:  # the uploader itself only takes .onnx while the switch is off
        app.file_uploader(key="model_upload").upload("evil.pt", b"not really a pickle", "application/octet-stream")
        app.button(key="start_run").click().run()
        # Streamlit's own refusal (redacted by showErrorDetails = "none"), or ours if a .pt got through
        refused = "runs code when loaded" in text_of(app.error) or bool(app.exception)
    except Exception as error:
        refused = "Invalid file extension" in str(error)
    assert refused
    assert "job_id" not in app.session_state
    assert not list(uploads_folder().glob("*-evil.pt")), "the file was not even written"


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
