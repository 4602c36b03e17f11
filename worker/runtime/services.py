"""What the engine needs from the outside world, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.coordination import Coordinator, open_coordinator
from shared.errors import Retryable
from shared.jobstore import JobStore
from shared.settings import Settings
from shared.storage import Storage, open_storage
from shared.work import queue_work

Enqueue = Callable[[str, tuple[Any, ...]], None]
"""Send a task by name (``shared.queueing``) with its arguments: Celery on a worker, a local queue in
``fovea run``."""


@dataclass
class Services:
    settings: Settings
    storage: Storage
    coordinator: Coordinator
    enqueue: Enqueue

    @property
    def jobs(self) -> JobStore:
        return JobStore(self.storage, self.coordinator)

    def submit(
        self,
        job: str,
        task_id: str,
        task: str,
        args: tuple[Any, ...],
        deaths: int = 0,
        strikes: int = 0,
        last_error: str = "",
    ) -> None:
        """Record the task as the job's outstanding work, then send it (``shared.work``)."""
        send = lambda name, a: self.enqueue(name, tuple(a))  # noqa: E731
        queue_work(self.coordinator, send, job, task_id, task, list(args), deaths, strikes, last_error)

    def reachable(self) -> bool:
        """Whether the store and the coordinator answer right now (a cheap probe of each): tells a task
        that keeps failing with transient errors during an outage from one that fails on its own."""
        try:
            self.coordinator.ping()
            self.storage.ping()
        except Retryable:
            return False
        return True

    def done(self, job: str, task_id: str) -> None:
        """The task has done its part (its successor, if any, was submitted first)."""
        self.coordinator.drop_work(job, task_id)

    @classmethod
    def from_settings(cls, settings: Settings, enqueue: Enqueue) -> Services:
        return cls(settings, open_storage(settings), open_coordinator(settings), enqueue)
