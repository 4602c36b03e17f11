"""One shard: decode its items, run the pipeline in batches, write outputs and the shard manifest.

Exactly once per item, whatever the redeliveries: finished items are recorded in the coordinator
after every batch (with packed outputs, once the pack segment holding their outputs is stored) and
skipped on a rerun; outputs live under deterministic keys, so a rerun overwrites (a pack is never
overwritten: each attempt writes its own, and only recorded items point into one); a finished shard
(its manifest exists) is skipped. An item that was being processed when the worker process died is
retried alone, and after ``max_deliveries`` deaths it is quarantined as a failed item instead of
killing workers forever.

Only an item's own content fails it. A store or coordinator outage (``Retryable``) leaves the batch's
items unrecorded and propagates: the shard runs again and redoes them. A cancel is noticed between
items, even inside a batch (the context checks before each write).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared import keys
from shared.errors import FoveaError, ItemError, NotFound, Retryable, StoreRefused
from shared.jobs import JobStatus, Progress
from shared.kinds import parse_spec
from shared.queueing import FINALIZE_TASK
from shared.work import shard_task_id
from worker.engine.batch_extras import BatchExtras
from worker.engine.plan import load_shard_entries, load_state
from worker.engine.shard_items import NO_IMAGE, Wanted, decoded_items
from worker.engine.shard_recorder import ShardRecorder
from worker.engine.write_behind import Tail
from worker.kinds import map_plugin
from worker.pipelines.base import Item, MapPipeline, Outcome
from worker.runtime import metrics
from worker.runtime.context import CancelCheck, JobCanceled, JobContext
from worker.runtime.packing import PackWriter
from worker.runtime.prefetch import Prefetch
from worker.runtime.resources import Resources
from worker.runtime.services import Services
from worker.runtime.thumbnails import Thumbnails

log = logging.getLogger(__name__)

CANCELED_REASON = "job canceled before this item was processed"
FAILED_REASON = "job failed before this item was processed"
_STOPPED = frozenset({JobStatus.canceled.value, JobStatus.failed.value})
"""A shard stops at the next item once its job is canceled, or failed (as a whole: see the job's error)."""


def failed(index: int, name: str, reason: str) -> dict[str, Any]:
    return {"index": index, "name": name, "status": "failed", "error": reason}


def run_shard(rt: Resources, tenant: str, job_id: str, shard: int) -> None:
    """Run the shard, its tail included."""
    tail = start_shard(rt, tenant, job_id, shard)
    if tail is not None:
        tail()


def start_shard(rt: Resources, tenant: str, job_id: str, shard: int) -> Tail | None:
    """Run the shard's items; returns its tail (None when nothing is left): store what waits for the store,
    record those items, store the shard's manifest and count the shard. A worker runs the tail on its
    write-behind thread (``worker.engine.write_behind``) while it takes the next shard.

    Opening a shard is round trips only, so they overlap: its manifest (finished already?), its entries and
    the job's record (once a process: only its kind and spec are used, which never change) are read at once,
    and its items are read and decoded while the coordinator is asked which of them are still to do."""
    services = rt.services
    storage, coordinator = services.storage, services.coordinator
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fovea-open") as reads:
        finished = reads.submit(_finished, services, tenant, job_id, shard)
        job = reads.submit(rt.jobs.get, (tenant, job_id), lambda: services.jobs.load(tenant, job_id))
        entry = load_shard_entries(services, tenant, job_id, shard)
        done, record = finished.result(), job.result()
    if done is not None:  # finished already (a redelivery): count it again (idempotent), never run it twice
        _complete(services, tenant, job_id, shard, done)
        return None
    names = {int(row[0]): str(row[1]) for row in entry["items"]}
    spec = parse_spec(record.spec)
    canceled = CancelCheck(lambda: coordinator.get_status(job_id) in _STOPPED)
    pack = PackWriter(storage, tenant, job_id, shard) if getattr(spec, "packed_outputs", False) else None
    plugin = map_plugin(spec.kind)
    ctx = JobContext(
        storage, rt.models, tenant, job_id, rt.device, canceled, pack, Thumbnails(plugin.report.stands_for)
    )
    pipeline = plugin.pipeline(spec, ctx)
    wanted = Wanted()
    decoded = decoded_items(services, tenant, job_id, shard, entry, wanted, entry["source"] == "targets")
    items = metrics.ItemRecorder(coordinator, job_id, record.kind)
    extras = BatchExtras(storage, tenant, job_id, gather=pack is not None)
    with Prefetch(decoded, depth=pipeline.batch_size) as ahead:
        try:
            results, todo, suspects = _recorded_so_far(services, items, entry, names)
        except BaseException:
            wanted.known(set())  # the reader must not wait for an answer that will not come
            raise
        wanted.known(set(todo))
        recorder = ShardRecorder(items, results, pack, extras, services.settings.pack_bytes)
        try:
            _run_items(ctx, pipeline, entry, names, ahead, set(todo), suspects, canceled, recorder)
        except JobCanceled:
            pass  # the batch in flight stops at its next write; its items are recorded as canceled below
        except BaseException:
            recorder.discard()  # an outage or a crash: the unrecorded items of this segment are done again
            raise

    def tail() -> None:
        try:
            recorder.seal()
        except BaseException:
            recorder.discard()
            raise
        if any(index not in results for index in names):  # stopped early: the job was canceled, or failed
            stopped = CANCELED_REASON if coordinator.get_status(job_id) != JobStatus.failed.value else FAILED_REASON
            for index in names:
                results.setdefault(index, failed(index, names[index], stopped))
        _finish(services, tenant, job_id, shard, results)
        metrics.SHARD_SECONDS.labels(record.kind).observe(time.perf_counter() - started)

    return tail


def _finished(services: Services, tenant: str, job_id: str, shard: int) -> list[dict[str, Any]] | None:
    """The items of the shard's manifest, or None while it has none."""
    try:
        return list(services.storage.get_json(keys.shard_manifest(tenant, job_id, shard))["items"])
    except NotFound:
        return None


def _recorded_so_far(
    services: Services, items: metrics.ItemRecorder, entry: dict[str, Any], names: dict[int, str]
) -> tuple[dict[int, dict[str, Any]], list[int], set[int]]:
    """The shard's results on record (its planned failures recorded now, items that killed their worker
    too often quarantined), the items still to do, and those to retry alone (a worker died on them)."""
    coordinator, cap, job_id = services.coordinator, services.settings.max_deliveries, items.job
    planned_failures = {int(e["index"]): e for e in entry.get("errors", [])}
    results, begun = coordinator.item_states(job_id, [*names, *planned_failures])
    unrecorded = {i: e for i, e in planned_failures.items() if i not in results}
    items.record(unrecorded, metrics.INPUT)  # members planning could not make items of
    results.update(unrecorded)
    pending = [i for i in names if i not in results]
    attempts = {i: begun[i] for i in pending if i in begun}
    quarantined = {
        i: failed(i, names[i], f"quarantined: the worker process died {n} times while processing this item")
        for i, n in attempts.items()
        if n >= cap
    }
    items.record(quarantined, metrics.QUARANTINED)
    results.update(quarantined)
    suspects = {i for i, n in attempts.items() if 0 < n < cap}
    return results, [i for i in pending if i not in quarantined], suspects


def _run_items(
    ctx: JobContext,
    pipeline: MapPipeline,
    entry: dict[str, Any],
    names: dict[int, str],
    decoded: Iterator[tuple[int, Any]],
    todo: set[int],
    suspects: set[int],
    canceled: CancelCheck,
    recorder: ShardRecorder,
) -> None:
    """The items still to do, decoded, through the pipeline in batches (an item a worker died on runs alone)."""
    if not todo:
        return
    is_targets = entry["source"] == "targets"
    rows = {int(row[0]): row for row in entry["items"]}
    truth = {int(index): value for index, value in entry.get("truth", {}).items()}
    batch: list[Item] = []

    def flush() -> None:
        if batch:
            with recorder.items.batch():
                outcome = _run_batch(ctx, pipeline, batch, recorder)
            recorder.record(outcome, metrics.PIPELINE)
            batch.clear()

    for index, image in decoded:
        if index not in todo:  # finished before (decoded while that was not known yet)
            continue
        if canceled.now():
            return
        if isinstance(image, ItemError):
            recorder.record({index: failed(index, names[index], str(image))}, metrics.INPUT, has_outputs=False)
            continue
        if is_targets:
            item = Item(index, names[index], NO_IMAGE, params=rows[index][2])
        else:
            item = Item(index, names[index], image, truth.get(index))
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


def abandon_shard(services: Services, tenant: str, job_id: str, shard: int, reason: str) -> None:
    """Give up on a shard whose task kept failing: unfinished items fail with ``reason``."""
    done = _finished(services, tenant, job_id, shard)
    if done is not None:  # it finished after all: keep what it did
        _complete(services, tenant, job_id, shard, done)
        return
    entry = load_shard_entries(services, tenant, job_id, shard)
    names = {int(e[0]): str(e[1]) for e in entry["items"]}
    planned_failures = {int(e["index"]): e for e in entry.get("errors", [])}
    results = services.coordinator.item_results(job_id, [*names, *planned_failures])
    missing = {i: failed(i, n, reason) for i, n in names.items() if i not in results}
    unrecorded = {i: e for i, e in planned_failures.items() if i not in results}
    recorder = metrics.ItemRecorder(services.coordinator, job_id, services.jobs.load(tenant, job_id).kind)
    recorder.record(unrecorded, metrics.INPUT)
    recorder.record(missing, metrics.ABANDONED)
    results.update(unrecorded | missing)
    _finish(services, tenant, job_id, shard, results)


def _run_batch(
    ctx: JobContext, pipeline: MapPipeline, batch: list[Item], recorder: ShardRecorder
) -> dict[int, dict[str, Any]]:
    recorder.begin([item.index for item in batch])
    thumbnails = ctx.thumbnails
    try:
        if thumbnails is not None:
            thumbnails.forget()  # what a failed batch wrote before this one
        outcomes = pipeline.run_batch(batch)
        if thumbnails is not None:
            thumbnails.add(ctx, batch, outcomes)  # an output like the others: written before the item is recorded
        recorder.extras.add(batch, outcomes, pipeline.take_batch_sums())  # stored before the items are recorded
        return {
            item.index: _ok(ctx.tenant, ctx.job_id, item, outcome)
            for item, outcome in zip(batch, outcomes, strict=True)
        }
    except (Retryable, StoreRefused, JobCanceled):
        raise  # an outage, a refusal of the store or a cancel is never an item's fault
    except Exception as exc:
        if len(batch) == 1:
            log.warning("item %s failed: %s", batch[0].name, exc)
            return {batch[0].index: failed(batch[0].index, batch[0].name, _reason(exc))}
    # One bad item must not fail its neighbours: retry them one by one.
    out: dict[int, dict[str, Any]] = {}
    for item in batch:
        out.update(_run_batch(ctx, pipeline, [item], recorder))
    return out


def _ok(tenant: str, job_id: str, item: Item, outcome: Outcome) -> dict[str, Any]:
    """The item's manifest entry: its outputs named relative to the job's folder (no storage layout shown)."""
    outputs = {name: keys.relative_to_job(tenant, job_id, key) for name, key in outcome.outputs.items()}
    return {"index": item.index, "name": item.name, "status": "ok", "outputs": outputs, **outcome.data}


def _reason(exc: Exception) -> str:
    if isinstance(exc, FoveaError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:500]


def _finish(services: Services, tenant: str, job_id: str, shard: int, results: dict[int, dict[str, Any]]) -> None:
    """Store the shard's manifest: every item once. (Two deliveries of a shard may both have run an item;
    each result points into a pack that its delivery stored before recording it, and the coordinator
    counted the item once whichever the manifest lists.)"""
    items = [results[i] for i in sorted(results)]
    services.storage.put_json(keys.shard_manifest(tenant, job_id, shard), {"shard": shard, "items": items})
    _complete(services, tenant, job_id, shard, items)


def _complete(services: Services, tenant: str, job_id: str, shard: int, items: list[dict[str, Any]]) -> None:
    """The shard's manifest is stored: count it (its ok and failed items, what a running job's pages filter
    by), keep the job's durable progress current (what readers see if the coordinator is down), and when
    it was the last, submit the finaliser before dropping the shard."""
    coordinator = services.coordinator
    ok = sum(1 for item in items if item["status"] == "ok")
    done = coordinator.mark_shard_done(job_id, shard, ok, len(items) - ok)
    coordinator.forget_items(job_id, [int(item["index"]) for item in items])
    progress = coordinator.progress(job_id)
    shards = progress.shards if progress is not None else None
    if shards is None:  # still planning, or the coordinator lost the plan (a Redis without AOF restarted)
        # No plan stored yet: planning's first step is still running elsewhere (a control worker, another
        # worker) and sent this shard before its end. Planning sends the finaliser then, as for an
        # incomplete plan.
        plan = load_state(services, tenant, job_id) or {}
        shards = int(plan["shards"]) if plan.get("complete") else None
    if progress is not None:
        live = Progress(total=progress.total, done=progress.done, failed=progress.failed)
        services.jobs.save_progress(tenant, job_id, live)
    if shards is not None and done >= shards:
        services.submit(job_id, "finalize", FINALIZE_TASK, (tenant, job_id))
    services.done(job_id, shard_task_id(shard))
