"""Celery tasks: thin glue from messages to the engine. A worker's resources (clients, models, device)
are built lazily in the worker child process (never in the parent: CUDA does not survive fork) and kept
for its lifetime. Every task runs held (``worker.engine.tasking``): a lease and a heartbeat while it
works, outages waited out in the task, its work handed back to the queue when its time runs out. No task
is retried by Celery, so no retry count or delayed message can lose work."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cache

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from shared.errors import Retryable, StoreRefused
from shared.jobs import JobStatus
from shared.jobstore import LIVE
from shared.queueing import FINALIZE_TASK, PLAN_TASK, SHARD_TASK, TRAIN_STEP_TASK
from shared.settings import get_settings
from shared.work import plan_task_id, shard_task_id, train_task_id
from worker.celery_app import app
from worker.engine.finalize import finalize_job
from worker.engine.lifecycle import continue_planning, start_job
from worker.engine.shard import abandon_shard, start_shard
from worker.engine.tasking import hand_back, run_held
from worker.engine.training import train_step
from worker.engine.write_behind import Tail, write_behind
from worker.runtime import metrics
from worker.runtime.gpu_metrics import record_device_peak
from worker.runtime.resources import Resources

log = logging.getLogger(__name__)

_MARGIN_S = 30.0  # left between the last retry of an outage and the task's soft time limit
_HANDLED_ABOVE = (Retryable, StoreRefused, SoftTimeLimitExceeded)
"""Outages, refusals of the store and the time limit are handled by ``_held``; anything else is a failure
of the task's own making, retried a few times and then ended with its reason."""


@cache
def runtime() -> Resources:
    return Resources.create(get_settings(), lambda name, args: app.send_task(name, args=list(args)))


def _held(task: Task, tenant: str, job_id: str, task_id: str, work: Callable[[Resources], Tail | None]) -> None:
    """Run ``work`` held, and measured (``worker.runtime.metrics``; a tail ``work`` returns runs on the
    write-behind thread, outside the task's time)."""
    label = metrics.task_label(task_id)
    if (task.request.delivery_info or {}).get("redelivered"):
        metrics.REDELIVERIES.labels(label, "broker").inc()
    metrics.WORKER_BUSY.set(1)
    metrics.PROGRESS_TIME.set(time.time())
    start = time.perf_counter()
    try:
        _run_held(tenant, job_id, task_id, work)
    finally:
        metrics.TASK_SECONDS.labels(label).observe(time.perf_counter() - start)
        metrics.PROGRESS_TIME.set(time.time())
        metrics.WORKER_BUSY.set(0)
        if runtime.cache_info().currsize:  # built (building it may have been what failed)
            record_device_peak(runtime().device)


def _run_held(tenant: str, job_id: str, task_id: str, work: Callable[[Resources], Tail | None]) -> None:
    """Run ``work`` held; a job-level refusal of the store fails the job; past the soft time limit the
    task's work goes back to the queue (what it finished is recorded and stays done)."""
    rt = runtime()
    services = rt.services
    deadline = time.monotonic() + services.settings.task_soft_time_limit_s - _MARGIN_S

    def refused(exc: StoreRefused) -> None:
        log.error("job %s: the store refused a request: %s", job_id, exc)
        services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=str(exc))
        services.done(job_id, task_id)

    def attempt() -> Tail | None:
        try:
            tail = work(rt)
        except StoreRefused as exc:
            refused(exc)
            return None
        if tail is None:
            return None

        def guarded() -> None:
            try:
                tail()
            except StoreRefused as exc:
                refused(exc)

        return guarded

    try:
        run_held(services, job_id, task_id, attempt, deadline, write_behind())
    except SoftTimeLimitExceeded:
        hand_back(services, job_id, task_id)


@app.task(name=PLAN_TASK, bind=True)
def plan(self: Task, tenant: str, job_id: str, step: int = 0) -> None:
    task_id = plan_task_id(step)

    def work(rt: Resources) -> None:
        try:
            if step == 0:
                start_job(rt, tenant, job_id)
            else:
                continue_planning(rt, tenant, job_id, step)
        except _HANDLED_ABOVE:
            raise
        except Exception as exc:
            log.exception("planning job %s failed (step %s)", job_id, step)
            rt.services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=f"planning failed: {exc}")
            rt.services.done(job_id, task_id)

    _held(self, tenant, job_id, task_id, work)


@app.task(name=SHARD_TASK, bind=True)
def shard(self: Task, tenant: str, job_id: str, index: int) -> None:
    def work(rt: Resources) -> Tail | None:
        cap = rt.services.settings.max_deliveries
        for attempt in range(cap + 1):
            try:
                return start_shard(rt, tenant, job_id, index)
            except _HANDLED_ABOVE:
                raise
            except Exception as exc:
                log.exception("shard %s of job %s failed (attempt %s)", index, job_id, attempt + 1)
                if attempt == cap:
                    reason = f"shard failed {cap + 1} times: {type(exc).__name__}: {exc}"[:500]
                    abandon_shard(rt.services, tenant, job_id, index, reason)
                    return None
                metrics.RETRIES.labels("shard", "error").inc()
                time.sleep(2)
        return None

    _held(self, tenant, job_id, shard_task_id(index), work)


@app.task(name=FINALIZE_TASK, bind=True)
def finalize(self: Task, tenant: str, job_id: str) -> None:
    _held(self, tenant, job_id, "finalize", lambda rt: finalize_job(rt.services, tenant, job_id))


@app.task(name=TRAIN_STEP_TASK, bind=True)
def train(self: Task, tenant: str, job_id: str, step: int) -> None:
    def work(rt: Resources) -> None:
        cap = rt.services.settings.max_deliveries
        for attempt in range(cap + 1):
            try:
                train_step(rt, tenant, job_id, step)
                return
            except _HANDLED_ABOVE:
                raise
            except Exception as exc:
                log.exception("training step %s of job %s failed (attempt %s)", step, job_id, attempt + 1)
                if attempt == cap:
                    error = f"training failed: {type(exc).__name__}: {exc}"[:500]
                    rt.services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=error)
                    rt.services.done(job_id, train_task_id(step))
                    return
                metrics.RETRIES.labels("train", "error").inc()
                time.sleep(5)

    _held(self, tenant, job_id, train_task_id(step), work)
