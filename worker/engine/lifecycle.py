"""Starting a job: mark it running, check what the job itself needs, then plan it step by step (each
shard sent as it is planned), or send the first training step. A planning step's work is dropped only
once its successors are on record, so a job always has outstanding work until it ends."""

from __future__ import annotations

import logging
from typing import Any

from shared import keys
from shared.errors import InvalidInput, StoreRefused
from shared.jobs import TERMINAL, JobStatus
from shared.jobstore import LIVE
from shared.kinds import Shape, kind_of, parse_spec
from shared.queueing import FINALIZE_TASK, PLAN_TASK, TRAIN_STEP_TASK
from shared.work import plan_task_id, train_task_id
from worker.engine.finalize import finalize_job
from worker.engine.plan import load_state, plan_step
from worker.kinds import map_plugin
from worker.runtime.context import JobContext
from worker.runtime.resources import Resources
from worker.runtime.services import Services

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
    except (InvalidInput, StoreRefused) as exc:
        _fail(rt, tenant, job_id, 0, exc)
        return
    continue_planning(rt, tenant, job_id, 0)


def continue_planning(rt: Resources, tenant: str, job_id: str, step: int) -> None:
    """Planning step ``step``: its shards are sent as they are planned; then the next step is sent, or,
    once the whole input is planned, the plan is put on record (and the finaliser sent if every shard
    is already done)."""
    services = rt.services
    if step > 0 and services.coordinator.get_status(job_id) != JobStatus.running.value:
        _plan_ends(services, tenant, job_id, load_state(services, tenant, job_id))  # canceled or failed meanwhile
        services.done(job_id, plan_task_id(step))
        return
    spec = parse_spec(services.jobs.load(tenant, job_id).spec)
    try:
        state = plan_step(services, tenant, job_id, spec, step)
    except (InvalidInput, StoreRefused) as exc:
        _fail(rt, tenant, job_id, step, exc)
        return
    if not state["complete"]:
        following = int(state["step"])
        services.submit(job_id, plan_task_id(following), PLAN_TASK, (tenant, job_id, following))
    else:
        _plan_ends(services, tenant, job_id, state)
    services.done(job_id, plan_task_id(step))


def _plan_ends(services: Services, tenant: str, job_id: str, state: dict[str, Any] | None) -> None:
    """The plan is whole, or stops where it is (the job was canceled or failed): it goes on record, and the
    finaliser is sent if every shard is done already (else the last shard to finish sends it)."""
    if state is None or int(state["shards"]) == 0 and not state["complete"]:
        return  # nothing was planned: nothing to finalise
    if not state["complete"]:
        state |= {"complete": True, "stopped_early": True}
        services.storage.put_json(keys.plan(tenant, job_id), state)
    shards = int(state["shards"])
    services.coordinator.set_plan(job_id, int(state["total"]), shards)
    progress = services.coordinator.progress(job_id)
    if shards == 0 or (progress is not None and progress.shards_done >= shards):
        services.submit(job_id, "finalize", FINALIZE_TASK, (tenant, job_id))


def _fail(rt: Resources, tenant: str, job_id: str, step: int, exc: Exception) -> None:
    """The job itself is wrong (or its input): it fails with the reason; shards already planned stop at
    their next item, and the job is finalised with what they did."""
    log.info("job %s failed in planning: %s", job_id, exc)
    rt.services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=str(exc))
    _plan_ends(rt.services, tenant, job_id, load_state(rt.services, tenant, job_id))
    rt.services.done(job_id, plan_task_id(step))
