"""A real PostgreSQL server for the shared-store tests, started from Debian's binaries on 127.0.0.1.

`make test` installs the package when it is missing and sets YOLO_BENCH_REQUIRE_POSTGRES=1, so there a
missing server fails the tests instead of skipping them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "bench"


@dataclass
class Server:
    folder: Path
    port: int
    bin: Path
    as_user: list[str]

    def address(self, dbname: str, data_path: Path) -> str:
        return f"ducklake+postgres://{USER}@127.0.0.1:{self.port}/{dbname}?data_path={data_path}"

    def create_database(self, name: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def _bin_folder() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start() -> Server:
    bin_folder = _bin_folder()
    if bin_folder is None:
        message = "PostgreSQL is not installed (Debian package postgresql; `make test` installs it)"
        if os.environ.get("YOLO_BENCH_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="yolo-bench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as Debian's postgres user
        os.chmod(folder, 0o755)
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*as_user, str(bin_folder / "initdb"), "-D", str(folder / "data"), "-U", USER, "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [
            *as_user,
            str(bin_folder / "pg_ctl"),
            "-D",
            str(folder / "data"),
            "-l",
            str(folder / "log"),
            "-o",
            f"-h 127.0.0.1 -p {port} -k {folder}",
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return Server(folder=folder, port=port, bin=bin_folder, as_user=as_user)
