"""Run bundles: one self-contained zip per run, to carry results between machines and merge them.

A bundle holds the run's rows of every table as Parquet, its annotated images, and manifest.json (format
version, run id, the machine's fingerprint, and a SHA-256 per file). Importing checks every checksum,
then merges in one transaction; a run already present with the same identity is skipped (importing
twice adds nothing), one present with another identity is a conflict.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from engine import database, store
from engine.config import BenchError
from engine.paths import artifacts_dir

BUNDLE_FORMAT = 1


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
        for path in sorted(set(p for p in tables["result_images"].column("annotated_path").to_pylist() if p)):
            if Path(path).is_file():
                data = Path(path).read_bytes()
                archive.writestr(f"images/{Path(path).name}", data)
                checksums[f"images/{Path(path).name}"] = _sha256(data)
        machine = tables["machines"].to_pylist()[0]
        manifest = {"format": BUNDLE_FORMAT, "run_id": run_id, "identity": store.run_identity(db, run_id),
                    "machine": json.loads(machine["fingerprint"]) if machine.get("fingerprint") else machine,
                    "files": checksums}
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, default=str))
    return out


def _read_manifest(archive: zipfile.ZipFile, name: str) -> dict:
    try:
        manifest = json.loads(archive.read("manifest.json"))
    except (KeyError, ValueError):
        raise BenchError(f"{name} is not a run bundle: manifest.json is missing or unreadable") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BenchError(f"{name} has bundle format {manifest.get('format')}; this engine reads {BUNDLE_FORMAT}")
    for member, expected in manifest.get("files", {}).items():
        parts = PurePosixPath(member).parts
        if len(parts) != 2 or parts[0] not in ("tables", "images") or parts[1] in ("..", "."):
            raise BenchError(f"{name} lists a file outside tables/ and images/: {member!r}")
        try:
            actual = _sha256(archive.read(member))
        except KeyError:
            raise BenchError(f"{name} is incomplete: {member} is missing") from None
        if actual != expected:
            raise BenchError(f"{name} is damaged: the checksum of {member} does not match its manifest")
    return manifest


def import_bundle(db: str, bundle_path: str) -> str:
    """Merge one bundle into db; returns 'imported' or 'already present'."""
    name = Path(bundle_path).name
    try:
        archive = zipfile.ZipFile(bundle_path)
    except (OSError, zipfile.BadZipFile):
        raise BenchError(f"{name} is not a readable zip bundle") from None
    with archive:
        manifest = _read_manifest(archive, name)
        run_id = str(manifest["run_id"])
        store.ensure_schema(db)
        present = store.run_identity(db, run_id)
        if present is not None:
            if list(present) == [str(v) for v in manifest["identity"]]:
                return "already present"
            raise BenchError(f"run {run_id} in {name} conflicts with a different run of the same id in "
                             f"{database.display(db)}")
        with tempfile.TemporaryDirectory() as folder:
            files = {}
            for member in manifest["files"]:
                if member.startswith("tables/"):
                    target = Path(folder) / PurePosixPath(member).name
                    target.write_bytes(archive.read(member))
                    files[PurePosixPath(member).stem] = target
            images = artifacts_dir(db, run_id)
            moved = {}
            for member in manifest["files"]:
                if member.startswith("images/"):
                    images.mkdir(parents=True, exist_ok=True)
                    target = images / PurePosixPath(member).name
                    target.write_bytes(archive.read(member))
                    moved[PurePosixPath(member).name] = str(target)
            old_paths = _old_image_paths(files.get("result_images"))
            store.import_run_parquet(db, run_id, files,
                                     {old: moved[Path(old).name] for old in old_paths if Path(old).name in moved})
    return "imported"


def _old_image_paths(parquet_path) -> list[str]:
    if parquet_path is None:
        return []
    import pyarrow.parquet as pq

    return [p for p in pq.read_table(parquet_path, columns=["annotated_path"]).column(0).to_pylist() if p]
