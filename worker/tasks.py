"""Celery tasks: thin glue from messages to the engine. A worker's resources (clients, models, device)
are built lazily in the worker child process (never in the parent: CUDA does not survive fork) and
kept for its lifetime."""

from __future__ import annotations

import logging
from functools import cache

from celery import Task

from shared.errors import Retryable
from shared.jobs import JobStatus
from shared.jobstore import LIVE
from shared.queueing import FINALIZE_TASK, PLAN_TASK, SHARD_TASK, TRAIN_STEP_TASK
from shared.settings import get_settings
from worker.celery_app import app
from worker.engine.finalize import finalize_job
from worker.engine.lifecycle import start_job
from worker.engine.shard import abandon_shard, run_shard
from worker.engine.training import train_step
from worker.runtime.resources import Resources

log = logging.getLogger(__name__)


@cache
def runtime() -> Resources:
    return Resources.create(get_settings(), lambda name, args: app.send_task(name, args=list(args)))


RETRY = {"autoretry_for": (Retryable,), "retry_backoff": 2, "retry_backoff_max": 60, "max_retries": 8}


@app.task(name=PLAN_TASK, bind=True, **RETRY)
def plan(self: Task, tenant: str, job_id: str) -> None:
    rt = runtime()
    try:
        start_job(rt, tenant, job_id)
    except Retryable:
        raise
    except Exception as exc:
        log.exception("planning job %s failed", job_id)
        rt.services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=f"planning failed: {exc}")


@app.task(name=SHARD_TASK, bind=True, **RETRY)
def shard(self: Task, tenant: str, job_id: str, index: int) -> None:
    rt = runtime()
    services = rt.services
    deliveries = services.coordinator.count_delivery(job_id, index)
    cap = services.settings.max_deliveries
    if deliveries > 2 * cap:
        abandon_shard(services, tenant, job_id, index, f"shard abandoned after {deliveries - 1} deliveries")
        return
    try:
        run_shard(rt, tenant, job_id, index)
    except Retryable:
        raise
    except Exception as exc:
        log.exception("shard %s of job %s failed", index, job_id)
        if self.request.retries < cap:
            raise self.retry(exc=exc, countdown=2) from exc
        abandon_shard(services, tenant, job_id, index, f"shard failed {cap + 1} times: {type(exc).__name__}: {exc}")


@app.task(name=FINALIZE_TASK, bind=True, **RETRY)
def finalize(self: Task, tenant: str, job_id: str) -> None:
    rt = runtime()
    try:
        finalize_job(rt.services, tenant, job_id)
    except RuntimeError as exc:  # a shard manifest not visible yet: try again shortly
        raise self.retry(exc=exc, countdown=3, max_retries=20) from exc


@app.task(name=TRAIN_STEP_TASK, bind=True, **RETRY)
def train(self: Task, tenant: str, job_id: str, step: int) -> None:
    rt = runtime()
    try:
        train_step(rt, tenant, job_id, step)
    except Retryable:
        raise
    except Exception as exc:
        log.exception("training step %s of job %s failed", step, job_id)
        if self.request.retries < rt.services.settings.max_deliveries:
            raise self.retry(exc=exc, countdown=5) from exc
        rt.services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=f"training failed: {exc}")
