"""The machine's measured peak arithmetic rates, for efficiency figures (achieved / peak).

A small C kernel runs 12 independent fused multiply-add chains in the widest vector unit the CPU has
(AVX-512, else AVX2+FMA), one thread per core; 12 chains cover FMA latency times the FMA ports on
current x86 cores. Where the CPU has them, the same loop with the AVX-512 bf16 dot product (vdpbf16ps:
32 multiply-adds per 512-bit instruction) and the VNNI int8 dot product (vpdpbusd: 64) gives the bf16
and int8 peaks that bf16 and int8 results are set against. On a CPU with AMX (Intel Xeon since Sapphire
Rapids) the tile unit is many times faster than those vector instructions, and oneDNN (OpenVINO, PyTorch)
uses it for bf16 and int8 convolutions: there the bf16 and int8 peaks are the AMX tile loops' (tdpbf16ps,
tdpbusd on four accumulator tiles), and the method names the vector rates beside them. Compiled once with
the system's cc into the cache. Without a compiler the fp32 figure falls back to a numpy matmul, which is
a lower bound, and says so in its method.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from engine.paths import cache_dir, read_json, write_json_whole

KERNEL = r"""
#include <immintrin.h>
#include <stdint.h>
#define CHAINS 12
#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define STORE _mm512_storeu_ps
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define STORE _mm256_storeu_ps
#endif
int lanes(void) { return LANES; }
/* Returns a checksum so the compiler cannot drop the work. */
float fma_loop(int64_t iterations) {
    vec acc[CHAINS];
    vec a = SET1(0.999999f), b = SET1(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = SET1((float)c);
    for (int64_t i = 0; i < iterations; i++) {
        for (int c = 0; c < CHAINS; c++) acc[c] = FMA(acc[c], a, b);
    }
    float out[LANES], sum = 0.0f;
    for (int c = 0; c < CHAINS; c++) { STORE(out, acc[c]); for (int l = 0; l < LANES; l++) sum += out[l]; }
    return sum;
}
#if defined(__AVX512BF16__)
int has_bf16(void) { return 1; }
/* Each vdpbf16ps: 16 fp32 lanes, each adding two bf16 products: 64 flops. */
float bf16_loop(int64_t iterations) {
    __m512 acc[CHAINS];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380); /* 1, ~6e-8 */
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (int64_t i = 0; i < iterations; i++) {
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    }
    float sum = 0.0f;
    for (int c = 0; c < CHAINS; c++) sum += _mm512_reduce_add_ps(acc[c]);
    return sum;
}
#else
int has_bf16(void) { return 0; }
float bf16_loop(int64_t iterations) { return 0.0f; }
#endif
#if defined(__AVX512VNNI__)
int has_int8(void) { return 1; }
/* Each vpdpbusd: 16 int32 lanes, each adding four u8 x s8 products: 128 ops. */
float int8_loop(int64_t iterations) {
    __m512i acc[CHAINS];
    __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-1);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_epi32(c);
    for (int64_t i = 0; i < iterations; i++) {
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
    }
    int64_t sum = 0;
    for (int c = 0; c < CHAINS; c++) sum += _mm512_reduce_add_epi32(acc[c]);
    return (float)sum;
}
#else
int has_int8(void) { return 0; }
float int8_loop(int64_t iterations) { return 0.0f; }
#endif
#if defined(__AMX_TILE__) && (defined(__AMX_BF16__) || defined(__AMX_INT8__))
#include <sys/syscall.h>
#include <unistd.h>
/* Linux hands a process the AMX tile state only when asked (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA). */
int amx_permitted(void) { return syscall(SYS_arch_prctl, 0x1023, 18) == 0; }
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } tile_config;
/* Eight tiles of 16 rows x 64 bytes: 0-3 accumulate, 4-5 hold A, 6-7 hold B; loaded once, so the loop
   measures the tile unit, not memory. */
static void load_tiles(const void *a, const void *b) {
    tile_config config = {0};
    config.palette = 1;
    for (int t = 0; t < 8; t++) { config.colsb[t] = 64; config.rows[t] = 16; }
    _tile_loadconfig(&config);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, a, 64); _tile_loadd(5, a, 64); _tile_loadd(6, b, 64); _tile_loadd(7, b, 64);
}
#else
int amx_permitted(void) { return 0; }
#endif
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
int has_amx_bf16(void) { return 1; }
/* Each tdpbf16ps: a 16x16 fp32 tile += 16x32 bf16 times 32x16 bf16: 8,192 multiply-adds. */
float amx_bf16_loop(int64_t iterations) {
    uint16_t a[16 * 32], b[16 * 32];
    float out[16 * 16];
    for (int i = 0; i < 16 * 32; i++) { a[i] = 0x3f80; b[i] = 0x3380; }
    load_tiles(a, b);
    for (int64_t i = 0; i < iterations; i++) {
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0];
}
#else
int has_amx_bf16(void) { return 0; }
float amx_bf16_loop(int64_t iterations) { return 0.0f; }
#endif
#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
int has_amx_int8(void) { return 1; }
/* Each tdpbusd: a 16x16 int32 tile += 16x64 u8 times 64x16 s8: 16,384 multiply-adds. */
float amx_int8_loop(int64_t iterations) {
    int8_t a[16 * 64], b[16 * 64];
    int32_t out[16 * 16];
    for (int i = 0; i < 16 * 64; i++) { a[i] = 3; b[i] = -1; }
    load_tiles(a, b);
    for (int64_t i = 0; i < iterations; i++) {
        _tile_dpbusd(0, 4, 6); _tile_dpbusd(1, 4, 7); _tile_dpbusd(2, 5, 6); _tile_dpbusd(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return (float)out[0];
}
#else
int has_amx_int8(void) { return 0; }
float amx_int8_loop(int64_t iterations) { return 0.0f; }
#endif
"""
CHAINS = 12
AMX_TILE_PRODUCTS = 4  # tile products per loop iteration, one per accumulator tile


@dataclass
class Peak:
    gflops_fp32: float
    per_core_gflops: float
    threads: int
    method: str
    gflops_bf16: float | None = None  # None: the CPU has no bf16 dot product (then bf16 runs as fp32); AMX's if any
    gops_int8: float | None = None  # None: no VNNI int8 dot product; AMX's where the CPU has it

    def to_dict(self) -> dict:
        return asdict(self)


def _compile(flags: list[str]) -> Path | None:
    """The kernel built for these flags; where the compiler does not know the AMX ones (gcc before 11), built
    without them, so the vector peaks are still measured."""
    library = _compile_with(flags)
    if library is None and _asks_amx(flags):
        library = _compile_with([flag for flag in flags if not flag.startswith("-mamx")])
    return library


def _asks_amx(flags: list[str]) -> bool:
    return any(flag.startswith("-mamx") for flag in flags)


def _compile_with(flags: list[str]) -> Path | None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None
    digest = hashlib.sha256((KERNEL + " ".join(flags)).encode()).hexdigest()[:12]
    library = cache_dir() / "peak" / f"fma-{digest}-O3.so"
    if library.is_file():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    source = library.with_suffix(".c")
    source.write_text(KERNEL)
    done = subprocess.run(
        [compiler, "-O3", "-shared", "-fPIC", *flags, str(source), "-o", str(library)], capture_output=True, text=True
    )
    return library if done.returncode == 0 else None


def _isa_flags() -> list[str]:
    from engine.machine import fingerprint

    flags = set(fingerprint()["isa_flags"])
    if "avx512f" in flags:
        dot_products = [
            flag for cpu, flag in (("avx512_bf16", "-mavx512bf16"), ("avx512_vnni", "-mavx512vnni")) if cpu in flags
        ]
        return ["-mavx512f", "-mfma", *dot_products, *(["-mavx512bw"] if dot_products else []), *_amx_flags(flags)]
    if "avx2" in flags and "fma" in flags:
        return ["-mavx2", "-mfma"]
    return []


def _amx_flags(flags: set[str]) -> list[str]:
    tiles = [flag for cpu, flag in (("amx_bf16", "-mamx-bf16"), ("amx_int8", "-mamx-int8")) if cpu in flags]
    return ["-mamx-tile", *tiles] if "amx_tile" in flags and tiles else []


def _run_threads(function, iterations: int, threads: int) -> float:
    """Seconds for `threads` threads each running the kernel (ctypes releases the GIL during the call)."""
    barrier = threading.Barrier(threads + 1)

    def work():
        barrier.wait()
        function(iterations)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    return time.perf_counter() - start


def _best_rate(function, ops_per_iteration: int, threads: int, repeats: int, seconds_per_repeat: float):
    """(best rate on all threads, best on one) in ops/s, each the best of `repeats` runs of one sized repeat."""
    function.argtypes = [ctypes.c_int64]
    function.restype = ctypes.c_float
    iterations = 1_000_000
    while _run_threads(function, iterations, 1) < seconds_per_repeat / 2:  # size one repeat
        iterations *= 2
    best_single = max(ops_per_iteration * iterations / _run_threads(function, iterations, 1) for _ in range(repeats))
    best_all = max(
        ops_per_iteration * iterations * threads / _run_threads(function, iterations, threads) for _ in range(repeats)
    )
    return best_all, best_single


def measure_peak(threads: int, repeats: int = 5, seconds_per_repeat: float = 0.3) -> Peak:
    flags = _isa_flags()
    library = _compile(flags) if flags else None
    if library is None:
        return _numpy_peak(threads)
    kernel = ctypes.CDLL(str(library))
    lanes = kernel.lanes()
    best_all, best_single = _best_rate(kernel.fma_loop, CHAINS * lanes * 2, threads, repeats, seconds_per_repeat)
    isa = "AVX-512" if "-mavx512f" in flags else "AVX2+FMA"
    method = f"{isa} FMA kernel, {CHAINS} independent chains x {lanes} fp32 lanes, best of {repeats}"
    bf16 = int8 = None
    if kernel.has_bf16():
        bf16 = _best_rate(kernel.bf16_loop, CHAINS * 64, threads, repeats, seconds_per_repeat)[0] / 1e9
        method += f"; bf16: vdpbf16ps, {CHAINS} chains"
    if kernel.has_int8():
        int8 = _best_rate(kernel.int8_loop, CHAINS * 128, threads, repeats, seconds_per_repeat)[0] / 1e9
        method += f"; int8: vpdpbusd (VNNI), {CHAINS} chains"
    amx_built = kernel.has_amx_bf16() or kernel.has_amx_int8()
    # Where AMX is not measured the method says why, so that lacks_rates does not measure it again at every run
    if _asks_amx(flags) and not amx_built:
        method += "; AMX not measured: the compiler does not know its flags"
    elif amx_built and not kernel.amx_permitted():
        method += "; AMX not measured: the kernel refused the tile state (arch_prctl)"
    elif amx_built:
        vector = [
            f"{name} {rate:.0f} {unit}"
            for name, rate, unit in (("vdpbf16ps", bf16, "GFLOP/s"), ("vpdpbusd", int8, "GOP/s"))
            if rate
        ]
        tiles = []
        if kernel.has_amx_bf16():
            bf16 = (
                _best_rate(kernel.amx_bf16_loop, AMX_TILE_PRODUCTS * 8192 * 2, threads, repeats, seconds_per_repeat)[0]
                / 1e9
            )
            tiles.append("bf16: tdpbf16ps")
        if kernel.has_amx_int8():
            int8 = (
                _best_rate(kernel.amx_int8_loop, AMX_TILE_PRODUCTS * 16384 * 2, threads, repeats, seconds_per_repeat)[0]
                / 1e9
            )
            tiles.append("int8: tdpbusd")
        method += f"; AMX ({', '.join(tiles)}, {AMX_TILE_PRODUCTS} accumulator tiles) for bf16 and int8 peaks" + (
            f", against the vector rates {', '.join(vector)}" if vector else ""
        )
    return Peak(best_all / 1e9, best_single / 1e9, threads, method, bf16, int8)


def kept_peak_path(machine_id: str, threads: int) -> Path:
    return cache_dir() / "peak" / f"{machine_id}-{threads}threads.json"


def kept_peak(machine_id: str, threads: int) -> dict | None:
    """This machine's peak on `threads` as measured before (by a run into any database, or `peak --store`),
    with `measured_at`; None where it was never measured here."""
    return read_json(kept_peak_path(machine_id, threads)) or None


def keep_peak(machine_id: str, peak: dict, measured_at: datetime) -> dict:
    """Remember a measured peak for every database on this machine; returns it with `measured_at`."""
    kept = {**peak, "measured_at": measured_at.isoformat()}
    write_json_whole(kept_peak_path(machine_id, peak["threads"]), kept)
    return kept


def lacks_rates(stored: dict) -> bool:
    """A stored peak measured before bf16/int8 peaks existed, or before AMX was measured, on a CPU that has them:
    measure again."""
    from engine.machine import fingerprint

    flags = set(fingerprint()["isa_flags"])
    compiled = str(stored.get("method") or "").startswith("AVX-512")
    without_amx = bool(_amx_flags(flags)) and "AMX" not in str(stored.get("method"))
    return compiled and (
        ("avx512_bf16" in flags and stored.get("gflops_bf16") is None)
        or ("avx512_vnni" in flags and stored.get("gops_int8") is None)
        or without_amx
    )


def _numpy_peak(threads: int) -> Peak:
    import numpy as np

    size = 2048
    a = np.random.rand(size, size).astype(np.float32)
    b = np.random.rand(size, size).astype(np.float32)
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return Peak(best / 1e9, best / 1e9 / threads, threads, "numpy 2048x2048 matmul (lower bound: no C compiler)")


def efficiency(model_gflops: float, infer_ms: float, peak_gflops: float) -> dict:
    """Achieved rate of one inference, its share of the peak, and the floor time the peak implies."""
    achieved = model_gflops / (infer_ms / 1000.0)
    return {
        "achieved_gflops": achieved,
        "peak_fraction": achieved / peak_gflops,
        "floor_ms": model_gflops / peak_gflops * 1000.0,
    }


def ensure_stored_peak(db, machine_id: str, threads: int, on_measure) -> None:
    """Measure this machine's peaks once per thread count (~3-8 s, no runtime library), before any worker runs;
    a database new to this machine gets the peak measured here before (kept_peak). on_measure(message) is told
    when the kernels run."""
    from engine import store

    stored = store.machine_peak(db, machine_id, threads)
    if stored and not lacks_rates(stored):
        return
    kept = kept_peak(machine_id, threads)
    if not kept or lacks_rates(kept):
        on_measure(f"measuring this machine's peak rates on {threads} thread(s)")
        kept = keep_peak(machine_id, measure_peak(threads).to_dict(), store.now())
    store.insert_machine_peak(db, machine_id, kept)
