"""The context a pipeline writes through: one job's output keys, its device and the model cache."""

from __future__ import annotations

import torch

from shared import keys
from shared.models import ModelRef
from shared.storage import Storage
from worker.engine.models import LoadedModel, ModelCache
from worker.pipelines.base import Item


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present. Called in the worker child, never at import (CUDA and fork)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class JobContext:
    def __init__(self, storage: Storage, models: ModelCache, tenant: str, job_id: str, device: torch.device) -> None:
        self.storage = storage
        self.models = models
        self.tenant = tenant
        self.job_id = job_id
        self.device = device

    def write(self, item: Item, output: str, data: bytes, content_type: str) -> str:
        key = keys.item_output(self.tenant, self.job_id, item.index, output)
        self.storage.put_bytes(key, data, content_type)
        return key

    def write_job(self, output: str, data: bytes, content_type: str) -> str:
        key = keys.job_output(self.tenant, self.job_id, output)
        self.storage.put_bytes(key, data, content_type)
        return key

    def model(self, ref: ModelRef) -> LoadedModel:
        return self.models.get(ref, self.tenant, self.device)
