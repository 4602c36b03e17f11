"""Everything a worker process holds for its lifetime, built lazily in the worker child (never in the
parent: CUDA does not survive fork): the outside world, the model cache, the device, a data cache, and the
records of the jobs it works for."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shared.settings import Settings
from worker.runtime.cache import ProcessCache
from worker.runtime.context import resolve_device
from worker.runtime.models import ModelCache
from worker.runtime.services import Enqueue, Services
from worker.runtime.timed_storage import TimedStorage


@dataclass
class Resources:
    services: Services
    models: ModelCache
    device: torch.device
    data: ProcessCache
    jobs: ProcessCache
    """Job records by (tenant, job id), for what never changes in them (kind, spec): a shard reads its job's
    record once per process, not once per shard."""

    @classmethod
    def create(cls, settings: Settings, enqueue: Enqueue) -> Resources:
        services = Services.from_settings(settings, enqueue)
        services.storage = TimedStorage(services.storage)  # what the worker waits for, in its metrics
        return cls(
            services,
            ModelCache(settings, services.storage),
            resolve_device(settings.device),
            ProcessCache(),
            ProcessCache(64),
        )
