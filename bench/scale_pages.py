"""A million-item job's results pages and finaliser, on generated shard manifests (running every item here
would take days): redis-server, SeaweedFS and the API over HTTP, as in production.

The job is what a finished spectral-residual job with packed outputs leaves before it is finalised:
``plan.json`` with each shard's first item, one manifest per shard (64 items, one in 50 failed), the
coordinator's per-shard counts, and a pack the items' outputs point into. Figures: page latency p50/p99
at offsets 0, middle and end (and filtered by status), while running and once ended; the finaliser's
time and peak memory (a child process) at two sizes, to show it flat; the anchor, what every page cost
before (the whole manifest read and parsed), measured on the smaller job.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from shared import keys
from shared.jobs import JobStatus
from shared.jobstore import LIVE
from shared.kinds import parse_spec
from shared.settings import Settings
from shared.storage import Storage
from tests.support.procs import start_redis, start_seaweed
from tests.support.runtime import recording_resources
from tests.support.s3 import new_bucket
from tests.support.stack import Stack, distributed_env
from worker.runtime.packing import PackWriter

REPO = Path(__file__).resolve().parents[1]
KEYS = ("bench-access", "bench-secret-key")
SPEC = {"kind": "saliency", "method": "spectral_residual", "input": "upload://generated", "packed_outputs": True}


def _picture(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def generate(storage: Storage, coordinator: Any, job_id: str, items: int, per_shard: int) -> None:
    """The job's plan, shard manifests, per-shard counts and one real pack, as workers would leave them."""
    pack = PackWriter(storage, "alice", job_id, 0)
    outputs = {
        name: keys.relative_to_job("alice", job_id, pack.add(0, file, _picture(fmt)))
        for name, file, fmt in [
            ("heatmap", "heatmap.png", "PNG"),
            ("overlay", "overlay.jpg", "JPEG"),
            ("objects", "objects.png", "PNG"),
            ("boxes", "boxes.jpg", "JPEG"),
        ]
    }
    pack.seal()
    starts = list(range(0, items, per_shard))

    def shard(number: int) -> None:
        first = starts[number]
        rows = []
        ok = 0
        for index in range(first, min(first + per_shard, items)):
            name = f"img/{index:07d}.jpg"
            if index % 50 == 49:
                rows.append({"index": index, "name": name, "status": "failed", "error": "not an image: cannot decode"})
            else:
                ok += 1
                box = [3, 5, 40, 52, 0.82, 1]
                rows.append({"index": index, "name": name, "status": "ok", "outputs": outputs, "boxes": [box]})
        storage.put_json(keys.shard_manifest("alice", job_id, number), {"shard": number, "items": rows})
        coordinator.mark_shard_done(job_id, number, ok, len(rows) - ok)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(shard, range(len(starts))))
    plan = {
        "step": 1,
        "complete": True,
        "total": items,
        "shards": len(starts),
        "starts": starts,
        "cursor": {"done": True},
    }
    storage.put_json(keys.plan("alice", job_id), plan)
    coordinator.set_plan(job_id, items, len(starts))


def latency(client: Any, job_id: str, params: dict[str, Any], requests: int) -> dict[str, float]:
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(f"/v1/jobs/{job_id}/results", params=params)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200 and response.json()["items"], response.text[:300]
    times.sort()
    return {
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "p99_ms": round(times[int(0.99 * (len(times) - 1))] * 1000, 1),
    }


def finalize_child(env: dict[str, str], job_id: str | None) -> tuple[float, float]:
    """Run the finaliser in a process of its own: (seconds, peak RSS in MB). Without a job: the same
    process with the same modules loaded and nothing finalised (the baseline)."""
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "from shared.settings import Settings\n"
        "from tests.support.runtime import recording_resources\n"
        "from worker.engine.finalize import finalize_job\n"
        "from worker.kinds import map_plugin\n"
        "services = recording_resources(Settings()).services\n"
        "map_plugin('saliency')\n"
        f"job = {job_id!r}\n"
        "if job: finalize_job(services, 'alice', job)\n"
    )
    began = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env}, cwd=REPO)
    _, status, usage = os.wait4(child.pid, 0)
    assert status == 0, status
    return time.perf_counter() - began, usage.ru_maxrss / 1024


def pages(args: argparse.Namespace, emit: Callable[..., None]) -> None:
    work = Path(tempfile.mkdtemp(prefix="fovea-pages-"))
    redis_proc, redis_port = start_redis(work / "redis")
    weed, endpoint = start_seaweed(work / "weed", *KEYS)
    bucket = new_bucket(endpoint, *KEYS)
    env = distributed_env(f"redis://127.0.0.1:{redis_port}", endpoint, bucket)
    env |= {
        "FOVEA_S3_ACCESS_KEY_ID": KEYS[0],
        "FOVEA_S3_SECRET_ACCESS_KEY": KEYS[1],
        "FOVEA_DATA_DIR": str(work / "data"),
    }
    os.environ.update(env)
    running = Stack(work / "stack", env, workers=0)
    try:
        services = recording_resources(Settings()).services
        sizes = [args.items // 10, args.items]  # the smaller job: the anchor, and the finaliser's flatness
        jobs = {}
        for items in sizes:
            job_id = services.jobs.create("alice", "saliency", parse_spec(SPEC).model_dump(mode="json"), None).id
            services.jobs.transition("alice", job_id, JobStatus.running, LIVE)
            began = time.perf_counter()
            generate(services.storage, services.coordinator, job_id, items, args.shard_items)
            emit(
                figure="generated",
                items=items,
                shards=-(-items // args.shard_items),
                seconds=round(time.perf_counter() - began, 1),
            )
            jobs[items] = job_id
        with running.client("key-a") as client:
            for state in ("running", "ended"):
                if state == "ended":
                    _, baseline = finalize_child(env, None)
                    emit(figure="finaliser_baseline", peak_rss_mb=round(baseline, 1), note="its modules, no job")
                    for items, job_id in jobs.items():
                        seconds, peak = finalize_child(env, job_id)
                        emit(figure="finaliser", items=items, seconds=round(seconds, 1), peak_rss_mb=round(peak, 1))
                job_id, items = jobs[args.items], args.items
                for limit in (100, 1000):
                    for offset in (0, items // 2, items - limit):
                        count = args.requests if limit == 100 else args.requests // 4
                        found = latency(client, job_id, {"offset": offset, "limit": limit}, count)
                        emit(
                            figure="page_latency",
                            job=state,
                            items=items,
                            offset=offset,
                            limit=limit,
                            **found,
                            goal="p99 < 100 ms",
                        )
                for offset in (0, items // 100):
                    params = {"offset": offset, "limit": 100, "status": "failed"}
                    found = latency(client, job_id, params, args.requests // 4)
                    emit(
                        figure="page_latency",
                        job=state,
                        items=items,
                        offset=offset,
                        limit=100,
                        status="failed",
                        **found,
                    )
        small = jobs[sizes[0]]
        began = time.perf_counter()
        manifest = json.loads(services.storage.get_bytes(keys.manifest("alice", small)))
        page = manifest["items"][sizes[0] // 2 : sizes[0] // 2 + 100]
        anchor = time.perf_counter() - began
        emit(
            figure="anchor_whole_manifest_page_ms",
            items=sizes[0],
            value=round(anchor * 1000, 1),
            got=len(page),
            note="grows with the job",
        )
        for items, job_id in jobs.items():
            objects = sum(1 for _ in services.storage.list(keys.job_prefix("alice", job_id)))
            shards = -(-items // args.shard_items)
            # Generation stores one pack for all shards; a real job stores one a shard.
            emit(figure="objects_in_store", items=items, packed=objects + shards - 1, shards=shards)
    finally:
        running.stop()
        weed.stop()
        redis_proc.stop()
