"""The bundle check in-process, against a DuckDB file only: test_bundle_tampering.py's tampered bundles (but the two
that inflate to hundreds of MiB, whose limits are checked here with small limits), each refused with one line that
names the problem, leaving the file and its folder as they were; and what a good bundle becomes when it passes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import zipfile
from pathlib import Path, PurePosixPath

import duckdb
import pyarrow as pa
import pytest

from engine import api, store
from engine.bundle_check import BundleLimits, BundleRefused, check_bundle
from tests.test_bundle_tampering import CASES, a_jpeg, take_apart, tree
from tests.test_fixture_bundle import FIXTURES

FIXTURE = FIXTURES / "run-before-typed-records.zip"
LARGE = ("a zip bomb", "an oversized image")  # 200 MiB and 17 MiB members: their limits are checked below, small


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """The fixture run bundled again by this engine, so that it holds every table this engine writes."""
    folder = tmp_path_factory.mktemp("good")
    db = str(folder / "results.duckdb")
    assert api.import_bundle(db, str(FIXTURE)) == "imported"
    return Path(api.write_bundle(db, api.runs(db)["run_id"].iloc[0], str(folder / "run.zip")))


@pytest.fixture(scope="module")
def imported(good, tmp_path_factory) -> Path:
    """A DuckDB file holding the good bundle's run (the tests refuse bundles into it; none changes it)."""
    db = tmp_path_factory.mktemp("imported") / "results.duckdb"
    assert api.import_bundle(str(db), str(good)) == "imported"
    return db


def _refusal(db: Path, data: bytes, folder: Path) -> str:
    """The one-line refusal of a bundle of these bytes, checked to have changed nothing in db's folder."""
    bundle = folder / "tampered.zip"
    bundle.write_bytes(data)
    before, files = db.read_bytes(), tree(db.parent)
    with pytest.raises(BundleRefused) as refused:
        api.import_bundle(str(db), str(bundle))
    message = str(refused.value)
    assert message.startswith("bundle tampered.zip refused: ") and "\n" not in message, message
    assert db.read_bytes() == before and tree(db.parent) == files
    return message.removeprefix("bundle tampered.zip refused: ")


@pytest.mark.parametrize("case", [case for case in CASES if case not in LARGE])
def test_a_tampered_bundle_is_refused_and_changes_nothing(good, imported, tmp_path, case):
    tamper, expected = CASES[case]
    assert expected in _refusal(imported, tamper(take_apart(good)), tmp_path)


@pytest.mark.parametrize(
    "table, owner",
    [(table, store.OWNER_COLUMN[table].removesuffix("_id")) for table in store.BUNDLE_TABLES if table != "runs"],
)
def test_a_row_of_another_owner_is_named_by_table_and_owner(good, imported, tmp_path, table, owner):
    tamper, _ = CASES[f"a row of {table} belonging elsewhere"]
    problems = _refusal(imported, tamper(take_apart(good)), tmp_path).split("; ")
    assert re.fullmatch(rf"tables/{table}\.parquet holds 1 row\(s\) of another {owner}", problems[0]), problems


def test_a_runs_table_of_another_run_or_of_two_runs_is_refused(good, imported, tmp_path):
    parts = take_apart(good)
    parts.set_column("runs", "run_id", "20200101-000000-abcdef")
    assert _refusal(imported, parts.pack(), tmp_path).startswith(
        "tables/runs.parquet holds 1 run(s), not the one run its manifest names; "
    )
    parts = take_apart(good)
    runs = parts.table("runs")
    index = runs.schema.get_field_index("run_id")
    other = runs.set_column(index, "run_id", pa.array(["20200101-000000-abcdef"], runs.schema.field(index).type))
    parts.set_table("runs", pa.concat_tables([runs, other]))
    assert "tables/runs.parquet holds 2 run(s), not the one run its manifest names" in _refusal(
        imported, parts.pack(), tmp_path
    )


def test_a_second_machine_is_refused_as_more_than_the_run_s_machine(good, imported, tmp_path):
    tamper, _ = CASES["foreign machine rows"]
    problems = _refusal(imported, tamper(take_apart(good)), tmp_path).split("; ")
    assert problems[-1] == "tables/machines.parquet holds more than the run's machine"


def test_rows_this_schema_cannot_take_name_their_table_and_the_database_s_words(good, imported, tmp_path):
    tamper, _ = CASES["duplicated result ids"]
    message = _refusal(imported, tamper(take_apart(good)), tmp_path)
    assert message.startswith("tables/results.parquet holds rows this schema cannot take: ")
    assert "Duplicate key" in message or "PRIMARY KEY" in message or "primary key" in message, message


def _checked(folder: Path, data: bytes, **limits):
    bundle = folder / "bundle.zip"
    bundle.write_bytes(data)
    work = folder / "work"
    work.mkdir()
    return check_bundle(bundle, "bundle.zip", work, folder / "artifacts", BundleLimits(**limits))


@pytest.mark.parametrize(
    "limits, message",
    [
        ({"members": 3}, "it holds 17 files, more than 3"),
        ({"table_bytes": 1000}, "over the 0.000953674 MiB a table may have"),
        ({"manifest_bytes": 100}, "manifest.json inflates to 0.0 MiB, over the 9.53674e-05 MiB the manifest may have"),
        ({"total_bytes": 2**20 // 10}, "it inflates to 0.0 GiB, over 9.76557e-05 GiB"),
    ],
)
def test_a_bundle_over_a_limit_is_refused_before_anything_is_read(good, tmp_path, limits, message):
    with pytest.raises(BundleRefused) as refused:
        _checked(tmp_path, good.read_bytes(), **limits)
    assert str(refused.value).startswith("bundle bundle.zip refused: ") and message in str(refused.value)


def test_a_member_that_inflates_far_more_than_run_files_do_is_a_zip_bomb(good, tmp_path):
    parts = take_apart(good)
    parts.members["tables/samples.parquet"] = bytes(2**16)
    data = parts.pack()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("tables/samples.parquet")
    assert _refused_by_check(tmp_path, data, ratio_from_bytes=2**10, ratio=20.0) == (
        f"tables/samples.parquet inflates {info.file_size / info.compress_size:.0f} times: "
        "a zip bomb, not a run's files"
    )
    small = take_apart(good)
    small.members["tables/samples.parquet"] = bytes(2**9)  # as compressible, but below ratio_from_bytes
    (tmp_path / "small").mkdir()
    with pytest.raises(BundleRefused, match="not readable Parquet"):
        _checked(tmp_path / "small", small.pack(), ratio_from_bytes=2**10, ratio=20.0)


def test_an_image_over_its_limit_is_refused(good, tmp_path):
    parts = take_apart(good)
    parts.members["images/huge.jpg"] = b"\xff\xd8\xff" + os.urandom(2**20)
    with pytest.raises(BundleRefused, match=r"images/huge.jpg inflates to 1.0 MiB, over the 0.5 MiB an image may have"):
        _checked(tmp_path, parts.pack(), image_bytes=2**19)


def test_a_good_bundle_passes_with_its_rows_ids_and_images(good, tmp_path):
    parts = take_apart(good)
    parts.members["images/extra.jpg"] = a_jpeg()
    (tmp_path / "o'brien").mkdir()
    checked = _checked(tmp_path / "o'brien", parts.pack())  # a folder whose name SQL would have to quote
    run_id = parts.manifest["run_id"]
    assert checked.run_id == run_id and checked.identity == tuple(parts.manifest["identity"])
    assert set(checked.tables) == set(store.BUNDLE_TABLES)
    assert all(path.parent == tmp_path / "o'brien" / "work" / "checked" for path in checked.tables.values())
    assert sorted(checked.result_ids) == sorted(parts.table("results").column("result_id").to_pylist())
    carried = {name.removeprefix("images/") for name in parts.members if name.startswith("images/")}
    assert set(checked.images) == carried and "extra.jpg" in carried
    assert checked.images["extra.jpg"] == tmp_path / "o'brien" / "work" / "images" / "extra.jpg"
    assert checked.image_folder == tmp_path / "o'brien" / "artifacts" / run_id


def test_a_run_without_a_model_checksum_round_trips(good, tmp_path):
    """A run whose model has no SHA-256 (NULL) names it "None" in its identity, as write_bundle writes it."""
    parts = take_apart(good)
    parts.set_column("runs", "model_sha256", None)
    parts.manifest["identity"][3] = "None"
    bundle = tmp_path / "no-checksum.zip"
    bundle.write_bytes(parts.pack())
    db = tmp_path / "results.duckdb"
    assert api.import_bundle(str(db), str(bundle)) == "imported"
    assert api.import_bundle(str(db), str(bundle)) == "already present"


def test_images_are_pointed_at_their_place_here_and_other_paths_at_nothing(good, tmp_path, monkeypatch):
    """The bundle's own images land in the run's artifacts folder and the rows point there; a path to a file of
    the machine that wrote the row (not carried) becomes NULL. Checking writes nothing in the working folder."""
    parts = take_apart(good)
    rows = parts.table("result_images")
    names = [Path(path).name if path else None for path in rows.column("annotated_path").to_pylist()]
    carried = next(name for name in names if name)
    parts.members = {name: data for name, data in parts.members.items() if not name.startswith("images/")}
    parts.members[f"images/{carried}"] = a_jpeg()
    paths = [f"C:\\\\Users\\me\\{carried}"] + ["/etc/passwd"] * (rows.num_rows - 1)
    index = rows.schema.get_field_index("annotated_path")
    parts.set_table("result_images", rows.set_column(index, "annotated_path", pa.array(paths, pa.string())))
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(parts.pack())
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    db = tmp_path / "results.duckdb"
    assert api.import_bundle(str(db), str(bundle)) == "imported"
    assert list(here.iterdir()) == []
    with duckdb.connect(str(db), read_only=True) as con:
        kept = [row[0] for row in con.execute("SELECT annotated_path FROM result_images ORDER BY image").fetchall()]
    image = tmp_path / "results.artifacts" / parts.manifest["run_id"] / carried
    assert sorted(kept, key=str) == sorted([str(image)] + [None] * (rows.num_rows - 1), key=str)
    assert image.read_bytes() == a_jpeg()


RUN = "20260301-120000-abcdef"
MACHINE = {"machine_id": "m1", "label": "box", "cpu_model": "Test CPU", "arch": "x86_64", "physical_cores": 2,
           "logical_cores": 2, "ram_gb": 8, "isa_flags": [], "gpus": [], "os": "Linux", "python": "3.11",
           "cpu_id": "cpuid-1"}  # fmt: skip


def _run_with_images(db: Path, fingerprint: bool = True) -> Path:
    """A run whose result names three annotated images: its own (a file), its own that is gone, and a file
    elsewhere on this machine. Returns the run's own image."""
    from engine.records import ImageRow
    from tests.rows import flat_stats, result_record, run_row

    store.ensure_schema(db)
    store.upsert_machine(db, MACHINE)
    if not fingerprint:
        with duckdb.connect(str(db)) as con:
            con.execute("UPDATE machines SET fingerprint = NULL")
    store.insert_run(db, run_row(RUN))
    own = db.parent / "results.artifacts" / RUN / "0.jpg"
    own.parent.mkdir(parents=True)
    own.write_bytes(a_jpeg())
    elsewhere = db.parent / "photo.jpg"
    elsewhere.write_bytes(a_jpeg())
    other_run = db.parent / "results.artifacts" / "20260301-110000-fedcba" / "9.jpg"  # another run's own image
    other_run.parent.mkdir()
    other_run.write_bytes(a_jpeg())
    images = (ImageRow("a.jpg", str(own), 1), ImageRow("b.jpg", str(own.with_name("1.jpg")), 0),
              ImageRow("c.jpg", str(elsewhere), 0), ImageRow("d.jpg", str(other_run), 0))  # fmt: skip
    store.insert_result(db, result_record("r1", RUN, stats={"infer": flat_stats(3.0, 6)}, images=images))
    return own


def test_a_bundle_carries_the_run_s_rows_and_own_images_and_imports_as_they_were(tmp_path):
    from engine.bundle import write_bundle

    source = tmp_path / "here" / "results.duckdb"
    source.parent.mkdir()
    own = _run_with_images(source)
    bundle = write_bundle(str(source), RUN, str(tmp_path / "out" / "deep" / "run.zip"))
    assert write_bundle(str(source), RUN, str(tmp_path / "out" / "deep" / "again.zip")).is_file(), "folder exists"
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        members = {name: archive.read(name) for name in names - {"manifest.json"}}
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    assert names == {"manifest.json", "images/0.jpg", *(f"tables/{table}.parquet" for table in store.BUNDLE_TABLES)}
    assert manifest["format"] == 1 and manifest["run_id"] == RUN
    assert manifest["identity"] == list(store.run_identity(source, RUN))
    assert manifest["machine"] == MACHINE, "the machine's fingerprint as it was taken"
    assert manifest["files"] == {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}

    target = tmp_path / "there" / "results.duckdb"
    target.parent.mkdir()
    assert api.import_bundle(str(target), str(bundle)) == "imported"
    assert api.import_bundle(str(target), str(bundle)) == "already present"
    moved = tmp_path / "there" / "results.artifacts" / RUN / "0.jpg"
    assert moved.read_bytes() == own.read_bytes()
    paths = store.result_images(target, RUN).set_index("image")["annotated_path"]
    assert paths["a.jpg"] == str(moved) and paths[["b.jpg", "c.jpg", "d.jpg"]].isna().all(), "only the run's image"
    for table in ("runs", "results", "stats"):
        assert (
            store.run_table(target, RUN, table)
            .drop(columns="annotated_path", errors="ignore")
            .equals(store.run_table(source, RUN, table))
        ), table


def test_a_machine_without_its_fingerprint_travels_as_its_row(tmp_path):
    from engine.bundle import write_bundle

    db = tmp_path / "results.duckdb"
    _run_with_images(db, fingerprint=False)
    with zipfile.ZipFile(write_bundle(str(db), RUN, str(tmp_path / "run.zip"))) as archive:
        machine = json.loads(archive.read("manifest.json"))["machine"]
    assert machine["machine_id"] == "m1" and machine["fingerprint"] is None
    assert machine["first_seen"].startswith(str(store.now().year)), "its time as text"


def test_an_import_refuses_a_run_it_already_holds_otherwise(tmp_path):
    from engine.bundle import write_bundle

    db = tmp_path / "results.duckdb"
    _run_with_images(db)
    bundle = write_bundle(str(db), RUN, str(tmp_path / "run.zip"))
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE runs SET model_sha256 = 'another model'")
    conflict = f"^bundle teammate.zip refused: run {RUN} conflicts with a different run of the same id in {db}$"
    with pytest.raises(BundleRefused, match=conflict):
        api.import_bundle(str(db), str(bundle), name="teammate.zip")
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE runs SET run_id = '20260301-120000-000000'")
    with pytest.raises(BundleRefused, match=f"1 of its result ids are already in {db} under another run"):
        api.import_bundle(str(db), str(bundle))
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM results")
    (tmp_path / "results.artifacts" / RUN).mkdir(exist_ok=True)  # a folder left by the run deleted before
    assert api.import_bundle(str(db), str(bundle)) == "imported"
    assert (tmp_path / "results.artifacts" / RUN / "0.jpg").is_file()


def _refused_by_check(folder: Path, data: bytes, **limits) -> str:
    with pytest.raises(BundleRefused) as refused:
        _checked(folder, data, **limits)
    return str(refused.value).removeprefix("bundle bundle.zip refused: ")


def _with_manifest(good, change) -> bytes:
    parts = take_apart(good)
    parts.pack()  # fills in the checksums
    parts.keep_checksums = True
    change(parts.manifest)
    return parts.pack()


IDENTITY_REFUSAL = "its manifest's run identity is not the run id, start, machine and model it should be"
FILES_REFUSAL = "its manifest's file list is not a SHA-256 per file"


def _first_checksum(manifest: dict, change) -> None:
    first = next(iter(manifest["files"]))
    manifest["files"][first] = change(manifest["files"][first])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(identity=tuple(m["identity"])[:3]), IDENTITY_REFUSAL),
        (lambda m: m.update(identity=m["identity"] + ["extra"]), IDENTITY_REFUSAL),
        (lambda m: m.update(identity="the run"), IDENTITY_REFUSAL),
        (lambda m: m["identity"].__setitem__(2, 7), IDENTITY_REFUSAL),
        (lambda m: m["identity"].__setitem__(0, "20200101-000000-abcdef"), IDENTITY_REFUSAL),
        (lambda m: m.pop("identity"), IDENTITY_REFUSAL),
        (lambda m: m.update(files=list(m["files"])), FILES_REFUSAL),
        (lambda m: _first_checksum(m, str.upper), FILES_REFUSAL),
        (lambda m: _first_checksum(m, lambda value: value[:63]), FILES_REFUSAL),
        (lambda m: _first_checksum(m, lambda value: value + "0"), FILES_REFUSAL),
        (lambda m: _first_checksum(m, lambda value: "g" + value[1:]), FILES_REFUSAL),
        (lambda m: _first_checksum(m, lambda value: "X" + value[1:]), FILES_REFUSAL),
        (lambda m: m.pop("format"), "it has bundle format None; this engine reads 1"),
        (lambda m: m["files"].update({"images/ghost.jpg": "0" * 64}), "it is incomplete: images/ghost.jpg is missing"),
    ],
)
def test_a_manifest_not_of_the_expected_shape_is_refused(good, tmp_path, change, message):
    assert _refused_by_check(tmp_path, _with_manifest(good, change)) == message


def test_a_manifest_that_is_not_an_object_is_refused(good, tmp_path):
    parts = take_apart(good)
    data = _zip_of({**parts.members, "manifest.json": b"[1, 2]"})
    assert _refused_by_check(tmp_path, data) == "it is not a run bundle: manifest.json is not an object"


def _zip_of(members: dict[str, bytes], flag_bits: int = 0) -> bytes:
    """members zipped, each with these general-purpose flag bits set in its headers (zipfile writes its own)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    data = bytearray(out.getvalue())
    for info, entry in _central_entries(bytes(data)):
        for offset in (info.header_offset + 6, entry + 8):  # the local header's flags, the central entry's
            data[offset] |= flag_bits
    return bytes(data)


def _central_entries(data: bytes) -> list[tuple[zipfile.ZipInfo, int]]:
    """Each member of a zip with the offset of its central directory entry, the header zipfile reads first."""
    entries = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entry = archive.start_dir
        for info in archive.infolist():
            entries.append((info, entry))
            entry += 46 + len(info.orig_filename.encode()) + len(info.extra) + len(info.comment)
    return entries


def _claiming(data: bytes, member: str, compress_size: int | None = None, file_size: int | None = None) -> bytes:
    """A zip whose central directory claims other sizes for member than it has, as a crafted zip bomb's does:
    the limits are judged on these claims, before a byte is inflated."""
    out = bytearray(data)
    for info, entry in _central_entries(data):
        if info.filename == member:
            for offset, size in ((20, compress_size), (24, file_size)):
                if size is not None:
                    struct.pack_into("<I", out, entry + offset, size)
    return bytes(out)


def _packed_members(good) -> dict[str, bytes]:
    parts = take_apart(good)
    parts.pack()
    return {**parts.members, "manifest.json": json.dumps(parts.manifest).encode()}


def test_an_encrypted_member_is_refused_and_compression_options_are_not_encryption(good, tmp_path):
    assert _checked(tmp_path, _zip_of(_packed_members(good), flag_bits=0x2)).run_id  # zip -9 sets bit 1
    (tmp_path / "encrypted").mkdir()
    message = _refused_by_check(tmp_path / "encrypted", _zip_of(_packed_members(good), flag_bits=0x1))
    assert message == f"{next(iter(_packed_members(good)))} is encrypted"


def test_a_damaged_member_is_refused_naming_it(good, tmp_path):
    data = bytearray(take_apart(good).pack())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("tables/stats.parquet")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10 : start + 40] = bytes(30)  # the deflated bytes, not the headers
    assert _refused_by_check(tmp_path, bytes(data)).startswith("it is damaged: tables/stats.parquet cannot be read (")


def test_a_manifest_over_a_mebibyte_is_read_whole(good, tmp_path):
    """A run of thousands of images lists a checksum for each: its manifest is read in several chunks."""
    members = _packed_members(good)
    manifest = json.loads(members["manifest.json"])
    manifest["listed_by_a_newer_engine"] = [int(byte) for byte in os.urandom(2**19)]  # 1.9 MiB of numbers
    members["manifest.json"] = json.dumps(manifest).encode()
    assert _checked(tmp_path, _zip_of(members)).run_id


@pytest.mark.parametrize("name", ["images/Bus.JPG", "images/bus.jpg"])
def test_images_are_jpg_files_in_any_letter_case(good, tmp_path, name):
    parts = take_apart(good)
    parts.members[name] = a_jpeg()
    assert PurePosixPath(name).name in _checked(tmp_path, parts.pack()).images


@pytest.mark.parametrize(
    "name", ["tables/runs.PARQUET", "tables/runs.parquet.jpg", "images/bus.png", "x/manifest.json"]
)
def test_members_of_other_names_are_refused(good, tmp_path, name):
    parts = take_apart(good)
    parts.unlisted[name] = b"x"
    assert _refused_by_check(tmp_path, parts.pack()).startswith(f"it holds {name}, which is not manifest.json")


def test_limits_are_inclusive(good, tmp_path):
    """A bundle at exactly each limit passes: members, sizes of each kind and in all, the compression ratio's
    threshold."""
    data = good.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    table, image, manifest = (max(i.file_size for i in infos if i.filename.startswith(prefix))
                              for prefix in ("tables/", "images/", "manifest.json"))  # fmt: skip
    limits = {"members": len(infos), "table_bytes": table, "image_bytes": image, "manifest_bytes": manifest,
              "total_bytes": sum(i.file_size for i in infos), "ratio_from_bytes": 2**10, "ratio": 20.0}  # fmt: skip
    assert _checked(tmp_path, data, **limits).run_id, "every real member is above 1 KiB and none is a bomb"
    parts = take_apart(good)
    parts.members["tables/samples.parquet"] = bytes(2**10)  # as compressible as can be, but not above the threshold
    (tmp_path / "threshold").mkdir()
    assert _refused_by_check(tmp_path / "threshold", parts.pack(), ratio_from_bytes=2**10, ratio=20.0) == (
        "tables/samples.parquet is not readable Parquet"
    )


def test_a_bundle_needs_room_for_itself_and_its_checked_copy(good, tmp_path, monkeypatch):
    from collections import namedtuple

    from engine import bundle_check

    parts = take_apart(good)
    parts.members["images/large.jpg"] = b"\xff\xd8\xff" + os.urandom(2**20)  # some MiB in all: figures to round
    bundle = parts.pack()
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        total = sum(info.file_size for info in archive.infolist())
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(bundle_check.shutil, "disk_usage", lambda path: usage(0, 0, 2 * total - 1))
    message = _refused_by_check(tmp_path, bundle)
    assert (
        message
        == f"it inflates to {total / 2**20:.0f} MiB; the temporary folder has {(2 * total - 1) / 2**20:.0f} MiB free"
    )
    monkeypatch.setattr(bundle_check.shutil, "disk_usage", lambda path: usage(0, 0, 2 * total))
    (tmp_path / "room").mkdir()
    assert _checked(tmp_path / "room", bundle).run_id


def test_column_refusals_name_the_first_five_columns(good, tmp_path):
    long_name = "c" * 41
    added = [long_name, "b2", "b3", "b4", "b5", "b6"]
    parts = take_apart(good)
    rows = parts.table("results")
    for column in added:
        rows = rows.append_column(column, pa.array(["x"] * rows.num_rows))
    parts.set_table("results", rows)
    message = _refused_by_check(tmp_path, parts.pack())
    assert message == (
        f"tables/results.parquet has columns this schema does not have: '{long_name[:39]}…' (41 characters), b2, b3, "
        "b4, b5"
    )
    parts = take_apart(good)
    parts.set_table("results", parts.table("results").drop_columns(["warmup", "threads", "status", "runtime",
                                                                     "precision", "batch"]))  # fmt: skip
    (tmp_path / "missing").mkdir()
    assert _refused_by_check(tmp_path / "missing", parts.pack()) == (
        "tables/results.parquet lacks columns: batch, precision, runtime, status, threads"
    )


def test_a_column_named_twice_is_refused(good, tmp_path):
    """DuckDB reads the second of two equal names as name_1: a column this schema does not have."""
    parts = take_apart(good)
    rows = parts.table("machines")
    parts.set_table(
        "machines", pa.Table.from_arrays([*rows.columns, rows.column(0)], [*rows.column_names, rows.column_names[0]])
    )
    assert _refused_by_check(tmp_path, parts.pack()) == (
        "tables/machines.parquet has columns this schema does not have: machine_id_1"
    )


def test_a_manifest_that_is_not_json_or_is_damaged_is_refused_by_name(good, tmp_path):
    members = _packed_members(good)
    assert _refused_by_check(tmp_path, _zip_of({**members, "manifest.json": b"{not json"})) == (
        "it is not a run bundle: manifest.json is not JSON"
    )
    data = bytearray(_zip_of(members))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("manifest.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 5 : start + 25] = bytes(20)
    (tmp_path / "damaged").mkdir()
    with pytest.raises(BundleRefused, match=r"^bundle bundle.zip refused: it is damaged: manifest.json cannot be read"):
        _checked(tmp_path / "damaged", bytes(data))


def test_files_outside_the_manifest_s_list_are_named(good, tmp_path):
    outside = _with_manifest(good, lambda m: m["files"].update({"images/../../escape.txt": "0" * 64}))
    assert _refused_by_check(tmp_path, outside) == (
        "its manifest lists a file outside tables/ and images/: 'images/../../escape.txt'"
    )
    parts = take_apart(good)
    parts.unlisted["images/extra.jpg"] = a_jpeg()
    (tmp_path / "unlisted").mkdir()
    assert _refused_by_check(tmp_path / "unlisted", parts.pack()) == (
        "it holds images/extra.jpg, which its manifest does not list"
    )


@pytest.mark.parametrize(
    "case, refusal",
    [
        ("a truncated zip", "not a readable zip bundle"),
        ("a file that is not an image", "images/notes.jpg is not a JPEG image"),
        ("a manifest identity not the rows'", "its manifest's run identity does not match its runs table"),
        ("no manifest", "it is not a run bundle: manifest.json is missing"),
        ("a member twice", "it holds tables/runs.parquet twice"),
        ("an extra unknown table", "it holds tables/secrets.parquet, which is not manifest.json, a known table under "
         "tables/ or a .jpg under images/ (a bundle holds nothing outside tables/ and images/)"),
    ],
)  # fmt: skip
def test_refusals_in_full(good, imported, tmp_path, case, refusal):
    tamper, _ = CASES[case]
    assert _refusal(imported, tamper(take_apart(good)), tmp_path) == refusal


def test_a_member_inflating_exactly_the_ratio_passes(good, tmp_path):
    """The compression ratio is a limit like the others: a member at exactly it passes."""
    data = good.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = max(
            (i for i in archive.infolist() if i.file_size > 2**10), key=lambda i: i.file_size / i.compress_size
        )
    ratio = member.file_size / member.compress_size
    assert member.file_size == ratio * member.compress_size, "exactly at the limit, in floating point too"
    assert _checked(tmp_path, data, ratio_from_bytes=2**10, ratio=ratio).run_id


@pytest.mark.parametrize("claimed", [0, 1])
def test_a_member_claiming_next_to_no_compressed_bytes_is_judged_as_one_byte(good, tmp_path, claimed):
    """A member that claims to deflate to 0 or 1 bytes inflates its whole size times: at 1.5 times the ratio over
    one byte it is refused, and the message gives the ratio over one byte."""
    data = good.read_bytes()
    size = next(info.file_size for info, _ in _central_entries(data) if info.filename == "tables/samples.parquet")
    bomb = _claiming(data, "tables/samples.parquet", compress_size=claimed)
    assert _refused_by_check(tmp_path, bomb, ratio_from_bytes=10, ratio=size / 1.5) == (
        f"tables/samples.parquet inflates {size} times: a zip bomb, not a run's files"
    )


def test_the_total_a_bundle_claims_is_refused_in_gib(good, tmp_path):
    bomb = _claiming(good.read_bytes(), "tables/samples.parquet", file_size=2**28)
    assert _refused_by_check(tmp_path, bomb, ratio=1e12, total_bytes=2**27) == "it inflates to 0.3 GiB, over 0.125 GiB"


def test_a_bundle_the_database_cannot_merge_is_refused_naming_both(good, tmp_path):
    """Rows a damaged database still holds for the bundle's results (its results and runs rows deleted by hand)
    collide with the bundle's: the import is refused in one line, and the rows it had begun to add are undone."""
    db = tmp_path / "results.duckdb"
    assert api.import_bundle(str(db), str(good)) == "imported"
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM results")
        con.execute("DELETE FROM runs")
        left = {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("samples", "stats")}
    with pytest.raises(BundleRefused) as refused:
        api.import_bundle(str(db), str(good), name="teammate.zip")
    message = str(refused.value)
    assert message.startswith(f"bundle teammate.zip refused: it could not be merged into {db}: "), message
    assert "Duplicate key" in message or "PRIMARY KEY" in message, message
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        assert {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in left} == left
