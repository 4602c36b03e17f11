"""Ended jobs written straight into the store, the way the finaliser leaves them (record, shard
manifests, shard index, summary), with items whose figures are drawn from a seed: to test and measure
what reads results (pages, sorted views, the console) on jobs of any size without running pipelines."""

from __future__ import annotations

import random
from typing import Any

from shared import keys
from shared.jobs import JobStatus, Progress
from shared.jobstore import LIVE, JobStore
from shared.kinds import parse_spec
from shared.results import write_index
from shared.storage import Storage

CLASSES = ("circle", "square", "triangle", "cross")


def item(index: int, rng: random.Random, fail_every: int) -> dict[str, Any]:
    name = f"photos/img_{index:06d}.png"
    if fail_every and index % fail_every == fail_every - 1:
        return {"index": index, "name": name, "status": "failed", "error": f"{name}: not an image"}
    probability = round(rng.random(), 6)
    top = rng.randrange(len(CLASSES))
    return {
        "index": index,
        "name": name,
        "status": "ok",
        "outputs": {"overlay": f"items/{index:08d}/overlay", "heatmap": f"items/{index:08d}/heatmap"},
        "predictions": [{"class": top, "name": CLASSES[top], "probability": probability}],
        "target": {"class": top, "name": CLASSES[top]},
        "quality": {
            "pointing_hit": rng.random() < 0.5,
            "box_fraction": round(probability / 2, 6),  # drawn from no new number: later items stay as they were
            "deletion_auc": round(rng.random(), 6),
        },
    }


def ended_job(
    storage: Storage,
    jobs: JobStore,
    tenant: str,
    items: int,
    shard_items: int = 1000,
    fail_every: int = 7,
    seed: int = 0,
) -> str:
    """A succeeded saliency job of ``items`` items in shards of ``shard_items``; returns its id."""
    spec = parse_spec(
        {
            "kind": "saliency",
            "method": "gradient",
            "input": "upload://synthetic",
            "model": {"preset": "squeezenet1_1-imagenet"},
        }
    )
    job_id = jobs.create(tenant, spec.kind, spec.model_dump(mode="json"), None).id
    rng = random.Random(seed)
    starts, counts = list(range(0, items, shard_items)), []
    for shard, start in enumerate(starts):
        rows = [item(i, rng, fail_every) for i in range(start, min(start + shard_items, items))]
        storage.put_json(keys.shard_manifest(tenant, job_id, shard), {"shard": shard, "items": rows})
        ok = sum(1 for row in rows if row["status"] == "ok")
        counts.append([ok, len(rows) - ok])
    write_index(storage, tenant, job_id, starts, items, counts)
    ok = sum(c[0] for c in counts)
    summary = {
        "status": "succeeded",
        "total": items,
        "ok": ok,
        "failed": items - ok,
        "seconds": 1.0,
        "items_per_second": float(items),
        "failure_reasons": {"input": items - ok},
    }
    storage.put_json(keys.summary(tenant, job_id), summary)
    jobs.transition(tenant, job_id, JobStatus.running, LIVE)
    jobs.save_progress(tenant, job_id, Progress(total=items, done=ok, failed=items - ok))
    jobs.transition(
        tenant, job_id, JobStatus.succeeded, LIVE, progress=Progress(total=items, done=ok, failed=items - ok)
    )
    return job_id
