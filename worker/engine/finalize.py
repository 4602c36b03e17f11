"""Finalising a job: one manifest with every item exactly once, a summary, and an HTML report.

Idempotent: it rebuilds everything from the durable shard manifests, so running it twice (two
shards finishing together, a redelivered task) writes the same objects again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from shared import keys
from shared.errors import NotFound
from shared.jobs import JobStatus, Progress, now
from shared.jobstore import LIVE
from shared.kinds import parse_spec
from shared.storage import Storage
from worker.engine.arrays import write_job_arrays
from worker.engine.shard import CANCELED_REASON
from worker.kinds import map_plugin
from worker.report.aggregate import write_mean_map
from worker.report.page import render_report
from worker.runtime.services import Services


def collect_items(services: Services, tenant: str, job_id: str) -> tuple[list[dict[str, Any]], int]:
    """All items of a job in index order, and the planned total. Raises RuntimeError if one is missing."""
    storage = services.storage
    try:
        plan = storage.get_json(keys.plan(tenant, job_id))
    except NotFound:
        return [], 0  # canceled before planning: no items
    by_index: dict[int, dict[str, Any]] = {int(e["index"]): e for e in plan["errors"]}
    for shard in range(int(plan["shards"])):
        manifest = storage.get_json(keys.shard_manifest(tenant, job_id, shard))
        for item in manifest["items"]:
            by_index[int(item["index"])] = item
    total = int(plan["total"])
    missing = [i for i in range(total) if i not in by_index]
    if missing or len(by_index) != total:
        raise RuntimeError(f"job {job_id}: {len(missing)} items missing from the shard manifests")
    return [by_index[i] for i in range(total)], total


def finalize_job(services: Services, tenant: str, job_id: str) -> None:
    storage, coordinator = services.storage, services.coordinator
    items, total = collect_items(services, tenant, job_id)
    record = services.jobs.get(tenant, job_id)
    current = coordinator.get_status(job_id) or record.status.value
    final = JobStatus.succeeded if current in LIVE else JobStatus(current)
    ok = sum(1 for item in items if item["status"] == "ok")
    canceled = sum(1 for item in items if item.get("error") == CANCELED_REASON)
    failed = total - ok
    finished = now()
    started = record.started_at or record.created_at
    seconds = max((finished - started).total_seconds(), 1e-9)
    reasons = Counter(_reason_class(item["error"]) for item in items if item["status"] != "ok")
    arrays = write_job_arrays(storage, tenant, job_id, total, {i["index"] for i in items if i["status"] == "ok"})
    summary: dict[str, Any] = {
        "job": job_id,
        "kind": record.kind,
        "name": record.name,
        "status": final.value,
        "total": total,
        "ok": ok,
        "failed": failed,
        "canceled_items": canceled,
        "failure_reasons": dict(reasons.most_common()),
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "seconds": round(seconds, 3),
        "items_per_second": round(total / seconds, 3),
        "aggregate": write_mean_map(storage, tenant, job_id),
        "arrays": {name: keys.relative_to_job(tenant, job_id, key) for name, key in arrays.items()},
    }
    hooks = map_plugin(record.kind).report
    if hooks.summary is not None:
        figures = hooks.summary(parse_spec(record.spec))
        for item in items:
            figures.add(item)
        summary.update(figures.finish(_JobFiles(storage, tenant, job_id)))
    prefix = keys.job_outputs_prefix(tenant, job_id)
    summary["pictures"] = {
        info.key[len(prefix) :]: keys.relative_to_job(tenant, job_id, info.key) for info in storage.list(prefix)
    }
    storage.put_json(
        keys.manifest(tenant, job_id), {"job": job_id, "status": final.value, "total": total, "items": items}
    )
    storage.put_json(keys.summary(tenant, job_id), summary)
    read = _JobFiles(storage, tenant, job_id).read
    html = render_report(read, record, summary, items, hooks, services.settings.report_gallery_items)
    storage.put_bytes(keys.report(tenant, job_id), html.encode(), "text/html; charset=utf-8")
    progress = Progress(total=total, done=ok, failed=failed)
    if final != JobStatus.succeeded or services.jobs.transition(tenant, job_id, final, LIVE, progress=progress) is None:
        # Canceled (or canceled while we were writing): keep the status, record the final counts.
        record = services.jobs.load(tenant, job_id)
        record.progress = progress
        record.status = JobStatus(coordinator.get_status(job_id) or final.value)
        record.finished_at = record.finished_at or finished
        services.jobs.save(record)
    services.jobs.retire(job_id)
    services.done(job_id, "finalize")


def _reason_class(error: str | None) -> str:
    """Group failure messages for the summary (the first clause of the message)."""
    text = (error or "unknown").split(":", 1)[0]
    return text[:80]


class _JobFiles:
    """The job's folder, as summaries and the report use it: paths relative to it, never whole keys."""

    def __init__(self, storage: Storage, tenant: str, job_id: str) -> None:
        self.storage, self.tenant, self.job_id = storage, tenant, job_id

    def read(self, path: str) -> bytes:
        """A file of the job, by its path relative to the job's folder (as manifests name them)."""
        return self.storage.get_bytes(keys.in_job(self.tenant, self.job_id, path))

    def write_job(self, output: str, data: bytes, content_type: str) -> str:
        key = keys.job_output(self.tenant, self.job_id, output)
        self.storage.put_bytes(key, data, content_type)
        return keys.relative_to_job(self.tenant, self.job_id, key)
