"""The reconciler: finds work that nobody is doing and sends it again, so no job is left running with
nothing working on it, whatever died or restarted.

One runs per deployment: every worker's main process competes for the ``reconciler`` lease every few
seconds and the holder reconciles (a leader among the workers, rather than a Celery beat process: nothing
more to deploy or watch, the embedded default gets it for free, and if the leader dies another worker
takes over within a lease). Each tick:

1. The coordinator's epoch is gone (Redis restarted without its data): every live job (the store's live
   index) is restored from its durable record, plan, shard manifests and checkpoints, and its outstanding
   work sent again.
2. The broker's sentinel is gone (its messages were lost): all outstanding work is sent again.
3. Work marked running whose lease expired: its worker died; it is sent again, and after too many deaths
   the shard is abandoned (its unfinished items fail with the reason) or the job fails, never hangs.
   Work that was handed back too often still failing while the store answered (``strikes``: not an
   outage) is given up on the same way, with its last error (the watchdog).
4. Work queued for a while while its queue in the broker is empty: its message was lost; it is sent again.
5. Now and then, every live job is audited: one with no outstanding work is restored like in 1.

Sending twice is harmless: items are recorded once, outputs have deterministic keys, a finished shard
is skipped, training resumes from its newest checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from shared import keys
from shared.errors import NotFound, Retryable
from shared.jobs import TERMINAL, JobStatus
from shared.jobstore import LIVE
from shared.kinds import Shape, kind_of
from shared.queueing import FINALIZE_TASK, PLAN_TASK, SHARD_TASK, TRAIN_STEP_TASK, queue_of
from shared.work import WorkEntry, lease_name, plan_task_id, shard_task_id, train_task_id
from worker.engine.backlog import measure_backlog
from worker.engine.shard import abandon_shard
from worker.engine.tasking import new_owner
from worker.runtime import metrics
from worker.runtime.exporter import Backlog
from worker.runtime.services import Services

log = logging.getLogger(__name__)

LEADER = "reconciler"
AUDIT_EVERY = 6  # ticks


class Broker(Protocol):
    def queued(self, queue: str | None = None) -> int:
        """Messages waiting in ``queue`` (None: in all of them)."""

    def has_state(self) -> bool: ...

    def mark_state(self) -> None: ...


def reconcile(services: Services, broker: Broker, audit: bool = False) -> list[str]:
    """One pass; returns what it did, one line each (for the log and for tests)."""
    coordinator = services.coordinator
    if coordinator.epoch() is None:  # new, or restarted without its data: what it lacks comes from the store
        lost = [(tenant, job) for tenant, job in services.jobs.live() if not coordinator.work(job)]
        done = [line for tenant, job in lost for line in restore_job(services, tenant, job)]
        metrics.JOBS_RESTORED.inc(len(lost))
        coordinator.set_epoch(str(time.time()))
        broker.mark_state()
        return ["coordinator state restored from the store", *done]
    if not broker.has_state():
        done = [
            _resend(services, job, task_id, cause="broker_lost")
            for job in coordinator.jobs_with_work()
            for task_id in coordinator.work(job)
        ]
        broker.mark_state()
        return ["broker state lost: outstanding work sent again", *done]
    empty: dict[str, bool] = {}  # per queue, asked once: a backlog of planning must not hide a lost shard

    def queue_empty(task: str) -> bool:
        queue = queue_of(task)
        if queue not in empty:
            empty[queue] = broker.queued(queue) == 0
        return empty[queue]

    actions: list[str] = []
    now = time.time()
    for job in coordinator.jobs_with_work():
        for task_id, raw in coordinator.work(job).items():
            entry = WorkEntry.of(raw)
            held = coordinator.lease_holder(lease_name(job, task_id)) is not None
            if entry.strikes >= services.settings.max_strikes and not (held and entry.state == "running"):
                # Checked before the lease: handed back, it may be taken again at once by an idle worker.
                reason = f"handed back {entry.strikes} times still failing: {entry.last_error}"
                actions.append(_give_up(services, job, task_id, entry, reason))
            elif held:
                continue
            elif entry.state == "running":
                actions.append(_died(services, job, task_id, entry))
            elif now - entry.since > services.settings.stale_queue_s and queue_empty(entry.task):
                actions.append(_resend(services, job, task_id, cause="lost_message"))
    if audit:
        for tenant, job in services.jobs.live():
            if not coordinator.work(job):
                actions += restore_job(services, tenant, job)
                metrics.JOBS_RESTORED.inc()
        actions += sweep_uploads(services, now)
    return actions


def sweep_uploads(services: Services, now: float) -> list[str]:
    """Delete uploads that no job used within ``FOVEA_UPLOAD_TTL_S`` of their making."""
    storage, swept = services.storage, []
    for info in storage.list(keys.UNUSED_UPLOADS):
        try:
            note = storage.get_json(info.key)
        except NotFound:
            continue
        if now - float(note["created"]) < services.settings.upload_ttl_s:
            continue
        upload_id = info.key.removeprefix(keys.UNUSED_UPLOADS).removesuffix(".json")
        for item in storage.list(keys.uploads_prefix(str(note["tenant"]), upload_id)):
            storage.delete(item.key)
        storage.delete(info.key)
        swept.append(f"upload {upload_id}: unused for {now - float(note['created']):.0f} s; deleted")
    return swept


def _resend(services: Services, job: str, task_id: str, deaths: int | None = None, *, cause: str) -> str:
    found = services.coordinator.work_entry(job, task_id)
    if found is None:
        return f"{job} {task_id}: done meanwhile"
    entry = WorkEntry.of(found)
    deaths = entry.deaths if deaths is None else deaths
    services.submit(job, task_id, entry.task, tuple(entry.args), deaths, entry.strikes, entry.last_error)
    metrics.REDELIVERIES.labels(metrics.task_label(task_id), cause).inc()
    return f"{job} {task_id}: sent again"


def _died(services: Services, job: str, task_id: str, entry: WorkEntry) -> str:
    deaths = entry.deaths + 1
    limit = 2 * services.settings.max_deliveries
    if deaths <= limit:
        return _resend(services, job, task_id, deaths, cause="worker_died") + f" (its worker died; {deaths} of {limit})"
    return _give_up(services, job, task_id, entry, f"the worker running it died {deaths} times")


def _give_up(services: Services, job: str, task_id: str, entry: WorkEntry, reason: str) -> str:
    """The watchdog: a shard's unfinished items fail with the reason; any other task fails its job."""
    tenant = str(entry.args[0])
    if entry.task == SHARD_TASK:
        abandon_shard(services, tenant, job, int(entry.args[2]), f"shard abandoned: {reason}")
        return f"{job} {task_id}: abandoned ({reason})"
    services.jobs.transition(tenant, job, JobStatus.failed, LIVE, error=f"{task_id} failed: {reason}")
    services.done(job, task_id)
    return f"{job} {task_id}: job failed ({reason})"


def restore_job(services: Services, tenant: str, job: str) -> list[str]:
    """Put a live job's state back in the coordinator from the store, and submit whatever work it still
    needs (idempotent: what is done is not redone)."""
    coordinator, storage = services.coordinator, services.storage
    try:
        record = services.jobs.load(tenant, job)
    except NotFound:
        services.jobs.retire(job)
        return [f"{job}: no record; retired"]
    status = coordinator.get_status(job)
    if status is None:
        coordinator.set_status(job, record.status.value)
        status = record.status.value
    if JobStatus(status) in TERMINAL and record.status not in TERMINAL:
        services.jobs.record_ending(record, JobStatus(status))  # retires it unless canceled (wound down below)
        if JobStatus(status) is not JobStatus.canceled:
            return [f"{job}: already {status}; its record completed and retired"]
    elif JobStatus(status) in TERMINAL and JobStatus(status) is not JobStatus.canceled:
        services.jobs.retire(job)
        return [f"{job}: already {status}; retired"]
    if status == JobStatus.queued.value:  # never started (or its start was lost): start it
        services.submit(job, "plan", PLAN_TASK, (tenant, job))
        return [f"{job}: planned again"]
    if kind_of(record.kind).shape is Shape.TRAIN:
        if status == JobStatus.canceled.value:
            services.jobs.retire(job)
            return [f"{job}: canceled; retired"]
        latest = keys.checkpoint_latest(tenant, job)
        step = int(storage.get_json(latest)["step"]) if storage.exists(latest) else 0
        services.submit(job, train_task_id(step), TRAIN_STEP_TASK, (tenant, job, step))
        return [f"{job}: training resumes at step {step}"]
    if storage.exists(keys.results_index(tenant, job)):  # the finaliser's last write: at most the end is missing
        if status == JobStatus.canceled.value:
            services.jobs.retire(job)
            return [f"{job}: finalised already; retired"]
        services.submit(job, "finalize", FINALIZE_TASK, (tenant, job))
        return [f"{job}: finalised but not ended; finaliser sent again"]
    try:
        plan = storage.get_json(keys.plan(tenant, job))
    except NotFound:
        services.submit(job, "plan", PLAN_TASK, (tenant, job))
        return [f"{job}: planned again"]
    shards, complete = int(plan["shards"]), bool(plan.get("complete", True))
    if complete:
        coordinator.set_plan(job, int(plan["total"]), shards)
    missing = []
    for shard in range(shards):
        try:
            manifest = storage.get_json(keys.shard_manifest(tenant, job, shard))
        except NotFound:
            missing.append(shard)
            continue
        coordinator.record_items(job, {int(item["index"]): item for item in manifest["items"]})  # counted again
        ok = sum(1 for item in manifest["items"] if item["status"] == "ok")
        coordinator.mark_shard_done(job, shard, ok, len(manifest["items"]) - ok)
        coordinator.forget_items(job, [int(item["index"]) for item in manifest["items"]])
    for shard in missing:
        services.submit(job, shard_task_id(shard), SHARD_TASK, (tenant, job, shard))
    if not complete:  # planning goes on from where its last step stopped
        step = int(plan["step"])
        services.submit(job, plan_task_id(step), PLAN_TASK, (tenant, job, step))
        return [f"{job}: {len(missing)} of {shards} shards sent again; planning resumes at step {step}"]
    if not missing:
        services.submit(job, "finalize", FINALIZE_TASK, (tenant, job))
    return [f"{job}: {len(missing)} of {shards} shards sent again"]


Report = Callable[[bool, Backlog | None], None]
"""Told after every tick whether this worker leads and, if it does, the backlog it measured."""


def run_reconciler(services: Services, broker: Broker, stop: threading.Event, report: Report | None = None) -> None:
    """The loop a worker's main process runs: reconcile whenever it holds the leader lease."""
    owner, tick = new_owner(), 0
    interval, ttl = services.settings.reconcile_interval_s, services.settings.lease_ttl_s
    while not stop.wait(0 if tick == 0 else interval):
        tick += 1
        leader, backlog = False, None
        try:
            leader = services.coordinator.acquire_lease(LEADER, owner, max(ttl, 3 * interval))
            if leader:
                for line in reconcile(services, broker, audit=tick % AUDIT_EVERY == 1):
                    log.warning("reconciler: %s", line)
                backlog = measure_backlog(services, broker)
        except Retryable as exc:
            log.info("reconciler waits for an outage: %s", exc)
        except Exception:
            log.exception("reconciler pass failed")
        if report is not None:
            report(leader, backlog)
