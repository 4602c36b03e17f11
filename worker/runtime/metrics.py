"""The worker's Prometheus metrics, written by whichever process does the work.

Celery runs tasks in prefork children, so in a worker started by ``fovea worker`` every process writes
its figures to its own file (prometheus-client's multiprocess mode) and the main process serves their
sum (``worker.runtime.exporter``). Counters of a child that died stay in the sum, so totals never go
back while the worker runs. Label values are small fixed sets (kinds, task types, reasons), never ids.

Items are counted where they are recorded, and only by the call that recorded them first: a shard that
ran twice, on one worker or two, counts each item once, so the sum over every worker's endpoint is the
number of items the deployment finished.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from shared.coordination import Coordinator

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200)
_STORE_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

ITEMS_PROCESSED = Counter("fovea_items_processed", "Items finished with an ok result (each counted once)", ["kind"])
ITEMS_FAILED = Counter(
    "fovea_items_failed",
    "Items finished as failed (each counted once): input (the item's own content, found by the planner or the "
    "decoder), pipeline (the pipeline failed on it alone), quarantined (its worker died on it too often), "
    "abandoned (its shard kept failing)",
    ["kind", "reason"],
)
BATCH_SECONDS = Histogram(
    "fovea_batch_seconds", "A batch through the pipeline, outputs written", ["kind"], buckets=_SECONDS
)
SHARD_SECONDS = Histogram(
    "fovea_shard_seconds", "A shard run from its first item to its manifest", ["kind"], buckets=_SECONDS
)
TASK_SECONDS = Histogram("fovea_task_seconds", "One delivery of a task, however it ended", ["task"], buckets=_SECONDS)
MODEL_CACHE_HITS = Counter("fovea_model_cache_hits", "Models served from the worker's model cache")
MODEL_CACHE_LOADS = Counter("fovea_model_cache_loads", "Models loaded into the worker's model cache")
MODEL_LOAD_SECONDS = Histogram("fovea_model_load_seconds", "Loading one model into the cache", buckets=_SECONDS)
RETRIES = Counter(
    "fovea_retries",
    "Tries again inside a task: after its own error (error) or after waiting out an outage of the store or "
    "the coordinator (outage)",
    ["task", "cause"],
)
OUTAGE_WAIT_SECONDS = Counter("fovea_outage_wait_seconds", "Time tasks waited for the store or coordinator", ["task"])
REDELIVERIES = Counter(
    "fovea_redeliveries",
    "Tasks delivered again: by the broker after a worker was lost (broker), handed back at the time limit "
    "(handed_back), or sent again by the reconciler (worker_died, lost_message, broker_lost)",
    ["task", "cause"],
)
JOBS_RESTORED = Counter("fovea_jobs_restored", "Live jobs the reconciler rebuilt from the store")
STORE_SECONDS = Histogram(
    "fovea_store_request_seconds",
    "Requests to the object store, waiting included",
    ["operation"],
    buckets=_STORE_SECONDS,
)
INPUT_WAIT_SECONDS = Counter(
    "fovea_input_wait_seconds", "Time the batch loop waited for its next item (store reads and decoding)"
)
WORKER_BUSY = Gauge("fovea_worker_busy", "1 while the worker runs a task", multiprocess_mode="mostrecent")
PROGRESS_TIME = Gauge(
    "fovea_worker_progress_timestamp_seconds",
    "When the worker last finished a batch or a task",
    multiprocess_mode="max",
)
GPU_PEAK_BYTES = Gauge(
    "fovea_gpu_memory_peak_bytes",
    "Most GPU memory the worker's PyTorch allocator has reserved since the worker started",
    ["device"],
    multiprocess_mode="max",
)

INPUT, PIPELINE, QUARANTINED, ABANDONED = "input", "pipeline", "quarantined", "abandoned"
"""Why an item failed (the ``reason`` label)."""


def task_label(task_id: str) -> str:
    """The task type of a task id (``shard:3`` -> ``shard``; ``plan``, ``finalize``, ``train``)."""
    return task_id.split(":", 1)[0]


class ItemRecorder:
    """Records a job's finished items in the coordinator and counts those this call recorded first."""

    def __init__(self, coordinator: Coordinator, job: str, kind: str) -> None:
        self.coordinator, self.job, self.kind = coordinator, job, kind

    def record(self, results: dict[int, dict[str, Any]], reason: str) -> None:
        """``reason``: why the failed ones among ``results`` failed."""
        fresh = self.coordinator.record_items(self.job, results)
        ok = sum(1 for index in fresh if results[index].get("status") == "ok")
        if ok:
            ITEMS_PROCESSED.labels(self.kind).inc(ok)
        if len(fresh) > ok:
            ITEMS_FAILED.labels(self.kind, reason).inc(len(fresh) - ok)

    @contextmanager
    def batch(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        BATCH_SECONDS.labels(self.kind).observe(time.perf_counter() - start)
        PROGRESS_TIME.set(time.time())
