"""The training chain, whatever the kind: a step redelivered after it finished passes the chain on once,
its curves so far are listed while it runs, a cancel stops it, and a crash after the last checkpoint
still finishes the job."""

from __future__ import annotations

from typing import Any

from shared import keys
from shared.jobs import JobStatus
from shared.kinds import parse_spec
from shared.queueing import TRAIN_STEP_TASK
from shared.settings import Settings
from tests.support.runtime import recording_resources, sent_tasks
from worker.engine.lifecycle import start_job
from worker.engine.training import train_step
from worker.runtime.resources import Resources


def submit(settings: Settings, spec: dict[str, Any]) -> tuple[Resources, str, list[tuple[str, tuple[Any, ...]]]]:
    rt = recording_resources(settings)
    parsed = parse_spec(spec)
    record = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None)
    return rt, record.id, sent_tasks(rt)


def test_a_redelivered_step_passes_the_chain_on_once(local_settings: Settings) -> None:
    spec = {"kind": "classifier_train", "input": "builtin:digits", "epochs": 500, "step_seconds": 1, "input_size": 16}
    rt, job_id, sent = submit(local_settings, spec)
    services = rt.services
    start_job(rt, "local", job_id)
    assert sent == [(TRAIN_STEP_TASK, ("local", job_id, 0))]
    train_step(rt, "local", job_id, 0)
    assert sent[-1] == (TRAIN_STEP_TASK, ("local", job_id, 1))
    # The curves so far are among the job's files while it runs (the console draws them as they grow).
    listed = services.storage.get_json(keys.job_files_index("local", job_id))
    rows = services.storage.get_bytes(keys.in_job("local", job_id, listed["metrics.jsonl"])).splitlines()
    assert len(rows) < 500  # (none yet where the first step ended mid-epoch)
    train_step(rt, "local", job_id, 0)  # redelivered after it finished
    assert len(sent) == 2  # the next step is not enqueued twice
    services.jobs.transition("local", job_id, JobStatus.canceled, frozenset({"queued", "running"}))
    train_step(rt, "local", job_id, 1)
    assert len(sent) == 2 and services.jobs.get("local", job_id).status == JobStatus.canceled


def test_a_crash_after_the_last_checkpoint_still_finishes_the_job(local_settings: Settings) -> None:
    spec = {"kind": "classifier_train", "input": "builtin:digits", "epochs": 1, "input_size": 16}
    rt, job_id, _ = submit(local_settings, spec)
    services = rt.services
    start_job(rt, "local", job_id)
    train_step(rt, "local", job_id, 0)
    assert services.jobs.get("local", job_id).status == JobStatus.succeeded
    # As if the worker died after its final checkpoint but before the outputs: lose them, redeliver.
    services.storage.delete(keys.model_weights("local", job_id))
    services.coordinator.set_status(job_id, JobStatus.running.value)
    record = services.jobs.load("local", job_id)
    record.status = JobStatus.running
    services.jobs.save(record)
    train_step(rt, "local", job_id, 0)
    assert services.jobs.get("local", job_id).status == JobStatus.succeeded
    assert services.storage.exists(keys.model_weights("local", job_id))
