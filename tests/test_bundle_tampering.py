"""A bundle is untrusted input: every tampered bundle, made by code from a good one, is refused with one line, on a
DuckDB file and on the shared store, and leaves the database and the file system exactly as they were."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import api, database, store
from engine.bundle_check import BundleRefused
from engine.names import new_id
from tests import postgres_server
from tests.conftest import ROOT, engine

FOREIGN_RUN = "20200101-000000-abcdef"


@dataclass
class Parts:
    """A bundle taken apart: its manifest and its members' bytes, in order; pack() zips it again."""

    manifest: dict
    members: dict[str, bytes]
    unlisted: dict[str, bytes] = field(default_factory=dict)  # in the zip, not in the manifest
    keep_checksums: bool = False

    def table(self, name: str) -> pa.Table:
        return pq.read_table(io.BytesIO(self.members[f"tables/{name}.parquet"]))

    def set_table(self, name: str, rows: pa.Table) -> None:
        out = io.BytesIO()
        pq.write_table(rows, out)
        self.members[f"tables/{name}.parquet"] = out.getvalue()

    def set_column(self, table: str, column: str, value, first_only: bool = False) -> None:
        """Every row's column set to value (or the first row's alone); a table with no rows gets one."""
        rows = self.table(table)
        if rows.num_rows == 0:
            rows = one_row(rows.schema)
        index = rows.schema.get_field_index(column)
        values = rows.column(index).to_pylist()
        values = [value] + values[1:] if first_only else [value] * rows.num_rows
        self.set_table(table, rows.set_column(index, column, pa.array(values, rows.schema.field(index).type)))

    def rename_run(self, run_id) -> None:
        """The run's id changed everywhere it is written: the manifest and each table's rows."""
        self.manifest["run_id"] = run_id
        self.manifest["identity"][0] = run_id
        for table in ("runs", "results", "reference_detections"):
            if self.table(table).num_rows:
                self.set_column(table, "run_id", run_id)

    def pack(self) -> bytes:
        import hashlib

        if not self.keep_checksums:
            self.manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in self.members.items()}
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in {**self.members, **self.unlisted}.items():
                archive.writestr(name, data)
            archive.writestr("manifest.json", json.dumps(self.manifest))
        return out.getvalue()


def one_row(schema: pa.Schema) -> pa.Table:
    """A plausible row of an empty table, to give a table that held none a row to tamper with."""

    def value(kind):
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return "x"
        if pa.types.is_integer(kind):
            return 0
        if pa.types.is_floating(kind):
            return 0.0
        if pa.types.is_boolean(kind):
            return False
        return None

    return pa.table({f.name: pa.array([value(f.type)], f.type) for f in schema}, schema=schema)


def take_apart(bundle: Path) -> Parts:
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        members = {name: archive.read(name) for name in archive.namelist() if name != "manifest.json"}
    return Parts(manifest, members)


def a_jpeg() -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


# Each case: how to tamper with a good bundle's parts (returning its zip's bytes), and what the refusal says.
def renamed(run_id):
    def tamper(parts: Parts) -> bytes:
        parts.rename_run(run_id)
        return parts.pack()

    return tamper


def member(name: str, data: bytes | None = None, listed: bool = True):
    def tamper(parts: Parts) -> bytes:
        parts.members[name] = a_jpeg() if data is None else data
        if not listed:
            parts.unlisted[name] = parts.members.pop(name)
        return parts.pack()

    return tamper


def foreign_owner(table: str):
    column = store.OWNER_COLUMN[table]
    foreign = {"run_id": FOREIGN_RUN, "result_id": "another-result", "machine_id": "another-machine"}[column]

    def tamper(parts: Parts) -> bytes:
        parts.set_column(table, column, foreign, first_only=True)
        return parts.pack()

    return tamper


def with_rows(table: str, change):
    def tamper(parts: Parts) -> bytes:
        parts.set_table(table, change(parts.table(table)))
        return parts.pack()

    return tamper


def with_manifest(change):
    def tamper(parts: Parts) -> bytes:
        change(parts.manifest)
        return parts.pack()

    return tamper


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def duplicated_member(parts: Parts) -> bytes:
    good = parts.pack()
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        entries = [(name, archive.read(name)) for name in archive.namelist()]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name: that is the point
        return zip_of(entries + [("tables/runs.parquet", parts.members["tables/runs.parquet"])])


def with_listed_files(change):
    """The manifest's file list changed after its checksums were filled in."""

    def tamper(parts: Parts) -> bytes:
        parts.pack()
        change(parts.manifest["files"])
        parts.keep_checksums = True
        return parts.pack()

    return tamper


def not_parquet(parts: Parts) -> bytes:
    parts.members["tables/samples.parquet"] = b"PAR1 this is not a Parquet file"
    return parts.pack()


def truncated(parts: Parts) -> bytes:
    good = parts.pack()
    return good[: len(good) // 2]


def zip_bomb(parts: Parts) -> bytes:
    parts.members["tables/samples.parquet"] = bytes(200 * 2**20)  # 200 MiB of zeros deflate to 200 KB
    return parts.pack()


def oversized_image(parts: Parts) -> bytes:
    parts.members["images/huge.jpg"] = b"\xff\xd8\xff" + os.urandom(17 * 2**20)
    return parts.pack()


def no_manifest(parts: Parts) -> bytes:
    return zip_of(list(parts.members.items()))


def manifest_not_json(parts: Parts) -> bytes:
    return zip_of([*parts.members.items(), ("manifest.json", b"{not json")])


def without_member(name: str):
    def tamper(parts: Parts) -> bytes:
        del parts.members[name]
        return parts.pack()

    return tamper


def other_model_identity(parts: Parts) -> bytes:
    parts.manifest["identity"][3] = "f" * 64
    return parts.pack()


def format_two(parts: Parts) -> bytes:
    parts.manifest["format"] = 2
    return parts.pack()


def started_not_a_time(parts: Parts) -> bytes:
    rows = parts.table("runs")
    index = rows.schema.get_field_index("started_at")
    parts.set_table("runs", rows.set_column(index, "started_at", pa.array(["yesterday"] * rows.num_rows)))
    return parts.pack()


def second_machine(parts: Parts) -> bytes:
    rows = parts.table("machines")
    other = rows.set_column(
        rows.schema.get_field_index("machine_id"), "machine_id", pa.array(["another-machine"] * rows.num_rows)
    )
    parts.set_table("machines", pa.concat_tables([rows, other]))
    return parts.pack()


def reused_result_ids(parts: Parts) -> bytes:
    """A new run by its manifest and rows, whose results are a run already present: a DuckLake store has no key to
    stop them doubling that run's results."""
    parts.rename_run(new_id())
    return parts.pack()


CASES = {
    "run id climbing out of the artifacts folder": (renamed("../../../climbed"), "is not a run id"),
    "run id with SQL": (renamed("x'; DROP TABLE runs; --"), "is not a run id"),
    "run id of 10,000 characters": (renamed("2" * 10_000), "(10000 characters)"),
    "run id with a newline": (renamed(new_id() + "\n"), "is not a run id"),
    "run id with a NUL": (renamed("20261204-182008-20df\x008"), "is not a run id"),
    "run id in other digits": (renamed("٢٠٢٦١٢٠٤-١٨٢٠٠٨-20df88"), "is not a run id"),
    "run id that is absolute": (renamed("/tmp/climbed"), "is not a run id"),
    "run id that is a number": (with_manifest(lambda m: m.update(run_id=20261204)), "is not a run id"),
    "member climbing out": (member("images/../../escape.jpg"), "is not manifest.json"),
    "member with an absolute path": (member("/tmp/escape.jpg"), "is not manifest.json"),
    "member with backslashes": (member("images\\..\\..\\escape.jpg"), "is not manifest.json"),
    "member in a nested folder": (member("images/sub/escape.jpg"), "is not manifest.json"),
    "member name with control characters": (member("images/bus\x1b[31m.jpg"), "is not manifest.json"),
    "member the manifest does not list": (member("images/extra.jpg", listed=False), "does not list"),
    "manifest listing a file outside": (
        with_listed_files(lambda files: files.update({"images/../../escape.txt": "0" * 64})),
        "outside tables/ and images/",
    ),
    "an extra unknown table": (member("tables/secrets.parquet", b"PAR1"), "is not manifest.json"),
    "a file that is not an image": (member("images/notes.jpg", b"just text"), "is not a JPEG image"),
    "a member twice": (duplicated_member, "twice"),
    **{
        f"a row of {table} belonging elsewhere": (foreign_owner(table), "of another" if table != "runs" else "run(s)")
        for table in store.BUNDLE_TABLES
    },
    "foreign machine rows": (second_machine, "another machine"),
    "duplicated result ids": (with_rows("results", lambda rows: pa.concat_tables([rows, rows])), "cannot take"),
    "result ids of a run already present": (reused_result_ids, "already in"),
    "a table that is not Parquet": (not_parquet, "is not readable Parquet"),
    "a missing column": (with_rows("results", lambda rows: rows.drop_columns(["runtime"])), "lacks columns: runtime"),
    "an unknown column": (
        with_rows("results", lambda rows: rows.append_column("evil", pa.array(["x"] * rows.num_rows))),
        "does not have: evil",
    ),
    "a value of the wrong type": (started_not_a_time, "cannot take"),
    "a wrong checksum": (
        with_listed_files(lambda files: files.update({"tables/stats.parquet": "0" * 64})),
        "checksum of tables/stats.parquet does not match",
    ),
    "checksums that are not SHA-256": (
        with_listed_files(lambda files: files.update(dict.fromkeys(files, "not a checksum"))),
        "not a SHA-256",
    ),
    "a truncated zip": (truncated, "not a readable zip bundle"),
    "a zip bomb": (zip_bomb, "zip bomb"),
    "an oversized image": (oversized_image, "over the 16 MiB"),
    "no manifest": (no_manifest, "manifest.json is missing"),
    "a manifest that is not JSON": (manifest_not_json, "not JSON"),
    "another bundle format": (format_two, "bundle format 2"),
    "a manifest identity not the rows'": (other_model_identity, "identity does not match"),
    "no runs table": (without_member("tables/runs.parquet"), "tables/runs.parquet is missing"),
}


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory) -> Path:
    """A real run's bundle, kept as a fixture (tests/fixtures), imported and bundled again by this engine: tampering
    needs no run of its own, and the bundle holds every table this engine writes (the fixture predates some)."""
    from engine import api
    from tests.test_fixture_bundle import FIXTURES

    folder = tmp_path_factory.mktemp("good")
    db = str(folder / "results.duckdb")
    api.import_bundle(db, str(FIXTURES / "run-before-typed-records.zip"))
    return Path(api.write_bundle(db, api.runs(db)["run_id"].iloc[0], str(folder / "run.zip")))


@pytest.fixture(scope="module")
def bundle_made_here(filled_run, tmp_path_factory) -> Path:
    """A bundle of a run made on this machine: its original images are this machine's files."""
    out = tmp_path_factory.mktemp("here") / "run.zip"
    done = engine("bundle", "--run", filled_run["run_id"], "--db", str(filled_run["db"]), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def tampered(good_bundle, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tampered")
    made = {}
    for index, (case, (tamper, _)) in enumerate(CASES.items()):
        made[case] = folder / f"tampered-{index:02d}.zip"
        made[case].write_bytes(tamper(take_apart(good_bundle)))
    return made


@pytest.fixture(scope="module")
def server():
    started = postgres_server.start()
    yield started
    started.stop()


SCRATCH = "scratch-tmp"  # the fresh temporary folder an import may use while it runs


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.lstat().st_size, path.lstat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if SCRATCH not in path.relative_to(folder).parts
    }


def rows_of(db: str) -> dict[str, list]:
    with store.connect(db, read_only=True) as con:
        return {
            table: sorted(map(repr, con.execute(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM {table}").fetchall()))
            for table in store.BUNDLE_TABLES
        }  # as text: timestamps with time zones would need pytz


def test_at_least_thirty_tampered_bundles_are_tried():
    assert len(CASES) >= 30


def check_refusals(db: str, tampered: dict[str, Path], place: Path, monkeypatch, state) -> None:
    """Each tampered bundle refused with one line naming it and the problem; state(db) and every file under place
    (the database, its images, the store's data) as they were; the temporary folder empty again."""
    scratch = place / SCRATCH
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before, files, root = state(db), tree(place), sorted(os.listdir(ROOT))
    for case, bundle in tampered.items():
        with pytest.raises(BundleRefused) as refused:
            api.import_bundle(db, str(bundle))
        message = str(refused.value)
        assert "\n" not in message and len(message) < 500, f"{case}: {message!r}"
        assert message.startswith(f"bundle {bundle.name} refused: "), f"{case}: {message}"
        assert CASES[case][1] in message, f"{case}: {message}"
        assert state(db) == before, f"{case} changed the database"
        assert tree(place) == files, f"{case} left files behind"
        assert not any(scratch.iterdir()), f"{case} left its temporary files"
        assert sorted(os.listdir(ROOT)) == root, f"{case} wrote into the project folder"
    assert not any(
        path.exists()
        for path in (place.parent / "climbed", place / "climbed", Path("/tmp/climbed"), place.parent / "escape.jpg")
    )


def test_tampered_bundles_leave_a_duckdb_file_byte_identical(good_bundle, tampered, tmp_path, monkeypatch):
    db = tmp_path / "deep" / "down" / "results.duckdb"
    db.parent.mkdir(parents=True)
    assert api.import_bundle(str(db), str(good_bundle)) == "imported"
    check_refusals(str(db), tampered, tmp_path, monkeypatch, lambda path: Path(path).read_bytes())


def test_tampered_bundles_leave_the_shared_store_row_identical(server, good_bundle, tampered, tmp_path, monkeypatch):
    server.create_database("lake_tampered")
    lake = server.address("lake_tampered", tmp_path / "lake-data")
    try:
        assert api.import_bundle(lake, str(good_bundle)) == "imported"
        check_refusals(lake, tampered, tmp_path, monkeypatch, rows_of)
    finally:
        database.forget(lake)


def test_a_fresh_database_is_not_even_created_by_a_refused_bundle(tampered, tmp_path):
    db = tmp_path / "results.duckdb"
    for bundle in list(tampered.values())[:5]:
        with pytest.raises(BundleRefused):
            api.import_bundle(str(db), str(bundle))
    assert list(tmp_path.iterdir()) == [], "no database file, no artifacts folder"


@pytest.mark.parametrize(
    "case",
    [
        "run id climbing out of the artifacts folder",
        "a table that is not Parquet",
        "result ids of a run already present",
        "a zip bomb",
    ],
)
def test_the_cli_refuses_with_one_line_and_exit_code_2(good_bundle, tampered, tmp_path, case):
    db = tmp_path / "results.duckdb"
    assert engine("import", str(good_bundle), "--db", str(db)).returncode == 0
    before = db.read_bytes()
    done = engine("import", str(tampered[case]), "--db", str(db))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"error: bundle {tampered[case].name} refused: "), done.stderr
    assert CASES[case][1] in done.stderr
    assert db.read_bytes() == before


def test_an_annotated_path_of_another_machine_points_nowhere_here(good_bundle, tmp_path):
    """A row's annotated_path names a file on the machine that wrote it; here only the bundle's own images count,
    so a path to anything else (a server file, say) is dropped rather than shown by the Detections page."""
    parts = take_apart(good_bundle)
    rows = parts.table("result_images")
    paths = ["/etc/passwd"] + rows.column("annotated_path").to_pylist()[1:]
    parts.set_table(
        "result_images",
        rows.set_column(rows.schema.get_field_index("annotated_path"), "annotated_path", pa.array(paths, pa.string())),
    )
    bundle = tmp_path / "pointing.zip"
    bundle.write_bytes(parts.pack())
    db = tmp_path / "results.duckdb"
    assert api.import_bundle(str(db), str(bundle)) == "imported"
    with duckdb.connect(str(db), read_only=True) as con:
        kept = [row[0] for row in con.execute("SELECT annotated_path FROM result_images").fetchall()]
    images = tmp_path / "results.artifacts"
    assert "/etc/passwd" not in kept and None in kept
    assert all(path is None or Path(path).parent.parent == images and Path(path).is_file() for path in kept)


def test_the_machines_page_refuses_a_tampered_upload_and_imports_the_rest(good_bundle, tampered, tmp_path):
    from tests.dashboard_app import open_page, text_of

    db = tmp_path / "results.duckdb"
    app = open_page(db, "machines")
    uploads = app.file_uploader(key="bundle_uploads")
    uploads.upload(
        "climbing.zip", tampered["run id climbing out of the artifacts folder"].read_bytes(), "application/zip"
    )
    uploads.upload("teammate.zip", good_bundle.read_bytes(), "application/zip")
    app.run()
    app.button(key="import_bundles").click().run()
    assert not app.exception
    assert "bundle climbing.zip refused: its manifest's run id: '../../../climbed' is not a run id" in text_of(
        app.error
    ), text_of(app.error)
    assert "teammate.zip: imported" in text_of(app.success)
    assert not (tmp_path / "climbed").exists() and len(store.runs(db)) == 1


def test_restore_checks_the_kept_bundle_and_the_run_id(good_bundle, tampered, tmp_path):
    from engine.deletion import kept_bundle

    db = tmp_path / "results.duckdb"
    assert api.import_bundle(str(db), str(good_bundle)) == "imported"
    run_id = store.runs(db)["run_id"].iloc[0]
    api.delete_run(str(db), run_id)
    kept = kept_bundle(str(db), run_id)
    kept.write_bytes(tampered["a row of results belonging elsewhere"].read_bytes())  # swapped while kept
    done = engine("restore", run_id, "--db", str(db))
    assert done.returncode == 2 and "refused" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert kept.is_file() and store.runs(db).empty, "a refused bundle stays kept, and nothing came in"
    climbing = engine("restore", "../../climbed", "--db", str(db))
    assert climbing.returncode == 2 and "'../../climbed' is not a run id" in climbing.stderr, climbing.stderr
    kept.write_bytes(good_bundle.read_bytes())
    assert engine("restore", run_id, "--db", str(db)).returncode == 0
    assert len(store.runs(db)) == 1 and not kept.exists()


def test_paths_from_rows_open_nothing_outside_the_run(bundle_made_here, tmp_path):
    """A database filled before bundles were checked may hold any annotated path, and an imported run's own image
    paths name files of the machine that made it: the pages and reports open neither."""
    db = tmp_path / "results.duckdb"
    assert api.import_bundle(str(db), str(bundle_made_here)) == "imported"
    run = store.runs(db).iloc[0].to_dict()
    assert any(path is not None for path in api.original_images(run)), "made on this machine: its images open"
    elsewhere = {**run, "config": json.dumps({**json.loads(run["config"]), "host": "another-host"})}
    assert api.original_images(elsewhere) == [None] * len(json.loads(run["images"]))
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE result_images SET annotated_path = '/etc/passwd' WHERE annotated_path IS NOT NULL")
    assert api.result_images(str(db), run["run_id"])["annotated_path"].isna().all()
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE result_images SET annotated_path = '/home/me/photos/' || result_id || '.jpg'")
    assert api.result_images(str(db), run["run_id"])["annotated_path"].isna().all()


def test_the_reliability_table_counts_the_bundles_tried():
    readme = (ROOT / "docs" / "reliability.md").read_text()
    assert f"| tampered bundles | {len(CASES)} bundles made by code" in readme
