"""Per-layer profiles lined up across runtimes: what each runtime's own profiler reports per op, charged to the YOLO
model's modules (model.0 to model.22 for YOLOv8), with each module's type (Conv, C2f, SPPF, Detect...) and stage
(backbone, neck, head), so that "which block runs slowly on which runtime" has one answer across runtimes.

Each export keeps the module path in its op names: ONNX nodes read "/model.12/cv1/conv/Conv", OpenVINO's read
"__module.model.12.cv1.conv/aten::_convolution/Convolution" (or keep the ONNX names), and the PyTorch runtimes
profile module by module. An op whose name names no module is a layout conversion a runtime inserted between two
nodes (ONNX Runtime's ReorderInput/ReorderOutput); it is charged to the module whose node it prepares, and its op
type still says what it is. What no neighbour explains stays "unmapped", with its names."""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

MODULE_IN_NAME = re.compile(r"(?:__module\.|(?<![\w.]))model\.(\d+)(?=[./]|$)")
UNMAPPED = "unmapped"


@dataclass(frozen=True)
class OpTime:
    """One op as a profiler reports it: its name, its type, and its mean time per call."""

    name: str
    op_type: str
    ms: float


@dataclass(frozen=True)
class ModuleLayout:
    """The model's modules in order: each one's type, stage and inputs (Ultralytics' `from`: -1 the one before)."""

    types: tuple[str, ...]
    stages: tuple[str, ...]
    sources: tuple  # int or list of ints per module

    def describe(self, module: int | None) -> tuple[str, str, str]:
        """(module, type, stage) in words; an index outside the model is unmapped too."""
        if module is None or module >= len(self.types):
            return UNMAPPED, "", UNMAPPED
        return f"model.{module}", self.types[module], self.stages[module]


@dataclass(frozen=True)
class ProfileRow:
    """What a result's profile holds per module and op type: the time per call, the ops summed, and for unmapped
    ops their names."""

    module: str
    module_type: str
    stage: str
    op_type: str
    ms: float
    ops: int
    names: str = ""


@dataclass(frozen=True)
class ProfileFigure:
    """A batch size's profile as the worker sends it: the rows, the profiler, the calls it averaged; or why there
    is none."""

    batch: int
    calls: int
    profiler: str | None
    rows: tuple[ProfileRow, ...] = ()
    error: str | None = None


class ProfileNotOffered(Exception):
    """A runtime whose Python API gives no per-op timing; the message says why."""


def layout_of(model_file: str | Path) -> ModuleLayout:
    """The module layout of a YOLO checkpoint (.pt) or architecture (.yaml)."""
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    path = Path(model_file)
    model = DetectionModel(str(path), verbose=False) if path.suffix in (".yaml", ".yml") else load_checkpoint(path)[0]
    modules = list(model.model)
    backbone = len(model.yaml.get("backbone", ()))
    types = tuple(module.type.rsplit(".", 1)[-1] for module in modules)
    stages = tuple(
        "backbone" if index < backbone else "head" if index == len(modules) - 1 else "neck"
        for index in range(len(modules))
    )
    return ModuleLayout(types=types, stages=stages, sources=tuple(module.f for module in modules))


def module_index(name: str) -> int | None:
    """The module an op's name names, if any ("/model.12/cv1/conv/Conv" -> 12)."""
    found = MODULE_IN_NAME.search(name)
    return int(found.group(1)) if found else None


def charged(ops: list[OpTime]) -> list[int | None]:
    """Each op's module, in execution order: an op that names none is charged to the next op that does (the node
    it prepares the input for), or where none follows, to the one before it; None when no op names a module."""
    named = [module_index(op.name) for op in ops]
    following: int | None = None
    for index in range(len(named) - 1, -1, -1):
        if named[index] is None:
            named[index] = following
        else:
            following = named[index]
    before: int | None = None
    for index, module in enumerate(named):
        if module is None:
            named[index] = before
        else:
            before = module
    return named


def describe(layout: ModuleLayout | None, module: int | None) -> tuple[str, str, str]:
    """(module, type, stage); without a layout (an .onnx given directly) the module's name alone."""
    if layout is None:
        return (UNMAPPED, "", UNMAPPED) if module is None else (f"model.{module}", "", "")
    return layout.describe(module)


def rows_of(ops: list[OpTime], layout: ModuleLayout | None) -> tuple[ProfileRow, ...]:
    """The ops summed per module and op type, in the model's order (unmapped last)."""
    totals: dict[tuple, list] = defaultdict(lambda: [0.0, 0, []])
    for op, module in zip(ops, charged(ops)):
        key = (*describe(layout, module), op.op_type)
        totals[key][0] += op.ms
        totals[key][1] += 1
        if key[0] == UNMAPPED:
            totals[key][2].append(op.name)

    def order(key: tuple) -> tuple:
        return (key[0] == UNMAPPED, int(key[0].split(".")[1]) if key[0] != UNMAPPED else 0, key[3])

    return tuple(
        ProfileRow(module, module_type, stage, op_type, ms, count, ", ".join(sorted(set(names)))[:2000])
        for (module, module_type, stage, op_type), (ms, count, names) in sorted(
            totals.items(), key=lambda i: order(i[0])
        )
    )


def run_by_module(modules, sources, batch, record):
    """A YOLO model's forward pass module by module, as Ultralytics runs it, each call inside record(index) (a
    context manager: the profiler's label for it)."""
    outputs, x = [], batch
    for index, (module, source) in enumerate(zip(modules, sources)):
        if source != -1:
            x = outputs[source] if isinstance(source, int) else [x if j == -1 else outputs[j] for j in source]
        with record(index):
            x = module(x)
        outputs.append(x)
    return x


def timed_by_module(modules, sources, types, batch, calls: int) -> list[OpTime]:
    """PyTorch eager, module by module, each module's call timed with perf_counter_ns: torch.profiler slows the eager
    model several times over on a CPU (its ops are small and many), so its figures would not add up to the
    measured inference. A module's ops are not told apart: its op type is the module's type."""
    import statistics
    import time

    import torch

    spent: list[list[int]] = [[] for _ in modules]

    @contextmanager
    def timed(index: int):
        started = time.perf_counter_ns()
        yield
        spent[index].append(time.perf_counter_ns() - started)

    with torch.inference_mode():
        run_by_module(modules, sources, batch, lambda index: nullcontext())  # warm
        for _ in range(calls):
            run_by_module(modules, sources, batch, timed)
    # each module's median call, as the measured inference is a median: a call that another process interrupted
    # would otherwise lift every module it ran through
    return [OpTime(f"model.{index}", types[index], statistics.median(ns) / 1e6) for index, ns in enumerate(spent)]


TORCHSCRIPT_MODULE = re.compile(r"^TOP\([^)]*\)::forward\.(\d+)\(")


def torchscript_profile(model, batch, calls: int) -> list[OpTime]:
    """torch.profiler over `calls` calls of a traced model, recording module hierarchy (TorchScript keeps it): each
    outermost op inside a top-level module charged to that module; each op's median over the calls."""
    import json
    import tempfile

    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    with torch.inference_mode():
        for _ in range(3):  # TorchScript's profiling executor optimises the graph over its first calls
            model(batch)
        with profile(activities=[ProfilerActivity.CPU], with_modules=True) as profiled:
            for call in range(calls):
                with record_function(f"{CALL_LABEL}{call}"):
                    model(batch)
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "trace.json"
        profiled.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text())["traceEvents"]
    windows = sorted(
        (e["ts"], e["ts"] + e["dur"]) for e in events if e.get("ph") == "X" and e["name"].startswith(CALL_LABEL)
    )
    ops = sorted(
        (e for e in events if e.get("ph") == "X" and "Module Hierarchy" in e.get("args", {})), key=lambda e: e["ts"]
    )
    timed = []
    outer_end = -1.0
    for event in ops:
        found = TORCHSCRIPT_MODULE.match(event["args"]["Module Hierarchy"])
        if event["ts"] < outer_end or not found:
            continue  # inside the op before it (counted there), or the whole forward call around every module
        outer_end = event["ts"] + event["dur"]
        timed.append((f"model.{found.group(1)}/{event['name']}", event["name"], event["ts"], event["dur"]))
    return median_per_call(timed, windows)


def median_per_call(events, windows: list[tuple[float, float]]) -> list[OpTime]:
    """Ops from a profiler's trace events, (name, op type, start, duration in µs), each charged to the call whose
    window (start, end) holds its start: each op's median over the calls, as the measured inference is a median
    (a call another process interrupted would otherwise lift every op in it). Events outside every window (a warm
    call) are left out."""
    import statistics

    per_call: dict[tuple[str, str], list[float]] = {}
    starts = [start for start, _ in windows]
    for name, op_type, start, duration in events:
        call = bisect.bisect_right(starts, start) - 1
        if call < 0 or start > windows[call][1]:
            continue
        per_call.setdefault((name, op_type), [0.0] * len(windows))[call] += duration / 1000
    return [OpTime(name, op_type, statistics.median(ms)) for (name, op_type), ms in per_call.items()]


CALL_LABEL = "yolo-bench call "


def coverage(rows: tuple[ProfileRow, ...] | list[ProfileRow], infer_ms_per_call: float | None) -> dict:
    """The profile's total per call, the share of it charged to a module, and the total over the measured
    inference median (per call)."""
    total = sum(row.ms for row in rows)
    mapped = sum(row.ms for row in rows if row.module != UNMAPPED)
    return {
        "profiled_ms": total,
        "mapped_share": mapped / total if total else None,
        "of_inference": total / infer_ms_per_call if infer_ms_per_call else None,
    }


def variant_name(row) -> str:
    """'onnxruntime:fp32 b1' (and the mode where it is not lean), as a profile's result is named."""
    mode = "" if row["mode"] == "lean" else f" {row['mode']}"
    return f"{row['runtime']}:{row['precision']} b{row['batch']}{mode}"


def module_table(profiles):
    """store.profiles rows as one row per module (model order, unmapped last): its type and stage, each result's ms
    per call, and each result's ratio to the fastest result on that module."""
    import pandas as pd

    frame = profiles.assign(variant=profiles.apply(variant_name, axis=1))
    table = frame.pivot_table(index=["module", "module_type", "stage"], columns="variant", values="ms", aggfunc="sum")
    order = [(m == UNMAPPED, int(m.split(".")[1]) if m != UNMAPPED else 0) for m, _, _ in table.index]
    table = table.iloc[sorted(range(len(order)), key=order.__getitem__)]
    fastest = table.min(axis=1)
    ratios = table.div(fastest.where(fastest > 0), axis=0).add_suffix(" / fastest")
    return pd.concat([table, ratios], axis=1).reset_index()


def totals_by(profiles, column: str):
    """Each result's ms per call summed by stage, module type or op type: rows the column's values, one column a
    result."""
    frame = profiles.assign(variant=profiles.apply(variant_name, axis=1))
    return frame.pivot_table(index=column, columns="variant", values="ms", aggfunc="sum", fill_value=0.0)
