"""Starting a job: mark it running, check what the job itself needs, plan it, and submit one task per
shard (or the first training step). The plan task's work is dropped only once its successors are on
record, so a job always has outstanding work until it ends."""

from __future__ import annotations

import logging

from shared import keys
from shared.errors import InvalidInput, NotFound, StoreRefused
from shared.jobs import TERMINAL, JobStatus, Progress
from shared.jobstore import LIVE
from shared.kinds import Shape, kind_of, parse_spec
from shared.queueing import FINALIZE_TASK, SHARD_TASK, TRAIN_STEP_TASK
from shared.work import shard_task_id, train_task_id
from worker.engine.finalize import finalize_job
from worker.engine.plan import build_plan
from worker.kinds import map_plugin
from worker.runtime import metrics
from worker.runtime.context import JobContext
from worker.runtime.resources import Resources

log = logging.getLogger(__name__)


def start_job(rt: Resources, tenant: str, job_id: str) -> None:
    services = rt.services
    coordinator = services.coordinator
    if not services.storage.exists(keys.job_record(tenant, job_id)):
        services.done(job_id, "plan")  # its submission failed and was withdrawn
        return
    status = coordinator.get_status(job_id)
    if status == JobStatus.canceled.value:
        if kind_of(services.jobs.load(tenant, job_id).kind).shape is Shape.TRAIN:
            services.jobs.retire(job_id)
        else:
            finalize_job(services, tenant, job_id)  # canceled before it started: an empty manifest
        services.done(job_id, "plan")
        return
    if status is not None and JobStatus(status) in TERMINAL:
        services.done(job_id, "plan")
        return
    record = services.jobs.transition(tenant, job_id, JobStatus.running, LIVE)
    if record is None:
        services.done(job_id, "plan")
        return
    entry = kind_of(record.kind)
    if entry.shape is Shape.TRAIN:
        if coordinator.claim(f"train:{job_id}:0"):
            services.submit(job_id, train_task_id(0), TRAIN_STEP_TASK, (tenant, job_id, 0))
        services.done(job_id, "plan")
        return
    spec = parse_spec(record.spec)
    try:
        ctx = JobContext(services.storage, rt.models, tenant, job_id, rt.device)
        map_plugin(entry.name).pipeline(spec, ctx).check()
        try:
            plan = services.storage.get_json(keys.plan(tenant, job_id))
        except NotFound:
            plan = build_plan(services, tenant, job_id, spec)
    except (InvalidInput, StoreRefused) as exc:
        log.info("job %s failed before its first item: %s", job_id, exc)
        services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=str(exc))
        services.done(job_id, "plan")
        return
    coordinator.set_plan(job_id, int(plan["total"]), int(plan["shards"]))
    metrics.ItemRecorder(coordinator, job_id, record.kind).record(
        {int(e["index"]): e for e in plan["errors"]}, metrics.INPUT
    )
    record = services.jobs.load(tenant, job_id)
    record.shards = int(plan["shards"])
    record.progress = Progress(total=int(plan["total"]), done=0, failed=len(plan["errors"]))
    services.jobs.save(record)
    for shard in range(int(plan["shards"])):
        services.submit(job_id, shard_task_id(shard), SHARD_TASK, (tenant, job_id, shard))
    if int(plan["shards"]) == 0:
        services.submit(job_id, "finalize", FINALIZE_TASK, (tenant, job_id))
    services.done(job_id, "plan")
