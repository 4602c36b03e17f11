"""One shard: decode its items, run the pipeline in batches, write outputs and the shard manifest.

Exactly once per item, whatever the redeliveries: finished items are recorded in the coordinator
after every batch and skipped on a rerun; outputs live under deterministic keys, so a rerun
overwrites; a finished shard (its manifest exists) is skipped. An item that was being processed
when the worker process died is retried alone, and after ``max_deliveries`` deaths it is
quarantined as a failed item instead of killing workers forever.

Only an item's own content fails it. A store or coordinator outage (``Retryable``) leaves the batch's
items unrecorded and propagates: the shard runs again and redoes them. A cancel is noticed between
items, even inside a batch (the context checks before each write).
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import numpy as np

from shared import keys
from shared.errors import FoveaError, ItemError, Retryable, StoreRefused
from shared.jobs import JobStatus, Progress
from shared.kinds import parse_spec
from shared.queueing import FINALIZE_TASK
from shared.work import shard_task_id
from worker.engine.plan import load_shard_entries
from worker.engine.shard_items import NO_IMAGE, decoded_items
from worker.kinds import map_plugin
from worker.pipelines.base import Item, MapPipeline, Outcome
from worker.runtime import metrics
from worker.runtime.context import CancelCheck, JobCanceled, JobContext
from worker.runtime.prefetch import prefetch
from worker.runtime.resources import Resources
from worker.runtime.services import Services

log = logging.getLogger(__name__)

CANCELED_REASON = "job canceled before this item was processed"


def failed(index: int, name: str, reason: str) -> dict[str, Any]:
    return {"index": index, "name": name, "status": "failed", "error": reason}


def run_shard(rt: Resources, tenant: str, job_id: str, shard: int) -> None:
    services = rt.services
    storage, coordinator, settings = services.storage, services.coordinator, services.settings
    started = time.perf_counter()
    if storage.exists(keys.shard_manifest(tenant, job_id, shard)):
        _complete(services, tenant, job_id, shard)
        return
    shard_entry = load_shard_entries(services, tenant, job_id, shard)
    entries = shard_entry["items"]
    names = {int(e[0]): str(e[1]) for e in entries}
    is_targets = shard_entry["source"] == "targets"  # items are parameters; otherwise extras are ground truth
    extra_at = 3 if shard_entry["source"] == "keys" else 2  # key shards hold the object's key at 2
    extras = {int(e[0]): e[extra_at] for e in entries if len(e) > extra_at and isinstance(e[extra_at], dict)}
    record = services.jobs.load(tenant, job_id)
    recorder = metrics.ItemRecorder(coordinator, job_id, record.kind)
    results = coordinator.item_results(job_id, list(names))
    pending = [i for i in names if i not in results]
    attempts = coordinator.attempts(job_id, pending)
    quarantined = {
        i: failed(i, names[i], f"quarantined: the worker process died {n} times while processing this item")
        for i, n in attempts.items()
        if n >= settings.max_deliveries
    }
    recorder.record(quarantined, metrics.QUARANTINED)
    results.update(quarantined)
    suspects = {i for i, n in attempts.items() if 0 < n < settings.max_deliveries}
    todo = [i for i in pending if i not in quarantined]

    spec = parse_spec(record.spec)
    canceled = CancelCheck(lambda: coordinator.get_status(job_id) == JobStatus.canceled.value)
    ctx = JobContext(storage, rt.models, tenant, job_id, rt.device, canceled)
    pipeline = map_plugin(spec.kind).pipeline(spec, ctx)
    batch: list[Item] = []

    def flush() -> None:
        if batch:
            with recorder.batch():
                outcome = _run_batch(services, pipeline, tenant, job_id, batch)
            recorder.record(outcome, metrics.PIPELINE)
            results.update(outcome)
            batch.clear()

    decoded = decoded_items(services, tenant, job_id, shard, shard_entry, set(todo), is_targets)
    try:
        for index, image in prefetch(decoded, depth=pipeline.batch_size):
            if canceled.now():
                break
            if isinstance(image, ItemError):
                one = {index: failed(index, names[index], str(image))}
                recorder.record(one, metrics.INPUT)
                results.update(one)
                continue
            if is_targets:
                item = Item(index, names[index], NO_IMAGE, params=extras[index])
            else:
                item = Item(index, names[index], image, extras.get(index))
            if index in suspects:
                flush()
                batch.append(item)
                flush()
                continue
            batch.append(item)
            if len(batch) >= pipeline.batch_size:
                flush()
        if not canceled.now():
            flush()
    except JobCanceled:
        pass  # the batch in flight stops at its next write; its items are recorded as canceled below
    for index in names:
        results.setdefault(index, failed(index, names[index], CANCELED_REASON))
    _finish(services, tenant, job_id, shard, results)
    metrics.SHARD_SECONDS.labels(record.kind).observe(time.perf_counter() - started)


def abandon_shard(services: Services, tenant: str, job_id: str, shard: int, reason: str) -> None:
    """Give up on a shard whose task kept failing: unfinished items fail with ``reason``."""
    entries = load_shard_entries(services, tenant, job_id, shard)["items"]
    names = {int(e[0]): str(e[1]) for e in entries}
    results = services.coordinator.item_results(job_id, list(names))
    missing = {i: failed(i, n, reason) for i, n in names.items() if i not in results}
    kind = services.jobs.load(tenant, job_id).kind
    metrics.ItemRecorder(services.coordinator, job_id, kind).record(missing, metrics.ABANDONED)
    results.update(missing)
    _finish(services, tenant, job_id, shard, results)


def _run_batch(
    services: Services, pipeline: MapPipeline, tenant: str, job_id: str, batch: list[Item]
) -> dict[int, dict[str, Any]]:
    services.coordinator.begin_attempt(job_id, [item.index for item in batch])
    try:
        outcomes = pipeline.run_batch(batch)
        sums = pipeline.take_batch_sums()
        if sums is not None:
            # Keyed by the batch's first item and written before its items are recorded: a rerun after a
            # crash re-forms batches from unrecorded items only, so each item is summed exactly once.
            buffer = io.BytesIO()
            np.savez(buffer, **sums)  # type: ignore[arg-type]
            services.storage.put_bytes(keys.batch_sums(tenant, job_id, batch[0].index), buffer.getvalue())
        _store_arrays(services, tenant, job_id, batch, outcomes)
        return {item.index: _ok(tenant, job_id, item, outcome) for item, outcome in zip(batch, outcomes, strict=True)}
    except (Retryable, StoreRefused, JobCanceled):
        raise  # an outage, a refusal of the store or a cancel is never an item's fault
    except Exception as exc:
        if len(batch) == 1:
            log.warning("item %s failed: %s", batch[0].name, exc)
            return {batch[0].index: failed(batch[0].index, batch[0].name, _reason(exc))}
    # One bad item must not fail its neighbours: retry them one by one.
    out: dict[int, dict[str, Any]] = {}
    for item in batch:
        out.update(_run_batch(services, pipeline, tenant, job_id, [item]))
    return out


def _store_arrays(services: Services, tenant: str, job_id: str, batch: list[Item], outcomes: list[Outcome]) -> None:
    """The batch's per-item arrays, keyed by its first item like the sums; the finaliser places each row
    by its item's index, so a rerun that writes a row again cannot duplicate it."""
    names = sorted({name for outcome in outcomes for name in outcome.arrays})
    if not names:
        return
    rows = [(item.index, outcome) for item, outcome in zip(batch, outcomes, strict=True)]
    packed: dict[str, np.ndarray] = {}
    for name in names:
        have = [(index, o.arrays[name]) for index, o in rows if name in o.arrays]
        packed[f"index.{name}"] = np.array([index for index, _ in have], dtype=np.int64)
        packed[f"rows.{name}"] = np.stack([np.asarray(value, dtype=np.float32) for _, value in have])
    buffer = io.BytesIO()
    np.savez(buffer, **packed)  # type: ignore[arg-type]
    services.storage.put_bytes(keys.batch_arrays(tenant, job_id, batch[0].index), buffer.getvalue())


def _ok(tenant: str, job_id: str, item: Item, outcome: Outcome) -> dict[str, Any]:
    """The item's manifest entry: its outputs named relative to the job's folder (no storage layout shown)."""
    outputs = {name: keys.relative_to_job(tenant, job_id, key) for name, key in outcome.outputs.items()}
    return {"index": item.index, "name": item.name, "status": "ok", "outputs": outputs, **outcome.data}


def _reason(exc: Exception) -> str:
    if isinstance(exc, FoveaError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:500]


def _finish(services: Services, tenant: str, job_id: str, shard: int, results: dict[int, dict[str, Any]]) -> None:
    items = [results[i] for i in sorted(results)]
    services.storage.put_json(keys.shard_manifest(tenant, job_id, shard), {"shard": shard, "items": items})
    _complete(services, tenant, job_id, shard)


def _complete(services: Services, tenant: str, job_id: str, shard: int) -> None:
    """The shard's manifest is stored: count it, keep the job's durable progress current (what readers see
    if the coordinator is down), and when it was the last, submit the finaliser before dropping the shard."""
    coordinator = services.coordinator
    done = coordinator.mark_shard_done(job_id, shard)
    progress = coordinator.progress(job_id)
    shards = progress.shards if progress is not None else None
    if shards is None:  # the coordinator lost the plan (e.g. a Redis without AOF restarted): ask the store
        shards = int(services.storage.get_json(keys.plan(tenant, job_id))["shards"])
    if progress is not None:
        live = Progress(total=progress.total, done=progress.done, failed=progress.failed)
        services.jobs.save_progress(tenant, job_id, live)
    if done >= shards:
        services.submit(job_id, "finalize", FINALIZE_TASK, (tenant, job_id))
    services.done(job_id, shard_task_id(shard))
