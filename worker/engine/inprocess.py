"""Running a job in this process with no broker: the same engine, with a local queue instead of Celery."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from shared.queueing import FINALIZE_TASK, PLAN_TASK, SHARD_TASK, TRAIN_STEP_TASK
from shared.settings import Settings
from worker.engine.finalize import finalize_job
from worker.engine.lifecycle import continue_planning, start_job
from worker.engine.shard import run_shard
from worker.engine.training import train_step
from worker.runtime.resources import Resources
from worker.runtime.services import Services


def run_job_inprocess(
    settings: Settings, tenant: str, job_id: str, on_task: Callable[[Services], None] | None = None
) -> None:
    """Plan (step by step), run every shard (or training step), finalise; ``on_task`` is called after each
    task, in the order a single worker would take them."""
    queue: deque[tuple[str, tuple[Any, ...]]] = deque([(PLAN_TASK, (tenant, job_id))])
    rt = Resources.create(settings, lambda name, args: queue.append((name, args)))
    finalized = False
    while queue:
        name, args = queue.popleft()
        if name == PLAN_TASK:
            tenant_of, job, *step = args
            if not step or step[0] == 0:
                start_job(rt, tenant_of, job)
            else:
                continue_planning(rt, tenant_of, job, step[0])
        elif name == SHARD_TASK:
            run_shard(rt, *args)
        elif name == TRAIN_STEP_TASK:
            train_step(rt, *args)
        elif name == FINALIZE_TASK and not finalized:
            finalize_job(rt.services, *args)
            finalized = True
        if on_task is not None:
            on_task(rt.services)
