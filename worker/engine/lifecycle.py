"""Starting a job: mark it running, plan it, and dispatch one task per shard."""

from __future__ import annotations

import logging

from shared import keys
from shared.errors import InvalidInput, NotFound
from shared.jobs import TERMINAL, JobStatus, Progress
from shared.jobstore import LIVE
from shared.specs import TRAIN_KINDS
from worker.engine.finalize import finalize_job
from worker.engine.plan import build_plan
from worker.engine.services import FINALIZE_TASK, SHARD_TASK, TRAIN_STEP_TASK, Services

log = logging.getLogger(__name__)


def start_job(services: Services, tenant: str, job_id: str) -> None:
    coordinator = services.coordinator
    status = coordinator.get_status(job_id)
    if status == JobStatus.canceled.value:
        if services.jobs.load(tenant, job_id).kind not in TRAIN_KINDS:
            finalize_job(services, tenant, job_id)
        return
    if status is not None and JobStatus(status) in TERMINAL:
        return
    record = services.jobs.transition(tenant, job_id, JobStatus.running, LIVE)
    if record is None:
        return
    if record.kind in TRAIN_KINDS:
        if services.coordinator.claim(f"train:{job_id}:0"):
            services.enqueue(TRAIN_STEP_TASK, (tenant, job_id, 0))
        return
    try:
        try:
            plan = services.storage.get_json(keys.plan(tenant, job_id))
        except NotFound:
            plan = build_plan(services, tenant, job_id, record.spec)
    except InvalidInput as exc:
        log.info("job %s failed in planning: %s", job_id, exc)
        services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=str(exc))
        return
    coordinator.set_plan(job_id, int(plan["total"]), int(plan["shards"]))
    coordinator.record_items(job_id, {int(e["index"]): e for e in plan["errors"]})
    record = services.jobs.load(tenant, job_id)
    record.shards = int(plan["shards"])
    record.progress = Progress(total=int(plan["total"]), done=0, failed=len(plan["errors"]))
    services.jobs.save(record)
    for shard in range(int(plan["shards"])):
        services.enqueue(SHARD_TASK, (tenant, job_id, shard))
    if int(plan["shards"]) == 0:
        services.enqueue(FINALIZE_TASK, (tenant, job_id))
