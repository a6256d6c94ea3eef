"""The bundle check in-process, against a DuckDB file only: test_bundle_tampering.py's tampered bundles (but the two
that inflate to hundreds of MiB, whose limits are checked here with small limits), each refused with one line that
names the problem, leaving the file and its folder as they were; and what a good bundle becomes when it passes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from engine import api, store
from engine.bundle_check import BundleLimits, BundleRefused, check_bundle
from tests.test_bundle_tampering import CASES, a_jpeg, take_apart, tree
from tests.test_fixture_bundle import FIXTURES

GOOD = FIXTURES / "run-before-typed-records.zip"
LARGE = ("a zip bomb", "an oversized image")  # 200 MiB and 17 MiB members: their limits are checked below, small


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """A DuckDB file holding the good bundle's run (the tests refuse bundles into it; none changes it)."""
    db = tmp_path_factory.mktemp("imported") / "results.duckdb"
    assert api.import_bundle(str(db), str(GOOD)) == "imported"
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
def test_a_tampered_bundle_is_refused_and_changes_nothing(imported, tmp_path, case):
    tamper, expected = CASES[case]
    assert expected in _refusal(imported, tamper(take_apart(GOOD)), tmp_path)


@pytest.mark.parametrize(
    "table, owner",
    [(table, store.OWNER_COLUMN[table].removesuffix("_id")) for table in store.BUNDLE_TABLES if table != "runs"],
)
def test_a_row_of_another_owner_is_named_by_table_and_owner(imported, tmp_path, table, owner):
    tamper, _ = CASES[f"a row of {table} belonging elsewhere"]
    problems = _refusal(imported, tamper(take_apart(GOOD)), tmp_path).split("; ")
    assert re.fullmatch(rf"tables/{table}\.parquet holds 1 row\(s\) of another {owner}", problems[0]), problems


def test_a_runs_table_of_another_run_or_of_two_runs_is_refused(imported, tmp_path):
    parts = take_apart(GOOD)
    parts.set_column("runs", "run_id", "20200101-000000-abcdef")
    assert _refusal(imported, parts.pack(), tmp_path).startswith(
        "tables/runs.parquet holds 1 run(s), not the one run its manifest names; "
    )
    parts = take_apart(GOOD)
    runs = parts.table("runs")
    index = runs.schema.get_field_index("run_id")
    other = runs.set_column(index, "run_id", pa.array(["20200101-000000-abcdef"], runs.schema.field(index).type))
    parts.set_table("runs", pa.concat_tables([runs, other]))
    assert "tables/runs.parquet holds 2 run(s), not the one run its manifest names" in _refusal(
        imported, parts.pack(), tmp_path
    )


def test_a_second_machine_is_refused_as_more_than_the_run_s_machine(imported, tmp_path):
    tamper, _ = CASES["foreign machine rows"]
    problems = _refusal(imported, tamper(take_apart(GOOD)), tmp_path).split("; ")
    assert problems[-1] == "tables/machines.parquet holds more than the run's machine"


def test_rows_this_schema_cannot_take_name_their_table_and_the_database_s_words(imported, tmp_path):
    tamper, _ = CASES["duplicated result ids"]
    message = _refusal(imported, tamper(take_apart(GOOD)), tmp_path)
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
        ({"members": 3}, "it holds 16 files, more than 3"),
        ({"table_bytes": 1000}, "over the 0.000953674 MiB a table may have"),
        ({"manifest_bytes": 100}, "manifest.json inflates to 0.0 MiB, over the 9.53674e-05 MiB the manifest may have"),
        ({"total_bytes": 2**20 // 10}, "it inflates to 0.0 GiB, over 9.76557e-05 GiB"),
    ],
)
def test_a_bundle_over_a_limit_is_refused_before_anything_is_read(tmp_path, limits, message):
    with pytest.raises(BundleRefused) as refused:
        _checked(tmp_path, GOOD.read_bytes(), **limits)
    assert message in str(refused.value)


def test_a_member_that_inflates_far_more_than_run_files_do_is_a_zip_bomb(tmp_path):
    parts = take_apart(GOOD)
    parts.members["tables/samples.parquet"] = bytes(2**16)
    with pytest.raises(BundleRefused, match=r"tables/samples.parquet inflates \d+ times: a zip bomb"):
        _checked(tmp_path, parts.pack(), ratio_from_bytes=2**10, ratio=20.0)
    small = take_apart(GOOD)
    small.members["tables/samples.parquet"] = bytes(2**9)  # as compressible, but below ratio_from_bytes
    (tmp_path / "small").mkdir()
    with pytest.raises(BundleRefused, match="not readable Parquet"):
        _checked(tmp_path / "small", small.pack(), ratio_from_bytes=2**10, ratio=20.0)


def test_an_image_over_its_limit_is_refused(tmp_path):
    parts = take_apart(GOOD)
    parts.members["images/huge.jpg"] = b"\xff\xd8\xff" + os.urandom(2**20)
    with pytest.raises(BundleRefused, match=r"images/huge.jpg inflates to 1.0 MiB, over the 0.5 MiB an image may have"):
        _checked(tmp_path, parts.pack(), image_bytes=2**19)


def test_a_good_bundle_passes_with_its_rows_ids_and_images(tmp_path):
    parts = take_apart(GOOD)
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


def test_a_run_without_a_model_checksum_round_trips(tmp_path):
    """A run whose model has no SHA-256 (NULL) names it "None" in its identity, as write_bundle writes it."""
    parts = take_apart(GOOD)
    parts.set_column("runs", "model_sha256", None)
    parts.manifest["identity"][3] = "None"
    bundle = tmp_path / "no-checksum.zip"
    bundle.write_bytes(parts.pack())
    db = tmp_path / "results.duckdb"
    assert api.import_bundle(str(db), str(bundle)) == "imported"
    assert api.import_bundle(str(db), str(bundle)) == "already present"


def test_images_are_pointed_at_their_place_here_and_other_paths_at_nothing(tmp_path, monkeypatch):
    """The bundle's own images land in the run's artifacts folder and the rows point there; a path to a file of
    the machine that wrote the row (not carried) becomes NULL. Checking writes nothing in the working folder."""
    parts = take_apart(GOOD)
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
