"""Where results live: a local DuckDB file (the default), or a DuckLake store that a fleet shares.

A `--db` value is either a file path (results.duckdb) or a shared-store address:

    ducklake+postgres://USER@HOST:PORT/DBNAME?data_path=/shared/folder

DuckLake keeps its catalog in PostgreSQL, which takes many writers at once, and the rows as Parquet files in
data_path, a folder every machine of the fleet reaches (a network mount, or an object store DuckDB can write).
Give the password through PGPASSWORD or ~/.pgpass rather than in the address. Annotated images go to
data_path/artifacts, beside the rows.

This module only opens connections; engine/store.py owns every statement of the schema.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import duckdb

from engine.config import BenchError

SCHEME = "ducklake+postgres"
LAKE = "lake"  # the catalog's name inside a connection
EXTENSIONS = ("ducklake", "postgres_scanner")
INIT_ATTEMPTS = 10


@dataclass(frozen=True)
class SharedStore:
    """A DuckLake catalog in PostgreSQL with its Parquet files in data_path."""

    host: str
    port: int
    dbname: str
    user: str
    password: str
    data_path: Path

    def conninfo(self) -> str:
        parts = {
            "dbname": self.dbname,
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "password": self.password,
        }
        return " ".join(f"{key}={_quote(value)}" for key, value in parts.items() if value)

    def scrub(self, text: str) -> str:
        """Error text without the password (PostgreSQL's messages repeat the connection string)."""
        return text.replace(self.password, "***") if self.password else text

    def display(self) -> str:
        """The address without its password."""
        user = f"{self.user}@" if self.user else ""
        return f"{SCHEME}://{user}{self.host}:{self.port}/{self.dbname}?data_path={self.data_path}"


def _quote(value: str) -> str:
    """libpq conninfo quoting: single quotes around a value with spaces or quotes."""
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def is_shared(db) -> bool:
    return str(db).strip().startswith(f"{SCHEME}:")


def parse_shared(db: str) -> SharedStore:
    """The parts of a shared-store address; a clear message for anything malformed."""
    example = f"{SCHEME}://bench@127.0.0.1:5432/bench?data_path=/shared/bench-lake"
    parts = urlsplit(str(db).strip())
    db = re.sub(r"(://[^/@]*?):[^/@]*@", r"\1:***@", str(db).strip())  # messages end up in CI logs: no password
    query = parse_qs(parts.query)
    if parts.scheme != SCHEME or not parts.hostname or not parts.path.strip("/"):
        raise BenchError(f"shared store address {db!r} is not of the form {example}")
    try:
        port = parts.port or 5432
    except ValueError:
        raise BenchError(f"shared store address {db!r} has a port that is not a number") from None
    data_path = (query.get("data_path") or [""])[0]
    if not data_path or not Path(data_path).is_absolute():
        raise BenchError(
            f"shared store address {db!r} needs data_path=<an absolute folder> for its Parquet files, e.g. {example}"
        )
    unknown = set(query) - {"data_path"}
    if unknown:
        raise BenchError(
            f"shared store address {db!r} has unknown options {', '.join(sorted(unknown))}: "
            "only data_path is understood"
        )
    return SharedStore(
        host=parts.hostname,
        port=port,
        dbname=unquote(parts.path.strip("/")),
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        data_path=Path(data_path),
    )


def display(db) -> str:
    return parse_shared(db).display() if is_shared(db) else str(db)


def exists(db) -> bool:
    """A file that is there, or any shared store (whether it holds the schema yet is the schema's business)."""
    return True if is_shared(db) else Path(db).exists()


def change_stamp(db) -> tuple:
    """Changes whenever results are written: the file's and its write-ahead log's stat, or the shared store's
    latest snapshot (every DuckLake commit makes one)."""
    if is_shared(db):
        with open_shared(db) as con:
            return ("snapshot", con.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots('{LAKE}')").fetchone()[0])
    stamp = []
    for path in (Path(db), Path(f"{db}.wal")):
        try:
            info = path.stat()
            stamp.append((info.st_mtime_ns, info.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def artifacts_root(db) -> Path:
    """Annotated images: beside the file (results.duckdb -> results.artifacts/), or in the store's data folder."""
    if is_shared(db):
        return parse_shared(db).data_path / "artifacts"
    path = Path(db).resolve()
    return path.parent / f"{path.stem}.artifacts"


def check_location(db: str) -> None:
    """Fail before any work when the results cannot be written there."""
    if is_shared(db):
        store = parse_shared(db)
        try:
            store.data_path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BenchError(f"the shared store's data folder {store.data_path} cannot be created: {error}") from None
        if not os.access(store.data_path, os.W_OK):
            raise BenchError(f"the shared store's data folder {store.data_path} is not writable")
        return
    path = Path(db)
    if path.is_dir():
        raise BenchError(f"database path {db} is a folder: give a file path such as results.duckdb")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise BenchError(f"database folder {parent} does not exist: create it or choose another --db")
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        raise BenchError(f"database path {db} is not writable: choose another --db")


# Shared stores: one DuckDB instance per process and store, with the catalog attached once (loading the
# extensions and attaching costs ~0.5 s); each connect() takes its own cursor, which is safe across threads.

_instances: dict[SharedStore, duckdb.DuckDBPyConnection] = {}
_instances_lock = threading.Lock()


def _extension_folder() -> Path | None:
    """Where the duckdb-ext-* packages put the extension files (no download needed)."""
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{duckdb.__version__}"
    platforms = sorted(root.glob("*")) if root.is_dir() else []
    return platforms[0] if len(platforms) == 1 else None


def _load_extensions(con) -> None:
    folder = _extension_folder()
    for name in EXTENSIONS:
        file = folder / f"{name}.duckdb_extension" if folder else None
        try:
            con.execute(f"LOAD '{file}'" if file and file.exists() else f"LOAD {name}")
        except duckdb.Error as error:
            raise BenchError(
                f"the DuckDB extension {name} is not installed ({error}): "
                "pip install -r requirements.txt installs duckdb-ext-ducklake and duckdb-ext-postgres"
            ) from None


def _attach(store: SharedStore) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    try:
        _load_extensions(con)
        store.data_path.mkdir(parents=True, exist_ok=True)
        # ATTACH takes no parameters: the values are quoted as SQL string literals
        statement = (
            f"ATTACH {_literal('ducklake:postgres:' + store.conninfo())} AS {LAKE} "
            f"(DATA_PATH {_literal(str(store.data_path) + '/')})"
        )
        for attempt in range(INIT_ATTEMPTS):
            try:
                con.execute(statement)
                break
            except duckdb.Error as error:
                # The first attach of a new catalog creates DuckLake's tables; machines starting together race
                # there, and the losers find the tables made when they try again.
                if "initialize DuckLake" not in str(error) or attempt == INIT_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
    except duckdb.Error as error:
        con.close()
        raise BenchError(f"the shared store {store.display()} cannot be reached: {store.scrub(str(error))}") from None
    except OSError as error:
        con.close()
        raise BenchError(f"the shared store's data folder {store.data_path} cannot be used: {error}") from None
    except BaseException:
        con.close()
        raise
    return con


def _shared_cursor(store: SharedStore):
    with _instances_lock:
        if store not in _instances:
            _instances[store] = _attach(store)
        cursor = _instances[store].cursor()
    cursor.execute(f"USE {LAKE}")
    return cursor


def forget(db) -> None:
    """Drop this process's attachment to a shared store (the next connect() attaches afresh)."""
    if not is_shared(db):
        return
    with _instances_lock:
        con = _instances.pop(parse_shared(db), None)
    if con is not None:
        con.close()


@contextmanager
def open_shared(db):
    """A cursor on the shared store; a lost PostgreSQL connection makes the next call attach afresh."""
    store = parse_shared(db)
    cursor = _shared_cursor(store)
    try:
        yield cursor
    except duckdb.Error as error:
        if "connection" in str(error).lower() or "postgres" in str(error).lower():
            forget(db)
        raise
    finally:
        cursor.close()
