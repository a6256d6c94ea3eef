"""Ctrl-C and SIGTERM during a run: the first asks the run to stop at its next check, a second stops it at once.

Python's own handler raises KeyboardInterrupt wherever the main thread happens to be. When that is a finalizer
(multiprocessing closes a finished job's pipes and process handles from one, whenever the garbage collector
runs), Python prints "Exception ignored" and drops it: the run went on measuring to its end and exited 0. So
the handler here only records the request; the runner checks it where stopping is safe (every 0.2 s while a
job runs, and before each batch size), and raises KeyboardInterrupt there.
"""

from __future__ import annotations

import signal
import threading


class StopSignals:
    """Installed for the length of a run (a context manager); SIGINT left ignored stays ignored (a job a shell
    started in the background is not Ctrl-C's to stop)."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may set handlers; a run started from another thread keeps Python's
        for number in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(number) is not signal.SIG_IGN:
                self.previous[number] = signal.signal(number, self.handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def handle(self, number, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt  # asked twice: at once, wherever the run is
        self.requested = True

    def check(self) -> bool:
        """Raise KeyboardInterrupt here when a stop was asked for; else False (so it serves as a should_cancel)."""
        if self.requested:
            raise KeyboardInterrupt
        return False
