"""The README's `make run` serves the dashboard on 127.0.0.1 only: other machines reach it only when the person
who runs it says so (--server.address)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

import psutil

from tests.conftest import ROOT
from tests.test_browser import free_port


def listening_addresses(root: psutil.Process, port: int) -> set[str]:
    addresses = set()
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        addresses |= {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    return addresses


def test_make_run_binds_the_loopback_address_only(tmp_path):
    port = free_port()
    log = open(tmp_path / "make-run.log", "w")  # noqa: SIM115 - the server writes it until it is stopped below
    env = {**os.environ, "YOLO_BENCH_DB": str(tmp_path / "r.duckdb")}
    server = subprocess.Popen(
        ["make", "run", f"PORT={port}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "make-run.log").read_text()
            time.sleep(0.5)
        assert listening_addresses(psutil.Process(server.pid), port) == {"127.0.0.1"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()
