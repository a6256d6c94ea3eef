"""Run configuration: plain dataclasses that cross process and page boundaries, and their validation.

Validation needs no runtime library, so the CLI and the dashboard can reject bad input before anything
heavy is imported or anything is written to the database.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

MAX_BATCH = 64
MAX_IMGSZ = 1920
MAX_ITERS = 100_000
MAX_WARMUP = 10_000
MAX_IN_FLIGHT = 64
MAX_PROFILE_CALLS = 100
MIN_IMGSZ = 32
MAX_MIN_DURATION_S = 3600.0
MAX_TIMEOUT_S = 24 * 3600.0
# What `run` measures when no --runtimes is given: every CPU runtime
DEFAULT_RUNTIMES = ("pytorch", "torchscript", "onnxruntime", "openvino", "tensorflow", "tflite")
DEFAULT_MODEL = "yolov8n.pt"
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# lean: the engine's own numpy pipeline per runtime; ultralytics: the same artifact through Ultralytics' predictor
MODES = ("lean", "ultralytics")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # what OpenCV decodes here
UNSTABLE_CV = 0.10  # coefficient of variation of the inference stage above which a result is flagged


class BenchError(Exception):
    """An error a user can cause and fix; its message names the input and what to do."""


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def usable_cpus() -> int:
    """Logical CPUs this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_threads(threads: int) -> None:
    """0 (all physical cores) up to the logical CPUs this process may use. More threads than CPUs measures only the
    contention, and the peak-rate kernels, run on each thread, took over 5 minutes for --threads 500 on 2 CPUs."""
    if threads < 0:
        raise BenchError(f"threads {threads} is out of range: use 0 (all physical cores) or more")
    if threads > usable_cpus():
        raise BenchError(
            f"threads {threads} is more than the {usable_cpus()} logical CPU(s) this machine gives "
            f"the run: use 0 (all physical cores) to {usable_cpus()}"
        )


@dataclass(frozen=True)
class Variant:
    """One runtime at one precision in one pipeline mode: the unit that gets its own worker processes
    (the export is shared between modes through the cache)."""

    runtime: str
    precision: str
    mode: str = "lean"

    @property
    def label(self) -> str:
        suffix = "" if self.mode == "lean" else f"/{self.mode}"
        return f"{self.runtime}:{self.precision}{suffix}"


@dataclass
class RunConfig:
    model: str = DEFAULT_MODEL
    runtimes: list[str] = field(default_factory=lambda: list(DEFAULT_RUNTIMES))
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    modes: list[str] = field(default_factory=lambda: ["lean"])
    images: list[str] = field(default_factory=list)  # files or folders; empty means the shipped samples
    imgsz: int = 640
    warmup: int = 3
    iters: int = 20
    min_duration_s: float = 0.0  # when > 0, keep iterating until this long has passed (and iters reached)
    threads: int = 0  # 0 means all physical cores
    in_flight: int = 0  # > 0: after the latency figures, images/s with this many requests in flight (where offered)
    profile: int = 0  # > 0: after everything else, this many calls under the runtime's own profiler (where offered)
    conf: float = 0.25
    iou: float = 0.45
    timeout_s: float = 600.0  # per worker process (export or measurement)
    memory_limit_mb: int = 0  # per worker process tree, resident; 0 means 80% of this machine's memory
    db: str = "results.duckdb"
    machine_label: str = ""
    note: str = ""
    reference: str = ""  # a .pt to take the parity reference from (e.g. the original of an .onnx given as model)
    parity_iou: float = 0.5  # IoU at which a box matches the reference's box of the same class
    data: str = ""  # labelled data for mAP: a dataset .yaml or a folder of images + YOLO txt labels

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def effective_threads(self) -> int:
        return self.threads or physical_cores()

    @property
    def effective_memory_limit_mb(self) -> int:
        if self.memory_limit_mb:
            return self.memory_limit_mb
        import psutil

        return int(psutil.virtual_memory().total / 2**20 * 0.8)


def parse_int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise BenchError(f"{what} must be whole numbers separated by commas, got {text!r}") from None
    if not values:
        raise BenchError(f"{what} is empty: give at least one value, e.g. 1,2,4")
    return values


def parse_name_list(text: str) -> list[str]:
    return [part.strip() for part in str(text).split(",") if part.strip()]


def did_you_mean(name: str, known) -> str:
    """ ", did you mean 'openvino'?" for a near miss ("openvno"); "" when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else ""


def parse_runtimes(text: str) -> list[str]:
    """--runtimes: names (runtime:precision pins one), or 'all' for every runtime available on this machine."""
    names = parse_name_list(text)
    if "all" not in names:
        return names
    from engine.runtimes import registry

    return [info.name for info in registry.describe() if info.available]


def parse_modes(text: str) -> list[str]:
    """--modes: names, or 'all' / 'both' for every pipeline mode (as --precisions takes 'all')."""
    names = parse_name_list(text)
    return list(MODES) if {"all", "both"} & set(names) else names


def validate(config: RunConfig) -> None:
    """Raise BenchError for settings that cannot make a meaningful run. Needs no runtime library."""
    _validate_matrix(config)
    _validate_measuring(config)
    _validate_inputs(config)


def _validate_matrix(config: RunConfig) -> None:
    """What is measured: runtimes, precisions, modes, batch sizes."""
    from engine.runtimes import registry

    if not config.runtimes:
        raise BenchError("no runtime chosen: pass --runtimes, e.g. --runtimes onnxruntime,openvino")
    known = registry.names()
    for name in config.runtimes:
        base = name.split(":", 1)[0]
        if base not in known:
            raise BenchError(
                f"unknown runtime {base!r}{did_you_mean(base, known)}: choose from {', '.join(known)} or 'all'"
            )
    for precision in config.precisions:
        if precision != "all" and precision not in PRECISIONS:
            raise BenchError(
                f"unknown precision {precision!r}{did_you_mean(precision, PRECISIONS)}: choose from "
                f"{', '.join(PRECISIONS)} or 'all'"
            )
    if not config.modes:
        raise BenchError("no pipeline mode given: pass --modes, e.g. --modes lean,ultralytics")
    for mode in config.modes:
        if mode not in MODES:
            raise BenchError(f"unknown pipeline mode {mode!r}: choose from {', '.join(MODES)} or 'all'")
    if not config.batch_sizes:
        raise BenchError("no batch size given: pass --batch, e.g. --batch 1,2,4")
    for batch in config.batch_sizes:
        if not 1 <= batch <= MAX_BATCH:
            raise BenchError(f"batch size {batch} is out of range: use 1 to {MAX_BATCH}")


def _validate_measuring(config: RunConfig) -> None:
    """How it is measured: input size, iterations, time, threads, limits, thresholds."""
    if not MIN_IMGSZ <= config.imgsz <= MAX_IMGSZ or config.imgsz % 32:
        raise BenchError(
            f"image size {config.imgsz} is not usable: use a multiple of 32 from {MIN_IMGSZ} to {MAX_IMGSZ}"
        )
    if not 1 <= config.iters <= MAX_ITERS:
        raise BenchError(f"iterations {config.iters} is out of range: use 1 to {MAX_ITERS}")
    if not 0 <= config.warmup <= MAX_WARMUP:
        raise BenchError(f"warm-up {config.warmup} is out of range: use 0 to {MAX_WARMUP}")
    if not 0 <= config.min_duration_s <= MAX_MIN_DURATION_S:
        raise BenchError(f"minimum duration {config.min_duration_s} s is out of range: use 0 to {MAX_MIN_DURATION_S:g}")
    if not 0 <= config.profile <= MAX_PROFILE_CALLS:
        raise BenchError(f"profile calls {config.profile} is out of range: use 0 (off) to {MAX_PROFILE_CALLS}")
    if not 0 <= config.in_flight <= MAX_IN_FLIGHT:
        raise BenchError(f"requests in flight {config.in_flight} is out of range: use 0 (off) to {MAX_IN_FLIGHT}")
    check_threads(config.threads)
    if not 0 <= config.memory_limit_mb <= 16 * 2**20:
        raise BenchError(
            f"memory limit {config.memory_limit_mb} MB is out of range: use 0 (80% of RAM) or a size in MB"
        )
    if config.memory_limit_mb and config.memory_limit_mb < 256:
        raise BenchError(f"memory limit {config.memory_limit_mb} MB is too small to load any runtime: use 256 or more")
    if not 1 <= config.timeout_s <= MAX_TIMEOUT_S:
        raise BenchError(f"timeout {config.timeout_s} s is out of range: use 1 to {MAX_TIMEOUT_S:g}")
    if not 0 < config.conf < 1 or not 0 < config.iou < 1:
        raise BenchError("confidence and IoU thresholds must lie strictly between 0 and 1")
    if not 0 < config.parity_iou < 1:
        raise BenchError(f"parity IoU {config.parity_iou} must lie strictly between 0 and 1")


def _validate_inputs(config: RunConfig) -> None:
    """What it reads and writes: the reference, labelled data, the label and note, the database."""
    if config.reference and Path(config.reference).suffix.lower() not in (".pt", ".yaml", ".yml"):
        raise BenchError(f"reference model {config.reference} must be a PyTorch .pt (or an architecture .yaml)")
    if config.data and not Path(config.data).expanduser().exists():
        raise BenchError(
            f"labelled data {config.data} does not exist: give a dataset .yaml or a folder of images and labels"
        )
    if len(config.machine_label) > 200 or len(config.note) > 2000:
        raise BenchError("machine label (200) or note (2000 characters) is too long")
    check_db_path(config.db)


def check_db_path(db: str) -> None:
    """A file that can be written, or a well-formed shared-store address (engine/database.py)."""
    from engine.database import check_location

    check_location(db)


def expand_variants(config: RunConfig) -> list[Variant]:
    """Runtime names (optionally 'runtime:precision') times precisions, keeping only what each runtime offers."""
    from engine.runtimes import registry

    variants: list[Variant] = []
    for name in config.runtimes:
        base, _, pinned = name.partition(":")
        offered = registry.get(base).precisions
        if pinned:
            if pinned not in offered:
                raise BenchError(f"runtime {base} offers {', '.join(offered)}, not {pinned!r}")
            wanted = [pinned]
        elif "all" in config.precisions:
            wanted = list(offered)
        else:
            wanted = [p for p in config.precisions if p in offered]
        for precision in wanted:
            for mode in config.modes:
                variant = Variant(base, precision, mode)
                if variant not in variants:
                    variants.append(variant)
    if not variants:
        offers = "; ".join(
            f"{name} offers {', '.join(registry.get(name.partition(':')[0]).precisions)}" for name in config.runtimes
        )
        raise BenchError(
            f"none of the chosen runtimes offers precision {', '.join(config.precisions)} ({offers}): "
            "pass --precisions with one they offer, or 'all'"
        )
    return variants


def not_measured(config: RunConfig, variants: list[Variant]) -> list[str]:
    """What the request names that no configuration measures, each with why: a precision a runtime does not offer,
    and in flight where neither the runtime (lean mode) nor the mode offers it. Said before the run starts."""
    from engine.runtimes import registry

    said = []
    for name in config.runtimes:
        base, _, pinned = name.partition(":")
        offered = registry.get(base).precisions
        if not pinned and "all" not in config.precisions:
            missing = [p for p in config.precisions if p not in offered]
            if missing:
                said.append(f"not measured: {base}:{','.join(missing)} ({base} offers {', '.join(offered)})")
    if config.in_flight:
        for variant in variants:
            runtime = registry.get(variant.runtime)
            offered = runtime.offers_in_flight if variant.mode == "lean" else runtime.device == "cpu"
            if not offered:
                said.append(f"not measured in flight: {variant.label} (it offers one request at a time only)")
    if config.profile:
        for variant in variants:
            runtime = registry.get(variant.runtime)
            if variant.mode != "lean":
                said.append(f"not profiled: {variant.label} (profiles are taken in the lean mode)")
            elif not runtime.offers_profile():
                said.append(f"not profiled: {variant.label} ({runtime.profile_unavailable})")
    return said


def runnable_on_onnx(variants: list[Variant]) -> tuple[list[Variant], list[str]]:
    """An .onnx file given as the model: the configurations whose runtime runs it at their precision, and the
    runtimes (runtime:precision where the runtime takes the file at another precision) that need the .pt."""
    from engine.runtimes import registry

    takes = [v for v in variants if v.precision in registry.get(v.runtime).onnx_file_precisions]
    cannot = {
        v.runtime if not registry.get(v.runtime).onnx_file_precisions else f"{v.runtime}:{v.precision}"
        for v in variants
        if v not in takes
    }
    return takes, sorted(cannot)
