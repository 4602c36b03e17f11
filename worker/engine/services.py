"""What the engine needs from the outside world, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.coordination import Coordinator, open_coordinator
from shared.jobstore import JobStore
from shared.settings import Settings
from shared.storage import Storage, open_storage

PLAN_TASK = "fovea.plan"
SHARD_TASK = "fovea.shard"
FINALIZE_TASK = "fovea.finalize"
TRAIN_STEP_TASK = "fovea.train_step"

Enqueue = Callable[[str, tuple[Any, ...]], None]


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
