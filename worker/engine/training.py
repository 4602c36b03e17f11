"""Training jobs as a chain of bounded steps, for any training kind (its plug-in implements the training
contract, ``worker.pipelines.training_base``). Each step resumes from the newest checkpoint in the store,
trains for ``step_seconds``, writes a checkpoint (then the pointer to it) and enqueues the next step; a
redelivered or crashed step simply redoes its part from the same checkpoint. The last step evaluates,
writes the model (safetensors + config naming its kind, referable as ``{"job": ID}``), the job's files,
its summary and its report."""

from __future__ import annotations

import json
from typing import Any

import safetensors.torch

from shared import keys
from shared.errors import InvalidInput, StoreRefused
from shared.jobs import JobRecord, JobStatus, Progress
from shared.jobstore import LIVE
from shared.kinds import kind_of, parse_spec
from shared.queueing import TRAIN_STEP_TASK
from shared.specs.base import TrainingSpec
from shared.work import train_task_id
from worker.kinds import training_plugin
from worker.pipelines.training_base import TrainingPipeline
from worker.report.training import render_training_report
from worker.runtime.context import TrainingJobContext
from worker.runtime.resources import Resources
from worker.runtime.services import Services


def train_step(rt: Resources, tenant: str, job_id: str, step: int) -> None:
    services = rt.services
    storage, coordinator = services.storage, services.coordinator
    record = services.jobs.get(tenant, job_id)
    if (coordinator.get_status(job_id) or record.status.value) not in LIVE:
        _stop(services, job_id, step)  # canceled or already finished: the chain stops here
        return
    latest = _latest(services, tenant, job_id)
    if latest is not None and latest["step"] > step and not latest["done"]:
        _continue(services, tenant, job_id, latest["step"])  # redelivered after it finished: pass it on
        services.done(job_id, train_task_id(step))
        return
    entry = kind_of(record.kind)
    spec = parse_spec(record.spec)
    if not isinstance(spec, TrainingSpec):
        raise TypeError(f"job {job_id} ({record.kind}) is not a training job")
    ctx = TrainingJobContext(services.settings, storage, rt.models, rt.data, entry, tenant, job_id, rt.device)
    pipeline = training_plugin(entry.name).pipeline(spec, ctx)
    try:
        pipeline.load_data()
        pipeline.build(resuming=latest is not None)
    except (InvalidInput, StoreRefused) as exc:
        services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=str(exc))
        _stop(services, job_id, step)
        return
    if latest is not None:
        tensors, metadata = _read_checkpoint(storage.get_bytes(latest["key"]))
        pipeline.restore(tensors, metadata)
    if not pipeline.done:  # (done already: a crash came after the last checkpoint; just finish below)
        pipeline.train_for(spec.step_seconds, lambda: coordinator.get_status(job_id) == JobStatus.canceled.value)
        tensors, metadata = pipeline.state()
        key = keys.checkpoint(tenant, job_id, step + 1)
        storage.put_bytes(key, safetensors.torch.save(tensors, metadata={"state": json.dumps(metadata)}))
        storage.put_json(keys.checkpoint_latest(tenant, job_id), {"step": step + 1, "key": key, "done": pipeline.done})
    done, total = pipeline.progress
    record = services.jobs.load(tenant, job_id)
    record.progress = Progress(total=total, done=done, failed=0)
    services.jobs.save(record)
    metrics = "".join(json.dumps(row) + "\n" for row in pipeline.history)
    metrics_key = ctx.write_file("metrics.jsonl", metrics.encode(), "application/x-ndjson")
    # The curves grow step by step: listed among the job's files at once, not only once it has ended.
    storage.put_json(
        keys.job_files_index(tenant, job_id), {"metrics.jsonl": keys.relative_to_job(tenant, job_id, metrics_key)}
    )
    if pipeline.done:
        _finish(services, record, pipeline, ctx)
        services.jobs.transition(tenant, job_id, JobStatus.succeeded, LIVE, progress=record.progress)
        _stop(services, job_id, step)
    elif coordinator.get_status(job_id) == JobStatus.canceled.value:
        _stop(services, job_id, step)  # canceled mid-step: the checkpoint is kept, nothing more runs
    else:
        _continue(services, tenant, job_id, step + 1)
        services.done(job_id, train_task_id(step))


def _stop(services: Services, job_id: str, step: int) -> None:
    """Nothing more will run for this job: no outstanding step, out of the live index."""
    services.jobs.retire(job_id)
    services.done(job_id, train_task_id(step))


def _finish(services: Services, record: JobRecord, pipeline: TrainingPipeline, ctx: TrainingJobContext) -> None:
    """Evaluate, write the model and files, then the summary, an empty manifest and the report."""
    storage, tenant, job_id = services.storage, record.tenant, record.id
    figures = pipeline.evaluate()
    pipeline.write_outputs(figures)
    summary: dict[str, Any] = {
        "job": job_id,
        "kind": record.kind,
        "name": record.name,
        "status": JobStatus.succeeded.value,
        **figures,
        "model": {"job": job_id},
    }
    storage.put_json(keys.summary(tenant, job_id), summary)
    storage.put_json(keys.manifest(tenant, job_id), {"job": job_id, "status": "succeeded", "total": 0, "items": []})
    files = {name: keys.relative_to_job(tenant, job_id, key) for name, key in ctx.files.items()}
    storage.put_json(keys.job_files_index(tenant, job_id), files)
    hooks = training_plugin(record.kind).report

    def read(path: str) -> bytes:
        return storage.get_bytes(keys.in_job(tenant, job_id, path))

    page = render_training_report(read, record, summary, pipeline.history, files, hooks)
    storage.put_bytes(keys.report(tenant, job_id), page.encode(), "text/html; charset=utf-8")


def _continue(services: Services, tenant: str, job_id: str, next_step: int) -> None:
    """Submit the next step once (a redelivered step finds it claimed); it replaces this step's work."""
    if services.coordinator.claim(f"train:{job_id}:{next_step}"):
        services.submit(job_id, train_task_id(next_step), TRAIN_STEP_TASK, (tenant, job_id, next_step))


def _latest(services: Services, tenant: str, job_id: str) -> dict[str, Any] | None:
    key = keys.checkpoint_latest(tenant, job_id)
    return dict(services.storage.get_json(key)) if services.storage.exists(key) else None


def _read_checkpoint(blob: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    header_size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + header_size]).get("__metadata__", {})
    return safetensors.torch.load(blob), json.loads(header.get("state", "{}"))
