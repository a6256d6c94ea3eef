"""What a GPU user expects beside a result, read from NVML over the timed window: energy per image from the
GPU's energy counter, the SM clock and temperature sampled while it runs, the clock-limiting reasons seen
(a result measured while power- or heat-throttled is flagged as such), and the device memory in use at most.

NVML comes with the NVIDIA driver; nvidia-ml-py is its Python binding. Where either is missing (CI, a CPU
machine), start() says so and returns None, and the result simply has no GPU figures.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import asdict, dataclass

SAMPLE_INTERVAL_S = 0.05
# NVML's clock event reasons that mean the GPU ran slower than it could (idle, application clocks, sync boost
# and display clocks are not throttling).
THROTTLE_REASONS = {
    0x4: "software power cap",
    0x8: "hardware slowdown",
    0x20: "software thermal slowdown",
    0x40: "hardware thermal slowdown",
    0x80: "hardware power brake",
}


@dataclass(frozen=True)
class GpuWindow:
    """One timed window on one GPU."""

    gpu: str
    energy_j_per_image: float | None  # None where the GPU has no energy counter (before Volta)
    sm_clock_mhz_median: float
    sm_clock_mhz_min: int
    temperature_c_max: int
    memory_used_mb_max: float
    throttle_reasons: tuple[str, ...]
    throttled: bool
    samples: int

    def to_dict(self) -> dict:
        return asdict(self)


class GpuMonitor:
    """Samples one GPU on a thread from start to stop(); reads its energy counter at both ends."""

    def __init__(self, nvml, index: int = 0):
        self.nvml = nvml
        self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
        self.name = str(nvml.nvmlDeviceGetName(self.handle))
        self.clocks: list[int] = []
        self.temperatures: list[int] = []
        self.memory: list[int] = []
        self.reasons = 0
        self.energy_mj = self._energy()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _energy(self) -> int | None:
        try:
            return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)  # millijoules since the driver loaded
        except self.nvml.NVMLError:
            return None

    def _sample(self) -> None:
        nvml = self.nvml
        while not self._stop.is_set():
            self.clocks.append(nvml.nvmlDeviceGetClockInfo(self.handle, nvml.NVML_CLOCK_SM))
            self.temperatures.append(nvml.nvmlDeviceGetTemperature(self.handle, nvml.NVML_TEMPERATURE_GPU))
            self.memory.append(nvml.nvmlDeviceGetMemoryInfo(self.handle).used)
            self.reasons |= nvml.nvmlDeviceGetCurrentClocksEventReasons(self.handle)
            self._stop.wait(SAMPLE_INTERVAL_S)

    def stop(self, images: int) -> GpuWindow:
        """The window's figures; images: how many images the timed window processed."""
        self._stop.set()
        self._thread.join()
        end = self._energy()
        energy = (end - self.energy_mj) / 1000 / images if end is not None and self.energy_mj is not None else None
        reasons = tuple(name for bit, name in THROTTLE_REASONS.items() if self.reasons & bit)
        self.nvml.nvmlShutdown()
        return GpuWindow(
            gpu=self.name,
            energy_j_per_image=energy,
            sm_clock_mhz_median=statistics.median(self.clocks),
            sm_clock_mhz_min=min(self.clocks),
            temperature_c_max=max(self.temperatures),
            memory_used_mb_max=max(self.memory) / 2**20,
            throttle_reasons=reasons,
            throttled=bool(reasons),
            samples=len(self.clocks),
        )


def start(index: int = 0) -> tuple[GpuMonitor | None, str | None]:
    """A monitor sampling GPU index from now on, or None and why there is none."""
    try:
        import pynvml as nvml
    except ImportError:
        return None, "nvidia-ml-py is not installed"
    try:
        nvml.nvmlInit()
        return GpuMonitor(nvml, index), None
    except nvml.NVMLError as error:
        return None, f"NVML: {error}"
