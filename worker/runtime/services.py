"""What the engine needs from the outside world, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.coordination import Coordinator, open_coordinator
from shared.jobstore import JobStore
from shared.settings import Settings
from shared.storage import Storage, open_storage

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

    @classmethod
    def from_settings(cls, settings: Settings, enqueue: Enqueue) -> Services:
        return cls(settings, open_storage(settings), open_coordinator(settings), enqueue)
