"""Machine fingerprint and a stable machine_id derived from its hardware. Imports no runtime library."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path

LIBRARIES = (
    "ultralytics",
    "torch",
    "torchvision",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "nncf",
    "tensorflow",
    "ai-edge-litert",
    "tensorrt",
    "ncnn",
    "pnnx",
    "MNN",
    "paddlepaddle",
    "x2paddle",
    "executorch",
    "coremltools",
    "numpy",
    "opencv-python",
    "duckdb",
    "streamlit",
)
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "neon",
    "asimd",
)


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


CPUINFO = Path("/proc/cpuinfo")
# What tells two CPU generations apart where a hypervisor names both "AMD EPYC" with the same flags (a Zen 4 and a
# Zen 5 VM: family 25 and 26): x86's family, model and stepping, Arm's implementer, part, variant and revision.
CPU_ID_FIELDS = {
    "cpu family": "family",
    "model": "model",
    "stepping": "stepping",
    "CPU implementer": "implementer",
    "CPU part": "part",
    "CPU variant": "variant",
    "CPU revision": "revision",
}


def _cpuinfo() -> dict:
    """The first CPU's fields of /proc/cpuinfo that the fingerprint uses; empty where there is no such file."""
    fields: dict = {}
    try:
        text = CPUINFO.read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "flags", "Features", *CPU_ID_FIELDS) and key not in fields:
            fields[key] = value.strip()
    return fields


def cpu_id(info: dict) -> str:
    """'family 25 model 17 stepping 1' (x86) or 'implementer 0x41 part 0xd0c …' (Arm); '' where none is known."""
    return " ".join(f"{name} {info[key]}" for key, name in CPU_ID_FIELDS.items() if info.get(key))


def told_apart(named: list[tuple[str, str]]) -> list[str]:
    """Each (machine id, name) pair's name, in order, followed by the start of its machine id where machines share
    the name: two CI runners both run with --label ci read "ci (f00dfeed)" and "ci (30c5d48e)"."""
    ids_of: dict[str, set] = {}
    for machine_id, name in named:
        ids_of.setdefault(name, set()).add(machine_id)
    return [f"{name} ({machine_id[:8]})" if len(ids_of[name]) > 1 else name for machine_id, name in named]


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def gpus() -> list[dict]:
    """NVIDIA GPUs through nvidia-smi, when it exists; an empty list otherwise."""
    if not shutil.which("nvidia-smi"):
        return []
    query = "name,memory.total,driver_version,clocks.max.sm,power.limit"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 5:
            found.append(dict(zip(("name", "memory_mib", "driver", "max_sm_clock_mhz", "power_limit_w"), parts)))
    return found


def fingerprint(label: str = "") -> dict:
    import psutil

    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    cpu_model = info.get("model name") or platform.processor() or platform.machine()
    gpu_list = gpus()
    hardware = {
        "cpu_model": cpu_model,
        "cpu_id": cpu_id(info),
        "arch": platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False) or 0,
        "logical_cores": psutil.cpu_count(logical=True) or 0,
        "ram_gb": round(psutil.virtual_memory().total / 2**30),
        "isa_flags": sorted(flag for flag in ISA_FLAGS if flag in flags),
        "gpus": [gpu["name"] for gpu in gpu_list],
    }
    machine_id = hashlib.sha256(json.dumps(hardware, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "machine_id": machine_id,
        "label": label or socket.gethostname(),
        **hardware,
        "gpu_details": gpu_list,
        "os": f"{platform.system()} {platform.release()}",
        "kernel": platform.version(),
        "python": sys.version.split()[0],
        "libraries": library_versions(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
    }
