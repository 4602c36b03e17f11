"""Finalising a job: one manifest with every item exactly once, a summary, an HTML report, the view of
its failed items (``worker.engine.failed_view``), and the shard index that results pages read.

One streaming pass over the shard manifests: the manifest is written shard by shard, counts and the kind's
figures are added up as items go by, and the report keeps only what it shows (a capped gallery and a
capped list of failures), so memory holds a few shards (and a byte per item for the arrays' rows)
whatever the job's size. Idempotent: it rebuilds
everything from the durable shard manifests, so running it twice (two shards finishing together, a
redelivered task) writes the same objects again.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared import keys
from shared.jobs import JobStatus, Progress, now
from shared.jobstore import LIVE
from shared.kinds import parse_spec
from shared.packs import pack_paths
from shared.results import ShardIndex, iter_shards, read_ahead, read_plan, write_index
from shared.storage import Storage
from worker.engine.arrays import write_job_arrays
from worker.engine.failed_view import FailedView
from worker.engine.job_files import JobFiles
from worker.engine.shard import CANCELED_REASON
from worker.kinds import map_plugin
from worker.report.aggregate import write_mean_map
from worker.report.page import console_url, render_report
from worker.runtime.services import Services


@dataclass
class _Tally:
    """What finalising learns from one pass over the items: counts, reasons, the report's picks."""

    gallery_size: int
    failures_shown: int
    ok: int = 0
    failed: int = 0
    canceled: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    gallery: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, item: dict[str, Any]) -> None:
        if item["status"] == "ok":
            self.ok += 1
            if len(self.gallery) < self.gallery_size and item.get("outputs"):
                self.gallery.append(item)
            return
        self.failed += 1
        self.canceled += item.get("error") == CANCELED_REASON
        reason = _reason_class(item.get("error"))
        if reason in self.reasons or len(self.reasons) < _REASON_CLASSES:
            self.reasons[reason] += 1
        else:
            self.reasons["(other reasons)"] += 1
        if len(self.failures) < self.failures_shown:
            self.failures.append(item)


_READ_AHEAD = 8
_REASON_CLASSES = 200  # distinct failure reasons counted by name in the summary; the rest together


def _stream_manifest(
    services: Services,
    tenant: str,
    job_id: str,
    status: str,
    plan: ShardIndex | None,
    visit: Callable[[dict[str, Any]], None],
) -> list[list[int]]:
    """Write manifest.json shard by shard (through a temporary file: memory holds a few shards), calling
    ``visit`` on each item; returns each shard's (ok, failed) counts."""
    storage = services.storage
    counts: list[list[int]] = []
    with tempfile.TemporaryFile() as spool:
        head = {"job": job_id, "status": status, "total": plan.total if plan is not None else 0}
        spool.write(json.dumps(head)[:-1].encode() + b',"items":[')
        first = True
        with ThreadPoolExecutor(_READ_AHEAD) as pool:  # shard manifests read a few ahead: latency, not memory
            shards = (
                iter_shards(storage, tenant, job_id, plan, read_ahead(pool, _READ_AHEAD))
                if plan is not None
                else iter(())
            )
            for _shard, items in shards:
                if items:
                    # One encoding and one write a shard: per item, the calls (and the GIL handed to the
                    # reading threads at every buffered flush) cost more than the encoding itself.
                    body = json.dumps(items, separators=(",", ":"), default=str).encode()
                    spool.write((b"" if first else b",") + body[1:-1])
                    first = False
                ok = 0
                for item in items:
                    ok += item["status"] == "ok"
                    visit(item)
                counts.append([ok, len(items) - ok])
        spool.write(b"]}")
        spool.seek(0)
        storage.put_stream(keys.manifest(tenant, job_id), spool, "application/json")  # type: ignore[arg-type]
    return counts


def finalize_job(services: Services, tenant: str, job_id: str) -> None:
    storage, coordinator, settings = services.storage, services.coordinator, services.settings
    plan = read_plan(storage, tenant, job_id)
    record = services.jobs.get(tenant, job_id)
    current = coordinator.get_status(job_id) or record.status.value
    final = JobStatus.succeeded if current in LIVE else JobStatus(current)
    hooks = map_plugin(record.kind).report
    figures = hooks.summary(parse_spec(record.spec)) if hooks.summary is not None else None
    tally = _Tally(settings.report_gallery_items, settings.report_failures)
    files = JobFiles(storage, tenant, job_id)
    ok_rows = np.zeros(plan.total if plan is not None else 0, dtype=bool)

    packs: set[str] = set()
    failed_view = FailedView(storage, tenant, job_id, plan.total if plan is not None else 0)

    def visit(item: dict[str, Any]) -> None:
        tally.add(item)
        if item["status"] == "ok":
            ok_rows[int(item["index"])] = True
            packs.update(pack_paths(item.get("outputs", {}).values()))
        else:
            failed_view.add(item)
        if figures is not None:
            figures.add(item)

    counts = _stream_manifest(services, tenant, job_id, final.value, plan, visit)
    failed_view.finish()
    total = plan.total if plan is not None else 0
    _drop_unused_packs(storage, tenant, job_id, packs)
    finished = now()
    started = record.started_at or record.created_at
    seconds = max((finished - started).total_seconds(), 1e-9)
    arrays = write_job_arrays(storage, tenant, job_id, total, ok_rows)
    summary: dict[str, Any] = {
        "job": job_id,
        "kind": record.kind,
        "name": record.name,
        "status": final.value,
        "total": total,
        "ok": tally.ok,
        "failed": tally.failed,
        "canceled_items": tally.canceled,
        "failure_reasons": dict(tally.reasons.most_common()),
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "seconds": round(seconds, 3),
        "items_per_second": round(total / seconds, 3),
        "aggregate": write_mean_map(storage, tenant, job_id),
        "arrays": {name: keys.relative_to_job(tenant, job_id, key) for name, key in arrays.items()},
    }
    if figures is not None:
        summary.update(figures.finish(files))
    prefix = keys.job_outputs_prefix(tenant, job_id)
    summary["pictures"] = {
        info.key[len(prefix) :]: keys.relative_to_job(tenant, job_id, info.key) for info in storage.list(prefix)
    }
    storage.put_json(keys.summary(tenant, job_id), summary)
    files.read_ahead(tally.gallery)
    read = files.read
    with ThreadPoolExecutor(_READ_AHEAD) as pool:  # the gallery's pictures, several items at once
        console = console_url(services.settings.public_url, job_id)
        html = render_report(read, record, summary, tally.gallery, tally.failures, hooks, pool.map, console)
    storage.put_bytes(keys.report(tenant, job_id), html.encode(), "text/html; charset=utf-8")
    # Last of the job's results: its presence tells the API that every item is final and the rest is written.
    write_index(storage, tenant, job_id, plan.starts if plan is not None else [], total, counts)
    progress = Progress(total=total, done=tally.ok, failed=tally.failed)
    if final != JobStatus.succeeded or services.jobs.transition(tenant, job_id, final, LIVE, progress=progress) is None:
        # Canceled (or canceled while we were writing): keep the status, record the final counts.
        record = services.jobs.load(tenant, job_id)
        record.progress = progress
        record.status = JobStatus(coordinator.get_status(job_id) or final.value)
        record.finished_at = record.finished_at or finished
        services.jobs.save(record)
    services.jobs.retire(job_id)
    services.done(job_id, "finalize")


def _drop_unused_packs(storage: Storage, tenant: str, job_id: str, used: set[str]) -> None:
    """Delete packs no item points into: written by an attempt that died before its items were recorded."""
    for info in storage.list(keys.packs_prefix(tenant, job_id)):
        if keys.relative_to_job(tenant, job_id, info.key) not in used:
            storage.delete(info.key)


def _reason_class(error: str | None) -> str:
    """Group failure messages for the summary (the first clause of the message)."""
    text = (error or "unknown").split(":", 1)[0]
    return text[:80]
