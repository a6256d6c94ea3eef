"""The machine's peak rates: the fp32 FMA kernel, and the bf16 / int8 dot products where the CPU has them."""

import os
from datetime import UTC

import pytest

from engine.machine import fingerprint
from engine.peak import lacks_rates, measure_peak
from tests.conftest import engine


def test_peaks_are_measured_for_what_the_cpu_has():
    flags = set(fingerprint()["isa_flags"])
    peak = measure_peak(1, repeats=2, seconds_per_repeat=0.05)
    assert peak.gflops_fp32 > 0 and peak.threads == 1
    amx = {"amx_tile", "amx_bf16", "amx_int8"} <= flags
    if amx:  # 14x (bf16) and 29x (int8) the fp32 FMA rate on a Xeon with AMX
        assert peak.gflops_bf16 > 4 * peak.gflops_fp32 and peak.gops_int8 > 4 * peak.gflops_fp32, peak
        assert "tdpbf16ps" in peak.method and "tdpbusd" in peak.method and "vdpbf16ps" in peak.method
    elif "avx512_bf16" in flags:
        # One vdpbf16ps does twice the multiply-adds of an fp32 FMA of the same width; measured, it runs at about
        # half the FMA's flop rate on Intel cores (a Xeon with AMX, or one whose hypervisor hides AMX) and at about
        # the same rate on AMD's Zen 4 and 5. Outside these bounds the kernel measures something else.
        assert 0.3 * peak.gflops_fp32 < peak.gflops_bf16 < 2.5 * peak.gflops_fp32, peak
        assert "vdpbf16ps" in peak.method
    else:
        assert peak.gflops_bf16 is None
    if "avx512_vnni" in flags and not amx:
        assert peak.gops_int8 > 1.3 * peak.gflops_fp32, peak
    elif not amx:
        assert peak.gops_int8 is None
    assert not lacks_rates(peak.to_dict())


def test_a_peak_stored_before_bf16_and_int8_is_measured_again_where_the_cpu_has_them():
    flags = set(fingerprint()["isa_flags"])
    old = {"gflops_fp32": 300.0, "method": "AVX-512 FMA kernel, 12 independent chains x 16 fp32 lanes"}
    assert lacks_rates(old) == ("avx512_bf16" in flags or "avx512_vnni" in flags)
    assert not lacks_rates({"gflops_fp32": 100.0, "method": "numpy 2048x2048 matmul (lower bound: no C compiler)"})


def test_a_peak_stored_before_amx_was_measured_is_measured_again_where_the_cpu_has_it():
    """On a Xeon with AMX, OpenVINO's bf16 ran at 233% of the vector bf16 peak stored before AMX was measured."""
    flags = set(fingerprint()["isa_flags"])
    vector_only = {
        "gflops_fp32": 420.0,
        "gflops_bf16": 209.0,
        "gops_int8": 1541.0,
        "method": "AVX-512 FMA kernel, 12 independent chains x 16 fp32 lanes, best of 5; bf16: vdpbf16ps, "
        "12 chains; int8: vpdpbusd (VNNI), 12 chains",
    }
    assert lacks_rates(vector_only) == ({"amx_tile", "amx_bf16"} <= flags or {"amx_tile", "amx_int8"} <= flags)
    refused = {
        **vector_only,
        "method": vector_only["method"] + "; AMX not measured: the kernel refused the tile state (arch_prctl)",
    }
    assert not lacks_rates(refused), "a kernel that refuses AMX must not cost every run a new measurement"


def test_the_peak_command_refuses_more_threads_than_cpus(tmp_path):
    """Each thread runs the kernels for a fixed time: 500 threads on 2 CPUs would run for many minutes."""
    too_many = str(len(os.sched_getaffinity(0)) + 1)
    done = engine("peak", "--threads", too_many, "--store", "--db", str(tmp_path / "r.duckdb"), timeout=120)
    assert done.returncode == 2 and f"threads {too_many} is more than the" in done.stderr, done.stderr
    assert not (tmp_path / "r.duckdb").exists()


def test_a_database_new_to_this_machine_gets_the_peak_measured_here_before(tmp_path, monkeypatch):
    """The peak is the machine's, not the database's: a run into a fresh results file measured it again (8 s of
    the kernels on the 12-02 VM), which every CI job writing a database of its own paid."""
    from datetime import datetime

    from engine import store
    from engine.config import RunConfig
    from engine.peak import keep_peak
    from engine.runner import Runner

    monkeypatch.setenv("YOLO_BENCH_CACHE", str(tmp_path / "cache"))
    measured = {
        "gflops_fp32": 123.0,
        "per_core_gflops": 61.5,
        "threads": 2,
        "method": "test kernel",
        "gflops_bf16": None,
        "gops_int8": None,
    }
    keep_peak("m1", measured, datetime(2026, 11, 28, 9, 30, tzinfo=UTC))
    events = []
    for name in ("first.duckdb", "second.duckdb"):
        db = tmp_path / name
        store.ensure_schema(db)
        Runner(RunConfig(db=str(db), threads=2), on_event=events.append).ensure_machine_peak("m1")
        stored = store.machine_peak(db, "m1", 2)
        assert stored["gflops_fp32"] == 123.0 and stored["method"] == "test kernel", stored
        assert stored["measured_at"].startswith("2026-11-28 09:30:00"), "when it was measured, not when copied"
    assert not [e for e in events if e.get("stage") == "peak"], "nothing measured again"


def test_a_compiler_without_the_amx_flags_still_measures_the_vector_peaks_once(monkeypatch, tmp_path):
    """gcc before 11 knows no -mamx-*: the kernel is built without them, and the peak says why AMX is missing,
    so that the next run does not take it for a peak stored before AMX and measure it again."""
    from engine import peak as peak_module

    if not peak_module._amx_flags(set(fingerprint()["isa_flags"])):
        pytest.skip("this CPU has no AMX")
    monkeypatch.setenv("YOLO_BENCH_CACHE", str(tmp_path))
    build = peak_module._compile_with
    monkeypatch.setattr(
        peak_module, "_compile_with", lambda flags: None if any(f.startswith("-mamx") for f in flags) else build(flags)
    )
    peak = measure_peak(1, repeats=1, seconds_per_repeat=0.05)
    assert "the compiler does not know its flags" in peak.method and "tdpbf16ps" not in peak.method
    assert peak.gflops_bf16 > 0 and peak.gops_int8 > 0, "the vector rates instead"
    assert not lacks_rates(peak.to_dict())
