"""The contexts pipelines work through: a map job's (item outputs, job pictures, models) and a training
job's (its input, starting weights, files and model). Keys come from ``shared.keys`` only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import safetensors.torch
import torch

from shared import keys
from shared.kinds import Kind
from shared.models import ModelRef
from shared.settings import Settings
from shared.storage import Storage
from worker.inputs.archive import Member
from worker.pipelines.base import Item, LoadedModel, TrainedModel
from worker.pipelines.training_base import InputLimits
from worker.runtime.cache import ProcessCache
from worker.runtime.models import ModelCache
from worker.runtime.packing import PackWriter
from worker.runtime.sources import read_members
from worker.runtime.thumbnails import Thumbnails

T = TypeVar("T")


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present. Called in the worker child, never at import (CUDA and fork)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class JobCanceled(Exception):
    """Raised by a context's write once the job is canceled: the batch in flight stops there."""


class CancelCheck:
    """Whether the job was canceled, asked of the coordinator at most every ``interval_s`` seconds (a
    write per output would otherwise cost a coordinator round trip each)."""

    def __init__(self, ask: Callable[[], bool], interval_s: float = 0.5) -> None:
        self._ask, self._interval = ask, interval_s
        self._last, self._canceled = -1e9, False

    def now(self) -> bool:
        if not self._canceled and time.monotonic() - self._last >= self._interval:
            self._canceled, self._last = self._ask(), time.monotonic()
        return self._canceled


class JobContext:
    """What a map pipeline writes through: one job's output keys, its device and the model cache."""

    def __init__(
        self,
        storage: Storage,
        models: ModelCache,
        tenant: str,
        job_id: str,
        device: torch.device,
        canceled: CancelCheck | None = None,
        pack: PackWriter | None = None,
        thumbnails: Thumbnails | None = None,
    ) -> None:
        self.storage = storage
        self.models = models
        self.tenant = tenant
        self.job_id = job_id
        self.device = device
        self._canceled = canceled
        self._pack = pack
        self.thumbnails = thumbnails

    def write(self, item: Item, output: str, data: bytes, content_type: str) -> str:
        """Store one output of an item: its own object, or (packed outputs) a member of the shard's pack."""
        if self._canceled is not None and self._canceled.now():
            raise JobCanceled(self.job_id)
        if self._pack is not None:
            key = self._pack.add(item.index, output, data)
        else:
            key = keys.item_output(self.tenant, self.job_id, item.index, output)
            self.storage.put_bytes(key, data, content_type)
        if self.thumbnails is not None:
            self.thumbnails.seen(key, data, content_type)
        return key

    def write_job(self, output: str, data: bytes, content_type: str) -> str:
        key = keys.job_output(self.tenant, self.job_id, output)
        self.storage.put_bytes(key, data, content_type)
        return key

    def model(self, ref: ModelRef) -> LoadedModel:
        return self.models.get(ref, self.tenant, self.device)

    def trained(self, job_id: str, model_type: str) -> TrainedModel:
        return self.models.trained(job_id, self.tenant, self.device, model_type)


class TrainingJobContext:
    """What a training pipeline works through. Files it writes are indexed for the job's results."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        models: ModelCache,
        cache: ProcessCache,
        kind: Kind,
        tenant: str,
        job_id: str,
        device: torch.device,
    ) -> None:
        self.settings, self.storage, self.models, self.cache = settings, storage, models, cache
        self.kind, self.tenant, self.job_id, self.device = kind, tenant, job_id, device
        self.limits = InputLimits(settings.max_item_bytes, settings.max_image_pixels)
        self.files: dict[str, str] = {}

    def members(self, uri: str) -> Iterator[Member]:
        return read_members(uri, self.tenant, self.settings, self.storage)

    def asset(self, relative: str) -> Path:
        return self.models.asset(relative)

    def scratch(self, name: str) -> Path:
        folder = Path(self.settings.data_dir).resolve() / "scratch" / keys.safe_component(name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def weights(self, reference: str, arch: str) -> dict[str, torch.Tensor]:
        return self.models.state_dict_for(reference, arch, self.tenant)

    def cached(self, key: str, build: Callable[[], T]) -> T:
        return self.cache.get((self.tenant, key), build)

    def write_file(self, name: str, data: bytes, content_type: str) -> str:
        key = keys.job_file(self.tenant, self.job_id, name)
        self.storage.put_bytes(key, data, content_type)
        self.files[name] = key
        return key

    def save_model(self, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
        state = {name: value.detach().cpu().contiguous() for name, value in tensors.items()}
        self.storage.put_bytes(keys.model_weights(self.tenant, self.job_id), safetensors.torch.save(state))
        described = {"kind": self.kind.name, "model_type": self.kind.produces, **config}
        self.storage.put_json(keys.model_config(self.tenant, self.job_id), described)
        self.files["model"] = keys.model_weights(self.tenant, self.job_id)
        self.files["config"] = keys.model_config(self.tenant, self.job_id)
