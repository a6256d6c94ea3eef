"""Several batches in flight, end to end: what the --in-flight figure measures, the threaded loop shared by
the pipelines without an async API of their own, and the check that the batches in flight found the boxes
the one-at-a-time pipeline found."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Stored in each in-flight figure's settings; figures stored without it (by older engines) timed inference alone.
IN_FLIGHT_MEASURES = "end to end: preprocess, inference and postprocess of decoded frames"
MATCH_IOU = 0.9  # the same model on other streams or threads: its boxes may move by rounding, not more


def on_threads(
    count: int,
    batches: list[list],
    seconds: float,
    prepare: Callable[[int], object],
    run_batch: Callable[[object, list], list],
) -> tuple[int, dict[int, list], float]:
    """`count` Python threads taking `batches` in turn for about `seconds`. prepare(worker) runs on each thread
    first (a session or a model made there, and warmed) and the clock starts once all are ready; then
    run_batch(prepared, frames) gives a batch's detections. Returns the batches done, each batch index's
    detections of its last run, and the seconds measured; the first exception on any thread is raised."""
    done, found, errors = [0] * count, {}, []
    clock: dict[str, float] = {}
    ready = threading.Barrier(count, action=lambda: clock.update(started=time.perf_counter()))

    def loop(worker: int) -> None:
        try:
            prepared = prepare(worker)
        except Exception as error:  # raised here it would end only this thread
            errors.append(error)
            ready.abort()
            return
        try:
            ready.wait()
        except threading.BrokenBarrierError:  # another thread failed to prepare
            return
        number = worker
        try:
            while time.perf_counter() - clock["started"] < seconds:
                index = number % len(batches)
                found[index] = run_batch(prepared, batches[index])
                done[worker] += 1
                number += count
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=loop, args=(worker,)) for worker in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sum(done), found, time.perf_counter() - clock["started"]


def same_boxes(expected: list[list[list]], found: dict[int, list[list]]) -> dict:
    """Whether each batch's last run in flight found the boxes the one-at-a-time pipeline found in it: the same
    number per image, each matched by class at IoU >= MATCH_IOU. A batch that never came round in the time
    (a slow model) is left out of "batches"."""
    from engine.parity import match_detections

    finished = [index for index in range(len(expected)) if index in found]
    checked = {
        "same_as_one_at_a_time": True,
        "batches": len(finished),
        "boxes": sum(len(image) for index in finished for image in expected[index]),
    }
    for index in finished:
        for image, (want, got) in enumerate(zip(expected[index], found[index])):
            if len(got) != len(want) or len(match_detections(want, got, MATCH_IOU)) != len(want):
                return {
                    **checked,
                    "same_as_one_at_a_time": False,
                    "difference": f"batch {index} image {image}: {len(got)} boxes in flight, {len(want)} one at a time",
                }
    return checked
