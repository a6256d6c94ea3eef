"""Run bundles: one self-contained zip per run, to carry results between machines and merge them.

A bundle holds the run's rows of every table as Parquet, its annotated images, and manifest.json (format
version, run id, the machine's fingerprint, and a SHA-256 per file). Importing checks the whole bundle first
(engine/bundle_check.py: it is untrusted input), then merges in one transaction and moves the images into place
after the commit; a run already present with the same identity is skipped (importing twice adds nothing), one
present with another identity is a conflict.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import duckdb

from engine import database, store
from engine.bundle_check import BUNDLE_FORMAT, BundleRefused, CheckedBundle, check_bundle
from engine.database import artifacts_root
from engine.names import shown
from engine.paths import is_annotated_image


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(db: str, run_id: str, out_path: str) -> Path:
    import pyarrow.parquet as pq

    store.require_run(db, run_id)
    tables = store.export_run_arrow(db, run_id)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    checksums: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for table, rows in tables.items():
            local = Path(folder) / f"{table}.parquet"
            pq.write_table(rows, local)
            data = local.read_bytes()
            archive.writestr(f"tables/{table}.parquet", data)
            checksums[f"tables/{table}.parquet"] = _sha256(data)
        for path in sorted({p for p in tables["result_images"].column("annotated_path").to_pylist() if p}):
            if is_annotated_image(path, run_id) and Path(path).is_file():  # only the run's own images travel
                data = Path(path).read_bytes()
                archive.writestr(f"images/{Path(path).name}", data)
                checksums[f"images/{Path(path).name}"] = _sha256(data)
        machine = tables["machines"].to_pylist()[0]
        manifest = {
            "format": BUNDLE_FORMAT,
            "run_id": run_id,
            "identity": store.run_identity(db, run_id),
            "machine": json.loads(machine["fingerprint"]) if machine.get("fingerprint") else machine,
            "files": checksums,
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, default=str))
    return out


def import_bundle(db: str, bundle_path: str, name: str | None = None) -> str:
    """Merge one bundle into db; returns 'imported' or 'already present'. name: how messages call the bundle (an
    upload's own name rather than the file it was saved as). A bundle that fails any check (bundle_check) is
    refused with one line and leaves no trace: nothing in the database, no image written."""
    name = shown(name or Path(bundle_path).name)
    with tempfile.TemporaryDirectory(prefix="yolo-bench-import-") as work:
        checked = check_bundle(bundle_path, name, Path(work), artifacts_root(db))
        if database.exists(db):
            store.check_readable(db)
            if store.run_identity(db, checked.run_id) is not None:
                if store.run_with_identity(db, list(checked.identity)):
                    return "already present"
                raise BundleRefused(
                    name,
                    f"run {checked.run_id} conflicts with a different run of the same id in {database.display(db)}",
                )
            present = store.result_ids_present(db, list(checked.result_ids))
            if present:
                raise BundleRefused(
                    name, f"{present} of its result ids are already in {database.display(db)} under another run"
                )
        store.ensure_schema(db)
        try:
            store.import_run_parquet(db, checked.tables)
        except duckdb.Error as error:
            raise BundleRefused(name, f"it could not be merged into {database.display(db)}: {error}") from None
        _move_images(checked)
    return "imported"


def _move_images(checked: CheckedBundle) -> None:
    """The images into the run's folder, once its rows are committed."""
    if not checked.images:
        return
    checked.image_folder.mkdir(parents=True, exist_ok=True)
    for image, file in checked.images.items():
        shutil.move(file, checked.image_folder / image)
