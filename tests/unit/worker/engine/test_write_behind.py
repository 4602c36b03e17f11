"""A task's tail on the write-behind thread: the task stays held until its tail has run, a tail that fails
hands the work back, tails run one at a time, and a shard whose tail is lost (its worker died after the
compute) is redone with every item once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from shared import keys
from shared.errors import Retryable
from shared.kinds import parse_spec
from shared.queueing import SHARD_TASK
from shared.settings import Settings
from shared.work import WorkEntry, lease_name
from tests.support.images import tar_with_broken_members
from tests.support.runtime import recording_resources, sent_tasks
from worker.engine.finalize import finalize_job
from worker.engine.lifecycle import start_job
from worker.engine.shard import run_shard, start_shard
from worker.engine.tasking import run_held
from worker.engine.write_behind import WriteBehind


def test_the_task_stays_held_until_its_tail_has_run(local_settings: Settings) -> None:
    services = recording_resources(local_settings).services
    services.submit("j", "shard:0", SHARD_TASK, ("t", "j", 0))
    lease = lease_name("j", "shard:0")
    go, behind = threading.Event(), WriteBehind()

    def tail() -> None:
        go.wait(10)
        services.done("j", "shard:0")

    run_held(services, "j", "shard:0", lambda: tail, deadline=time.monotonic() + 60, behind=behind)
    # The task has returned: its tail has not run, so its lease is held and its work still on record.
    assert services.coordinator.lease_holder(lease) is not None
    assert WorkEntry.of(services.coordinator.work("j")["shard:0"]).state == "running"
    go.set()
    assert behind.wait(10)
    assert services.coordinator.lease_holder(lease) is None and services.coordinator.work("j") == {}


def test_a_failing_tail_hands_the_work_back(local_settings: Settings) -> None:
    rt = recording_resources(local_settings)
    services = rt.services
    services.submit("j", "shard:1", SHARD_TASK, ("t", "j", 1))
    behind = WriteBehind()

    def tail() -> None:
        raise Retryable("the store is unavailable")

    run_held(services, "j", "shard:1", lambda: tail, deadline=time.monotonic() + 60, behind=behind)
    assert behind.wait(10)
    entry = WorkEntry.of(services.coordinator.work("j")["shard:1"])
    assert entry.state == "queued" and sent_tasks(rt).count((SHARD_TASK, ("t", "j", 1))) == 2
    assert services.coordinator.lease_holder(lease_name("j", "shard:1")) is None  # its next delivery may run


class _Killed(BaseException):
    """Not an ``Exception``: what no tail catches."""


def test_a_tail_that_dies_still_lets_go_of_its_lease(local_settings: Settings) -> None:
    services = recording_resources(local_settings).services
    services.submit("j", "shard:2", SHARD_TASK, ("t", "j", 2))
    behind = WriteBehind()

    def tail() -> None:
        raise _Killed

    run_held(services, "j", "shard:2", lambda: tail, deadline=time.monotonic() + 60, behind=behind)
    assert behind.wait(10)
    # Released, the work still running on record: the reconciler sees an expired lease and sends it again.
    assert services.coordinator.lease_holder(lease_name("j", "shard:2")) is None
    assert WorkEntry.of(services.coordinator.work("j")["shard:2"]).state == "running"


def test_tails_run_one_at_a_time_in_order() -> None:
    behind, first_may_end, order = WriteBehind(), threading.Event(), []

    def first() -> None:
        first_may_end.wait(10)
        order.append("first")

    behind.submit(first)
    handing = threading.Thread(target=behind.submit, args=(lambda: order.append("second"),))
    handing.start()
    handing.join(0.3)
    assert handing.is_alive() and order == []  # handing over the next waits for the previous
    first_may_end.set()
    handing.join(10)
    assert behind.wait(10) and order == ["first", "second"]


def test_a_lost_tail_redoes_the_shard_every_item_once(local_settings: Settings, tmp_path: Path) -> None:
    settings = local_settings.model_copy(update={"shard_items": 5})
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=9, huge_bytes=10)
    rt = recording_resources(settings)
    services = rt.services
    services.storage.put_bytes(keys.upload("local", "u1", archive.name), archive.read_bytes())
    spec = parse_spec(
        {
            "kind": "saliency",
            "method": "spectral_residual",
            "batch_size": 2,
            "input": "upload://u1",
            "packed_outputs": True,
        }
    )
    job_id = services.jobs.create("local", spec.kind, spec.model_dump(mode="json"), None).id
    start_job(rt, "local", job_id)
    shards = [args for name, args in sent_tasks(rt) if name == SHARD_TASK]
    lost = start_shard(rt, *shards[0])  # computed; then the worker dies: its tail never runs
    assert lost is not None
    assert services.coordinator.item_results(job_id, list(range(5))) == {}  # nothing of it is on record
    assert not list(services.storage.list(keys.packs_prefix("local", job_id)))  # nor stored
    pending = start_shard(rt, *shards[1])  # the next shard computes while its predecessor's tail is pending
    for args in shards[2:]:
        run_shard(rt, *args)
    assert pending is not None
    pending()
    run_shard(rt, *shards[0])  # sent again by the reconciler once the dead worker's lease expired
    finalize_job(services, "local", job_id)
    manifest = services.storage.get_json(keys.manifest("local", job_id))["items"]
    assert [item["index"] for item in manifest] == list(range(len(manifest)))
    progress = services.jobs.load("local", job_id).progress
    assert progress.done + progress.failed == progress.total == len(manifest)  # each item counted once
    packs = list(services.storage.list(keys.packs_prefix("local", job_id) + "000000/"))
    assert len(packs) == 1  # the lost tail's pack was never stored: the rerun's is the shard's one pack
