"""What a worker's metrics cost per item, against the cheapest real item work.

Per item the engine adds one counter increment (time waiting for input) and two histogram observations
(the store requests of its two outputs); per batch one counter increment (items recorded) and one
observation (batch duration). Measured in prometheus-client's multiprocess mode, as workers run (every
update writes a memory-mapped file). Two anchors in the same run: OpenCV's spectral residual saliency on
one 256x256 image (the cheapest pipeline's core alone), and the same item through the pipeline as a shard
runs it (maps, PNG and JPEG encoding, two writes to a local store; no network). Prints one JSON line per
figure and the ratios.

    .venv/bin/python bench/metrics_overhead.py [--items 20000] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fovea-bench-metrics-")  # before the client loads

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from shared.kinds import parse_spec  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.storage import open_storage  # noqa: E402
from worker.pipelines.base import Item  # noqa: E402
from worker.pipelines.saliency_method import SaliencyPipeline  # noqa: E402
from worker.runtime import metrics  # noqa: E402
from worker.runtime.context import JobContext  # noqa: E402
from worker.runtime.models import ModelCache  # noqa: E402


def metrics_per_item(items: int, batch: int) -> float:
    start = time.perf_counter()
    for index in range(items):
        metrics.INPUT_WAIT_SECONDS.inc(0.001)
        metrics.STORE_SECONDS.labels("put").observe(0.01)
        metrics.STORE_SECONDS.labels("put").observe(0.01)
        if index % batch == 0:
            metrics.ITEMS_PROCESSED.labels("saliency").inc(batch)
            metrics.BATCH_SECONDS.labels("saliency").observe(0.1)
    return (time.perf_counter() - start) / items


def spectral_residual_per_item(items: int) -> float:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(256, 256, 3), dtype=np.uint8)
    saliency = cv2.saliency.StaticSaliencySpectralResidual_create()
    start = time.perf_counter()
    for _ in range(items):
        ok, _map = saliency.computeSaliency(image)
        assert ok
    return (time.perf_counter() - start) / items


def pipeline_per_item(items: int, batch: int) -> float:
    """One item as a shard processes it, its outputs written to a local store."""
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="fovea-bench-store-")), signing_secret="bench")
    storage = open_storage(settings)
    ctx = JobContext(storage, ModelCache(settings, storage), "bench", "job", torch.device("cpu"))
    pipeline = SaliencyPipeline(
        parse_spec({"kind": "saliency", "method": "spectral_residual", "input": "upload://bench"}), ctx
    )
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(256, 256, 3), dtype=np.uint8)
    start = time.perf_counter()
    for first in range(0, items, batch):
        pipeline.run_batch([Item(i, f"{i}.png", image) for i in range(first, min(items, first + batch))])
    return (time.perf_counter() - start) / items


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    metrics_per_item(1000, args.batch)  # warm up: files created, pages touched
    cost = metrics_per_item(args.items, args.batch)
    core = spectral_residual_per_item(max(200, args.items // 20))
    item = pipeline_per_item(max(64, args.items // 100), args.batch)
    print(json.dumps({"figure": "metrics_per_item_us", "value": round(cost * 1e6, 2)}))
    print(json.dumps({"figure": "spectral_residual_256px_core_us", "value": round(core * 1e6, 1)}))
    print(json.dumps({"figure": "spectral_residual_256px_item_us", "value": round(item * 1e6, 1)}))
    print(json.dumps({"figure": "metrics_over_core", "value": round(cost / core, 4)}))
    print(json.dumps({"figure": "metrics_over_item", "value": round(cost / item, 4)}))


if __name__ == "__main__":
    main()
