"""What a map pipeline sees: items in, per-item outcomes out, the world only through a context."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from shared.models import ModelRef


@dataclass
class Item:
    index: int
    name: str
    image: np.ndarray  # RGB uint8, (H, W, 3)
    truth: dict[str, Any] | None = None  # ground truth where the input has it: {"class", "label", "box"}
    params: dict[str, Any] | None = None  # what to make, for items that are not images (a render target)


@dataclass
class Outcome:
    """One item's result: output names mapped to the keys written, plus metadata for the manifest.

    ``arrays`` are per-item vectors (an embedding, a code) of the same shape for every item: the engine
    stores them per batch and the finished job has one ``arrays/NAME.npy`` of shape (items, ...) whose
    row i is item i (NaN for an item without one), loadable in one line."""

    outputs: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class LoadedModel(Protocol):
    """A classifier to explain: the module (eval mode, on the job's device) and how to feed and read it."""

    module: nn.Module
    ref: ModelRef
    class_names: list[str] | None


@dataclass
class TrainedModel:
    """A model an earlier training job left: the module (eval mode, on the job's device) and its config
    (what the training kind wrote: its ``kind``, ``model_type`` and whatever it needs to be used)."""

    module: nn.Module
    config: dict[str, Any]


class PipelineContext(Protocol):
    device: torch.device

    def write(self, item: Item, output: str, data: bytes, content_type: str) -> str:
        """Store one output of one item; returns its key."""

    def write_job(self, output: str, data: bytes, content_type: str) -> str:
        """Store one output of the whole job (deterministic key: writing it again overwrites)."""

    def model(self, ref: ModelRef) -> LoadedModel:
        """The classifier for ``ref``, loaded once per process and cached, in eval mode on ``device``."""

    def trained(self, job_id: str, model_type: str) -> TrainedModel:
        """The model of an earlier training job of this tenant, which must be of ``model_type``."""


class MapPipeline(ABC):
    """A job kind with one result per input item. ``run_batch`` may raise: the caller then retries
    the batch one item at a time, so one bad item fails alone."""

    batch_size = 16  # images per call of run_batch; kinds set their own

    def __init__(self, spec: Any, ctx: PipelineContext) -> None:
        self.spec = spec
        self.ctx = ctx

    def check(self) -> None:
        """Called once when the job starts on a worker, before any item: raise ``InvalidInput`` for what
        is wrong with the job itself (a layer the model lacks, missing weights), so the job fails at
        once with its reason instead of failing every item."""
        return None

    @abstractmethod
    def run_batch(self, items: list[Item]) -> list[Outcome]: ...

    def take_batch_sums(self) -> dict[str, np.ndarray] | None:
        """Sums over the last batch that the job adds up over all its items (e.g. a mean map), with a
        ``count`` entry; None when the kind has none. The caller stores them per batch, exactly once."""
        return None
