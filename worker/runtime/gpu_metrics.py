"""GPU figures for a worker's metrics.

- ``GpuCollector``: utilisation and memory of every GPU the worker can see, read through NVML at each
  scrape by the worker's main process. NVML is the driver's management library, not CUDA: it takes no
  GPU memory and is safe in the parent of the prefork children. Without an NVIDIA driver (CI, a CPU
  machine) it exports ``fovea_gpus 0`` and nothing else.
- ``record_device_peak``: the PyTorch allocator's peak in the child that ran the task (what sampling
  at scrape time would miss).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pynvml
import torch
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from worker.runtime.metrics import GPU_PEAK_BYTES

log = logging.getLogger(__name__)


class GpuCollector(Collector):
    def __init__(self) -> None:
        try:
            pynvml.nvmlInit()
            self.available = True
        except pynvml.NVMLError as exc:
            log.info("no GPU metrics: NVML is not available (%s)", exc)
            self.available = False

    def describe(self) -> list[GaugeMetricFamily]:
        """Every family this collector can export (the per-GPU ones only where a GPU is seen)."""
        labels = ["gpu", "uuid"]
        return [
            GaugeMetricFamily("fovea_gpus", "GPUs this worker sees through NVML (0: no NVIDIA driver)"),
            GaugeMetricFamily("fovea_gpu_info", "A GPU this worker sees: its model", labels=[*labels, "name"]),
            GaugeMetricFamily(
                "fovea_gpu_utilization_ratio", "Share of the last sample period a kernel ran (NVML)", labels=labels
            ),
            GaugeMetricFamily("fovea_gpu_memory_used_bytes", "GPU memory in use, all processes", labels=labels),
            GaugeMetricFamily("fovea_gpu_memory_total_bytes", "GPU memory installed", labels=labels),
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gpus, info, utilisation, used, total = self.describe()
        count = 0
        if self.available:
            try:
                count = pynvml.nvmlDeviceGetCount()
                for index in range(count):
                    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                    ids = [str(index), _text(pynvml.nvmlDeviceGetUUID(handle))]
                    info.add_metric([*ids, _text(pynvml.nvmlDeviceGetName(handle))], 1)
                    utilisation.add_metric(ids, pynvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100)
                    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                    used.add_metric(ids, memory.used)
                    total.add_metric(ids, memory.total)
            except pynvml.NVMLError as exc:  # a GPU fell off the bus, a driver reload: report none this time
                log.warning("NVML read failed: %s", exc)
                count = 0
        gpus.add_metric([], count)
        yield gpus
        if count:
            yield from (info, utilisation, used, total)


def record_device_peak(device: torch.device) -> None:
    """Note the allocator's peak on ``device`` (after a task; nothing on CPU or before CUDA was used)."""
    if device.type == "cuda" and torch.cuda.is_initialized():
        GPU_PEAK_BYTES.labels(str(device)).set(torch.cuda.max_memory_reserved(device))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
