"""Runtimes that fail on purpose, registered only in tests via YOLO_BENCH_EXTRA_RUNTIMES=tests.fault_runtimes.

Each wraps the real ONNX Runtime, so export and loading are real up to the fault.
"""

from __future__ import annotations

import os
import signal
import time

from engine.runtimes.onnxruntime import OnnxRuntime


class CrashingRuntime(OnnxRuntime):
    """The process dies with SIGSEGV during inference, as a native library bug would."""

    name = "fault-segfault"

    def infer(self, batch):
        os.kill(os.getpid(), signal.SIGSEGV)


class KilledRuntime(OnnxRuntime):
    """The process is killed outright (what the kernel's OOM killer does)."""

    name = "fault-killed"

    def load(self):
        super().load()
        os.kill(os.getpid(), signal.SIGKILL)


class HangingRuntime(OnnxRuntime):
    """Inference never returns."""

    name = "fault-hang"

    def infer(self, batch):
        while True:
            time.sleep(1)


class RaisingRuntime(OnnxRuntime):
    """Inference raises a Python exception."""

    name = "fault-raise"

    def infer(self, batch):
        raise RuntimeError("injected failure in infer")


class CorruptExportRuntime(OnnxRuntime):
    """The export's file is damaged on disk (a full disk, a bad copy): loading must fail cleanly."""

    name = "fault-corrupt-export"

    @classmethod
    def artifact(cls, export_output, precision):
        corrupt = export_output.with_name("corrupt.onnx")
        data = bytearray(export_output.read_bytes())
        data[len(data) // 3 : len(data) // 3 + 4096] = bytes(4096)
        corrupt.write_bytes(bytes(data[: len(data) // 2]))
        return corrupt


class MemoryHogRuntime(OnnxRuntime):
    """Inference allocates and touches memory without end, as a leak would."""

    name = "fault-memory"

    def infer(self, batch):
        import numpy as np

        hoard = []
        while True:
            hoard.append(np.ones(50 * 2**20, dtype=np.uint8))  # 50 MB, every page written
            time.sleep(0.02)


class InFlightHangRuntime(OnnxRuntime):
    """One at a time it works; with requests in flight it never returns (AsyncInferQueue has hung so on AMD
    EPYC CPUs, ultralytics/ultralytics#25923)."""

    name = "fault-in-flight-hang"

    def throughput(self, batches, requests, seconds, conf, iou):
        while True:
            time.sleep(1)


class InFlightCrashRuntime(OnnxRuntime):
    """One at a time it works; with requests in flight the process dies with SIGSEGV."""

    name = "fault-in-flight-crash"

    def throughput(self, batches, requests, seconds, conf, iou):
        os.kill(os.getpid(), signal.SIGSEGV)


class InFlightRaisingRuntime(OnnxRuntime):
    """One at a time it works; with requests in flight it raises."""

    name = "fault-in-flight-raise"

    def throughput(self, batches, requests, seconds, conf, iou):
        raise RuntimeError("injected failure in flight")


RUNTIMES = [
    CrashingRuntime,
    KilledRuntime,
    HangingRuntime,
    RaisingRuntime,
    CorruptExportRuntime,
    MemoryHogRuntime,
    InFlightHangRuntime,
    InFlightCrashRuntime,
    InFlightRaisingRuntime,
]
