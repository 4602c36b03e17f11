"""The deployment's backlog, as the reconciler's leader sees it each tick: the broker's queue depth and,
from the outstanding-work records, how many tasks wait or run and since when the oldest has waited.

The age comes from the records, not the broker: a Celery message carries no time it was sent, while a
record notes when its task was (last) sent; and a task whose message the broker lost still shows as
waiting here, which is what an operator watching the age needs to see."""

from __future__ import annotations

from typing import Protocol

from shared.work import WorkEntry
from worker.runtime.exporter import Backlog
from worker.runtime.services import Services


class Queue(Protocol):
    def queued(self, queue: str | None = None) -> int: ...


def measure_backlog(services: Services, broker: Queue) -> Backlog:
    coordinator = services.coordinator
    queued = running = 0
    oldest: float | None = None
    jobs = coordinator.jobs_with_work()
    for job in jobs:
        for raw in coordinator.work(job).values():
            entry = WorkEntry.of(raw)
            if entry.state == "running":
                running += 1
                continue
            queued += 1
            oldest = entry.since if oldest is None else min(oldest, entry.since)
    return Backlog(broker.queued(), queued, running, oldest, len(jobs))
