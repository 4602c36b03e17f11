"""A held task: it skips work that is done or held by a live worker, keeps its lease while it waits out an
outage, and hands its work back (never drops it) when its time runs out."""

from __future__ import annotations

import threading
import time

import pytest

from shared.errors import Retryable
from shared.queueing import SHARD_TASK
from shared.settings import Settings
from shared.work import WorkEntry, lease_name
from tests.support.runtime import recording_resources, sent_tasks
from worker.engine import tasking
from worker.engine.tasking import run_held


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasking.time, "sleep", lambda _s: None)


def test_an_outage_is_waited_out_holding_the_lease(local_settings: Settings) -> None:
    rt = recording_resources(local_settings)
    services = rt.services
    services.submit("j", "shard:0", SHARD_TASK, ("t", "j", 0))
    seen: list[str | None] = []

    def work() -> None:
        seen.append(services.coordinator.lease_holder(lease_name("j", "shard:0")))
        if len(seen) < 4:
            raise Retryable("the store is unavailable")
        services.done("j", "shard:0")

    run_held(services, "j", "shard:0", work, deadline=time.monotonic() + 60)
    assert len(seen) == 4 and all(holder is not None for holder in seen) and len(set(seen)) == 1
    assert services.coordinator.lease_holder(lease_name("j", "shard:0")) is None  # released at the end
    assert services.coordinator.work("j") == {}


def test_past_the_deadline_the_work_goes_back_to_the_queue(local_settings: Settings) -> None:
    rt = recording_resources(local_settings)
    services = rt.services
    services.submit("j", "shard:1", SHARD_TASK, ("t", "j", 1))

    def work() -> None:
        raise Retryable("still down")

    run_held(services, "j", "shard:1", work, deadline=time.monotonic() + 0.5)
    entry = WorkEntry.of(services.coordinator.work("j")["shard:1"])
    assert entry.state == "queued" and sent_tasks(rt).count((SHARD_TASK, ("t", "j", 1))) == 2


def test_a_task_failing_while_the_store_answers_takes_a_strike_an_outage_does_not(
    local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = recording_resources(local_settings)
    services = rt.services
    services.submit("j", "shard:3", SHARD_TASK, ("t", "j", 3))

    def work() -> None:
        raise Retryable("the store answered 500 for items/00000007")

    for expected in (1, 2):  # the store answers others: not an outage, a strike each time
        run_held(services, "j", "shard:3", work, deadline=time.monotonic() + 0.5)
        entry = WorkEntry.of(services.coordinator.work("j")["shard:3"])
        assert entry.strikes == expected and "items/00000007" in entry.last_error
    monkeypatch.setattr(type(services.storage), "ping", _unreachable)  # now a real outage
    run_held(services, "j", "shard:3", work, deadline=time.monotonic() + 0.5)
    assert WorkEntry.of(services.coordinator.work("j")["shard:3"]).strikes == 2


def _unreachable(*_args: object) -> None:
    raise Retryable("could not connect to the store")


def test_done_or_held_work_is_skipped(local_settings: Settings) -> None:
    rt = recording_resources(local_settings)
    services = rt.services
    ran: list[str] = []
    run_held(services, "j", "shard:2", lambda: ran.append("done?"), deadline=time.monotonic() + 5)
    assert ran == []  # no work on record: done already
    services.submit("j", "shard:3", SHARD_TASK, ("t", "j", 3))
    services.coordinator.acquire_lease(lease_name("j", "shard:3"), "someone else", 60)
    run_held(services, "j", "shard:3", lambda: ran.append("twice?"), deadline=time.monotonic() + 5)
    assert ran == []  # a live worker holds it


def test_the_heartbeat_keeps_a_long_task_leased(local_settings: Settings) -> None:
    rt = recording_resources(local_settings.model_copy(update={"lease_ttl_s": 3.0}))
    services = rt.services
    services.submit("j", "shard:4", SHARD_TASK, ("t", "j", 4))
    held: list[bool] = []

    def work() -> None:
        for _ in range(5):  # 5 s of work with a 3 s lease: the heartbeat renews it every second
            threading.Event().wait(1.0)
            held.append(services.coordinator.lease_holder(lease_name("j", "shard:4")) is not None)

    run_held(services, "j", "shard:4", work, deadline=time.monotonic() + 60)
    assert held == [True] * 5
