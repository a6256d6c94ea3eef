"""Which result to name fastest: the CLI's closing line and the dashboard's headlines use this one rule."""

from __future__ import annotations

import math
from collections.abc import Iterable


def fastest(results: Iterable[dict]) -> tuple[dict | None, list[dict]]:
    """The completed result with the lowest end-to-end median (`total_ms`) among those whose parity did not fail,
    and the faster results passed over because theirs did, fastest first: a converted model that loses the
    reference's boxes is no answer to "which runtime should I deploy", however fast. A drift counts (it works,
    not identically), as does no verdict (no reference). Where every result failed parity, the fastest of them
    and none passed over; (None, []) when nothing completed."""
    timed = [r for r in results if r.get("status") == "completed" and _number(r.get("total_ms"))]
    timed.sort(key=lambda r: r["total_ms"])  # stable: ties keep the given order
    trusted = [r for r in timed if r.get("parity_verdict") != "fail"]
    if not trusted:
        return (timed[0] if timed else None), []
    best = trusted[0]
    return best, [r for r in timed if r.get("parity_verdict") == "fail" and r["total_ms"] < best["total_ms"]]


def least(results: Iterable[dict], column: str) -> dict | None:
    """The completed result with the lowest `column` (model_mb, peak_memory_mb) among those whose parity did not
    fail and that have the figure, as `fastest` trusts them; None when none has it."""
    measured = [
        r
        for r in results
        if r.get("status") == "completed" and _number(r.get(column)) and r.get("parity_verdict") != "fail"
    ]
    return min(measured, key=lambda r: r[column]) if measured else None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)
