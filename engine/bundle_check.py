"""Checking a run bundle before anything of it is written: a bundle is untrusted input (a teammate's upload, a mail
attachment), so every member, size, checksum, table, column and row is checked first, in a temporary folder.

What passes is a CheckedBundle: the run's rows as Parquet files written from an in-memory database of this
schema (what the import reads is exactly what was checked), and its images, each a JPEG under a plain name.
Any refusal is a BundleRefused whose message is one line naming the bundle and the problem.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import duckdb

from engine import store
from engine.config import BenchError
from engine.names import is_plain_file_name, one_line, require_id, shown

BUNDLE_FORMAT = 1
MANIFEST = "manifest.json"
JPEG_MAGIC = b"\xff\xd8\xff"
KIND_NAMES = {"manifest": "the manifest", "table": "a table", "image": "an image"}


@dataclass(frozen=True)
class BundleLimits:
    """Sane bounds for one run's bundle. A run over 200 photos with 30 configurations holds about 6,000 annotated
    images of a few hundred KB and tables of a few MB, far inside these; a zip bomb is not."""

    members: int = 50_000
    manifest_bytes: int = 16 * 2**20
    table_bytes: int = 512 * 2**20
    image_bytes: int = 16 * 2**20
    total_bytes: int = 4 * 2**30
    ratio: float = 100.0  # inflated/deflated above 1 MiB: Parquet and JPEG barely compress further
    ratio_from_bytes: int = 2**20


LIMITS = BundleLimits()


class BundleRefused(BenchError):
    def __init__(self, name: str, problem: str):
        super().__init__(f"bundle {name} refused: {one_line(problem)}")


@dataclass(frozen=True)
class CheckedBundle:
    run_id: str
    identity: tuple[str, ...]
    tables: dict[str, Path]  # table -> Parquet file written from the checked rows
    images: dict[str, Path]  # file name -> the extracted JPEG, to be moved into image_folder
    image_folder: Path
    result_ids: tuple[str, ...]


def check_bundle(
    path: str | Path, name: str, work: Path, artifacts_root: Path, limits: BundleLimits = LIMITS
) -> CheckedBundle:
    """Everything about the bundle that needs no target database; work is an empty folder of ours."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, EOFError, ValueError, NotImplementedError, zipfile.BadZipFile, zipfile.LargeZipFile):
        raise BundleRefused(name, "not a readable zip bundle") from None
    with archive:
        members = _members(archive, name, limits, work)
        manifest = _manifest(archive, members.pop(MANIFEST), name, limits)
        run_id = str(manifest["run_id"])
        extracted = _extract_listed(archive, members, manifest["files"], name, limits, work)
    tables = {PurePosixPath(member).stem: file for member, file in extracted.items() if member.startswith("tables/")}
    images = {PurePosixPath(member).name: file for member, file in extracted.items() if member.startswith("images/")}
    _check_columns(tables, name)
    for image, file in images.items():
        with open(file, "rb") as head:
            if head.read(len(JPEG_MAGIC)) != JPEG_MAGIC:
                raise BundleRefused(name, f"images/{shown(image)} is not a JPEG image")
    image_folder = artifacts_root / run_id
    clean = work / "checked"
    clean.mkdir()
    try:
        staged = store.stage_bundle_rows(tables)
    except store.BundleRowsError as error:
        raise BundleRefused(name, str(error)) from None
    with staged:
        problems = store.foreign_rows(staged, run_id)
        if problems:
            raise BundleRefused(name, "; ".join(problems))
        if not store.identity_matches(staged, manifest["identity"]):
            raise BundleRefused(name, "its manifest's run identity does not match its runs table")
        result_ids = tuple(row[0] for row in staged.execute("SELECT result_id FROM results").fetchall())
        store.relocate_images(staged, {image: str(image_folder / image) for image in images})
        checked = store.write_staged(staged, clean)
    return CheckedBundle(
        run_id=run_id,
        identity=tuple(manifest["identity"]),
        tables=checked,
        images=images,
        image_folder=image_folder,
        result_ids=result_ids,
    )


def _members(archive: zipfile.ZipFile, name: str, limits: BundleLimits, work: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, each of an allowed kind and size; the whole within the limits."""
    infos = archive.infolist()
    if len(infos) > limits.members:
        raise BundleRefused(name, f"it holds {len(infos)} files, more than {limits.members}")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        member = info.filename
        kind = _kind(member)
        if kind is None:
            raise BundleRefused(
                name,
                f"it holds {shown(member)}, which is not manifest.json, a known table under "
                "tables/ or a .jpg under images/ (a bundle holds nothing outside tables/ and "
                "images/)",
            )
        if member in members:
            raise BundleRefused(name, f"it holds {shown(member)} twice")
        if info.flag_bits & 0x1:
            raise BundleRefused(name, f"{shown(member)} is encrypted")
        limit = {"manifest": limits.manifest_bytes, "table": limits.table_bytes, "image": limits.image_bytes}[kind]
        if info.file_size > limit:
            raise BundleRefused(
                name,
                f"{shown(member)} inflates to {info.file_size / 2**20:.1f} MiB, over the "
                f"{limit / 2**20:g} MiB {KIND_NAMES[kind]} may have",
            )
        if info.file_size > limits.ratio_from_bytes and info.file_size > limits.ratio * max(info.compress_size, 1):
            raise BundleRefused(
                name,
                f"{shown(member)} inflates {info.file_size / max(info.compress_size, 1):.0f} "
                "times: a zip bomb, not a run's files",
            )
        members[member] = info
    if MANIFEST not in members:
        raise BundleRefused(name, "it is not a run bundle: manifest.json is missing")
    total = sum(info.file_size for info in infos)
    if total > limits.total_bytes:
        raise BundleRefused(name, f"it inflates to {total / 2**30:.1f} GiB, over {limits.total_bytes / 2**30:g} GiB")
    free = shutil.disk_usage(work).free
    if total * 2 > free:  # its files, then the checked copy of its tables
        raise BundleRefused(
            name, f"it inflates to {total / 2**20:.0f} MiB; the temporary folder has {free / 2**20:.0f} MiB free"
        )
    return members


def _kind(member: str) -> str | None:
    """manifest, table or image for a name a bundle may hold; None for anything else (a path that climbs or is
    absolute, a folder, a nested path, an unknown table, another file type, a control character)."""
    if member == MANIFEST:
        return "manifest"
    folder, _, file = member.partition("/")
    if not is_plain_file_name(file):
        return None
    if folder == "tables" and file.endswith(".parquet") and file.removesuffix(".parquet") in store.BUNDLE_TABLES:
        return "table"
    if folder == "images" and file.lower().endswith(".jpg"):
        return "image"
    return None


def _manifest(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: BundleLimits) -> dict:
    raw = _read_bounded(archive, info, name, limits.manifest_bytes)
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError):
        raise BundleRefused(name, "it is not a run bundle: manifest.json is not JSON") from None
    if not isinstance(manifest, dict):
        raise BundleRefused(name, "it is not a run bundle: manifest.json is not an object")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleRefused(
            name, f"it has bundle format {shown(manifest.get('format'))}; this engine reads {BUNDLE_FORMAT}"
        )
    try:
        require_id(manifest.get("run_id"))
    except BenchError as error:
        raise BundleRefused(name, f"its manifest's run id: {error}") from None
    identity = manifest.get("identity")
    if not (
        isinstance(identity, list)
        and len(identity) == len(store.RUN_IDENTITY)
        and all(isinstance(value, str) for value in identity)
        and identity[0] == manifest["run_id"]
    ):
        raise BundleRefused(
            name, "its manifest's run identity is not the run id, start, machine and model it should be"
        )
    files = manifest.get("files")
    if not (
        isinstance(files, dict)
        and all(
            isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
            for value in files.values()
        )
    ):
        raise BundleRefused(name, "its manifest's file list is not a SHA-256 per file")
    return manifest


def _extract_listed(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    listed: dict,
    name: str,
    limits: BundleLimits,
    work: Path,
) -> dict[str, Path]:
    """Every member into work/, each checked against its manifest's checksum; the manifest must list exactly the
    archive's members."""
    for member in listed:
        if _kind(member) not in ("table", "image"):
            raise BundleRefused(name, f"its manifest lists a file outside tables/ and images/: {shown(member)}")
        if member not in members:
            raise BundleRefused(name, f"it is incomplete: {shown(member)} is missing")
    for member in members:
        if member not in listed:
            raise BundleRefused(name, f"it holds {shown(member)}, which its manifest does not list")
    for table in store.REQUIRED_BUNDLE_TABLES:
        if f"tables/{table}.parquet" not in members:
            raise BundleRefused(name, f"it is incomplete: tables/{table}.parquet is missing")
    extracted = {}
    for member, info in members.items():
        folder = work / PurePosixPath(member).parent.name
        folder.mkdir(exist_ok=True)
        target = folder / PurePosixPath(member).name
        limit = limits.table_bytes if member.startswith("tables/") else limits.image_bytes
        if _extract_bounded(archive, info, target, name, limit) != listed[member]:
            raise BundleRefused(name, f"it is damaged: the checksum of {shown(member)} does not match its manifest")
        extracted[member] = target
    return extracted


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int):
    """A member's bytes in chunks, stopped past limit whatever its header says; a damaged member is a refusal."""
    read = 0
    try:
        with archive.open(info) as source:
            while chunk := source.read(2**20):
                read += len(chunk)
                if read > limit:
                    raise BundleRefused(name, f"{shown(info.filename)} inflates past {limit / 2**20:g} MiB")
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as error:
        raise BundleRefused(name, f"it is damaged: {shown(info.filename)} cannot be read ({error})") from None


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int) -> bytes:
    return b"".join(_chunks(archive, info, name, limit))


def _extract_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, name: str, limit: int) -> str:
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for chunk in _chunks(archive, info, name, limit):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _check_columns(tables: dict[str, Path], name: str) -> None:
    """Each table readable Parquet, with no column this schema lacks and every column its table was created with."""
    expected = store.table_columns()
    for table, file in tables.items():
        member = f"tables/{table}.parquet"
        try:
            columns = store.parquet_columns(file)
        except duckdb.Error:
            raise BundleRefused(name, f"{member} is not readable Parquet") from None
        current, created = expected[table]
        if len(set(columns)) != len(columns):
            raise BundleRefused(name, f"{member} names a column twice")
        unknown = [column for column in columns if column not in current]
        if unknown:
            raise BundleRefused(
                name, f"{member} has columns this schema does not have: {', '.join(shown(c, 40) for c in unknown[:5])}"
            )
        missing = sorted(created - set(columns))
        if missing:
            raise BundleRefused(name, f"{member} lacks columns: {', '.join(missing[:5])}")
