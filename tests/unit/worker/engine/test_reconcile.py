"""The reconciler in one process (SQLite coordinator, local store, a recording queue): what it sends again,
when, and what it restores after the coordinator lost its state."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import keys
from shared.coordination import Coordinator
from shared.jobs import JobStatus
from shared.kinds import parse_spec
from shared.queueing import CONTROL_QUEUE, FINALIZE_TASK, PLAN_TASK, QUEUE, SHARD_TASK, TRAIN_STEP_TASK
from shared.settings import Settings
from shared.work import WorkEntry, lease_name, take_work
from tests.support.images import tar_with_broken_members
from tests.support.runtime import recording_resources, sent_tasks
from worker.engine.lifecycle import start_job
from worker.engine.reconcile import reconcile
from worker.engine.shard import run_shard
from worker.runtime.resources import Resources


@dataclass
class FakeBroker:
    waiting: int = 0
    state: bool = True
    control_waiting: int = 0  # messages in the control queue (planning, finalising)

    def queued(self, queue: str | None = None) -> int:
        return {QUEUE: self.waiting, CONTROL_QUEUE: self.control_waiting, None: self.waiting + self.control_waiting}[
            queue
        ]

    def has_state(self) -> bool:
        return self.state

    def mark_state(self) -> None:
        self.state = True


def _job(settings: Settings, tmp_path: Path, good: int = 20) -> tuple[Resources, str]:
    rt = recording_resources(settings)
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=good, huge_bytes=10)
    rt.services.storage.put_bytes(keys.upload("local", "u1", "in.tar"), archive.read_bytes())
    spec = parse_spec({"kind": "saliency", "method": "spectral_residual", "input": "upload://u1"})
    record = rt.services.jobs.create("local", spec.kind, spec.model_dump(mode="json"), None)
    rt.services.submit(record.id, "plan", PLAN_TASK, ("local", record.id))
    rt.services.coordinator.set_epoch("e")
    return rt, record.id


def _shards_sent(rt: Resources) -> list[tuple[Any, ...]]:
    return [args for name, args in sent_tasks(rt) if name == SHARD_TASK]


def _taken_then_died(coordinator: Coordinator, job: str, task_id: str) -> None:
    """A worker took the task (its work marked running) and died at once: its lease has expired."""
    assert take_work(coordinator, job, task_id, "w1", 0.001).entry is not None
    time.sleep(0.01)


def test_work_whose_worker_died_is_sent_again_then_abandoned(local_settings: Settings, tmp_path: Path) -> None:
    rt, job = _job(local_settings, tmp_path)
    start_job(rt, "local", job)
    coordinator, broker = rt.services.coordinator, FakeBroker(waiting=3)
    assert reconcile(rt.services, broker) == []  # queued, the broker holds messages: nothing to do
    assert take_work(coordinator, job, "shard:0", "w1", 0.05).entry is not None  # a worker took shard 0 ...
    assert reconcile(rt.services, broker) == []  # ... and holds its lease
    time.sleep(0.1)  # ... then died: the lease expired
    before = len(_shards_sent(rt))
    actions = reconcile(rt.services, broker)
    assert actions == [f"{job} shard:0: sent again (its worker died; 1 of 6)"]
    assert len(_shards_sent(rt)) == before + 1 and _shards_sent(rt)[-1] == ("local", job, 0)
    assert WorkEntry.of(coordinator.work(job)["shard:0"]).deaths == 1
    for deaths in range(2, 7):  # every delivery dies the same way
        _taken_then_died(coordinator, job, "shard:0")
        assert "sent again" in reconcile(rt.services, broker)[0]
        assert WorkEntry.of(coordinator.work(job)["shard:0"]).deaths == deaths
    _taken_then_died(coordinator, job, "shard:0")
    assert reconcile(rt.services, broker) == [f"{job} shard:0: abandoned (the worker running it died 7 times)"]
    manifest = rt.services.storage.get_json(keys.shard_manifest("local", job, 0))
    assert all(item["status"] == "failed" and "died 7 times" in item["error"] for item in manifest["items"])
    assert "shard:0" not in coordinator.work(job)


def test_the_watchdog_gives_up_on_work_that_keeps_failing_while_the_store_answers(
    local_settings: Settings, tmp_path: Path
) -> None:
    rt, job = _job(local_settings, tmp_path)
    start_job(rt, "local", job)
    services, broker = rt.services, FakeBroker(waiting=3)
    strikes = local_settings.max_strikes
    entry = WorkEntry.of(services.coordinator.work(job)["shard:0"])
    services.submit(job, "shard:0", SHARD_TASK, tuple(entry.args), 0, strikes - 1, "500 for items/3")
    assert reconcile(services, broker) == []  # one strike short: it is sent again by its worker
    services.submit(job, "shard:0", SHARD_TASK, tuple(entry.args), 0, strikes, "500 for items/3")
    services.coordinator.acquire_lease(lease_name(job, "shard:0"), "w1", 60)  # an idle worker took it at once
    reason = f"handed back {strikes} times still failing: 500 for items/3"
    assert reconcile(services, broker) == [f"{job} shard:0: abandoned ({reason})"]
    manifest = services.storage.get_json(keys.shard_manifest("local", job, 0))
    assert manifest["items"] and all(reason in item["error"] for item in manifest["items"])
    assert "shard:0" not in services.coordinator.work(job)
    # Any other task fails its job, with the reason.
    services.submit(job, "finalize", FINALIZE_TASK, ("local", job), 0, strikes, "500 for manifest.json")
    assert "job failed" in reconcile(services, broker)[0]
    record = services.jobs.load("local", job)
    assert record.status is JobStatus.failed and "500 for manifest.json" in (record.error or "")


def test_queued_work_the_broker_lost_is_sent_again(local_settings: Settings, tmp_path: Path) -> None:
    settings = local_settings.model_copy(update={"stale_queue_s": 0.05})
    rt, job = _job(settings, tmp_path)
    start_job(rt, "local", job)
    shards = len(_shards_sent(rt))
    assert reconcile(rt.services, FakeBroker(waiting=0)) == []  # not stale yet
    time.sleep(0.1)
    assert reconcile(rt.services, FakeBroker(waiting=2)) == []  # the queue still holds messages: wait
    # Planning waiting in its own queue says nothing of the shards' queue: lost shards are sent again.
    actions = reconcile(rt.services, FakeBroker(waiting=0, control_waiting=5))
    assert len(actions) == shards and len(_shards_sent(rt)) == 2 * shards
    time.sleep(0.1)
    actions = reconcile(rt.services, FakeBroker(waiting=0))  # an empty queue, and nobody holds the work
    assert len(actions) == shards and len(_shards_sent(rt)) == 3 * shards
    lost = reconcile(rt.services, FakeBroker(state=False))  # the broker's marker is gone
    assert lost[0] == "broker state lost: outstanding work sent again" and len(_shards_sent(rt)) == 4 * shards


def test_a_coordinator_that_lost_its_state_is_restored_from_the_store(local_settings: Settings, tmp_path: Path) -> None:
    rt, job = _job(local_settings, tmp_path, good=20)
    start_job(rt, "local", job)
    run_shard(rt, "local", job, 0)  # one shard finished before the loss
    untouched_spec = parse_spec({"kind": "saliency", "method": "spectral_residual", "input": "upload://u1"})
    waiting = rt.services.jobs.create("local", "saliency", untouched_spec.model_dump(mode="json"), None).id
    training = rt.services.jobs.create(
        "local", "classifier_train", {"kind": "classifier_train", "input": "builtin:digits"}, None
    ).id
    plan = rt.services.storage.get_json(keys.plan("local", job))
    started = rt.services.jobs.create(
        "local", "classifier_train", {"kind": "classifier_train", "input": "builtin:digits"}, None
    ).id
    start_job(rt, "local", started)  # a training job that had started: it resumes from its newest checkpoint
    (local_settings.data_dir / "coordination.sqlite3").unlink()  # the coordinator forgets everything
    fresh = recording_resources(local_settings)
    actions = reconcile(fresh.services, FakeBroker())
    assert actions[0] == "coordinator state restored from the store"
    assert f"{job}: {plan['shards'] - 1} of {plan['shards']} shards sent again" in actions
    assert f"{waiting}: planned again" in actions and f"{training}: planned again" in actions
    assert f"{started}: training resumes at step 0" in actions
    sent = sent_tasks(fresh)
    assert sorted(args[2] for name, args in sent if name == SHARD_TASK and args[1] == job) == list(
        range(1, plan["shards"])
    )
    assert (PLAN_TASK, ("local", waiting)) in sent and (PLAN_TASK, ("local", training)) in sent
    assert (TRAIN_STEP_TASK, ("local", started, 0)) in sent
    coordinator = fresh.services.coordinator
    assert coordinator.get_status(job) == JobStatus.running.value
    progress = coordinator.progress(job)
    assert progress is not None and progress.shards_done == 1 and progress.done > 0  # shard 0's items, once
    assert reconcile(fresh.services, FakeBroker()) == []  # restored once; now all of it is on record


def test_an_ending_decided_but_never_written_is_completed_by_the_audit(local_settings: Settings) -> None:
    from shared.jobstore import LIVE

    rt = recording_resources(local_settings)
    rt.services.coordinator.set_epoch("e")
    jobs = rt.services.jobs
    spec = parse_spec({"kind": "saliency", "method": "spectral_residual", "input": "upload://u1"})
    job = jobs.create("local", spec.kind, spec.model_dump(mode="json"), None).id
    jobs.transition("local", job, JobStatus.running, LIVE)
    rt.services.coordinator.set_status(job, JobStatus.failed.value, LIVE)  # then the process ending it died
    assert jobs.get("local", job).status == JobStatus.running
    assert reconcile(rt.services, FakeBroker(), audit=True) == [
        f"{job}: already failed; its record completed and retired"
    ]
    record = jobs.get("local", job)
    assert record.status == JobStatus.failed and record.error and record.finished_at is not None
    assert jobs.live() == [] and sent_tasks(rt) == []
