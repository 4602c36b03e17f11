"""The training contract: what a training kind implements, and the context it works through.

The engine chains bounded steps and knows nothing else. On every step it builds the pipeline, calls
``load_data`` and ``build``, ``restore``s the newest checkpoint if there is one, ``train_for`` the step's
time budget, saves ``state()`` as a checkpoint (safetensors tensors + JSON metadata), and once
``done``, ``evaluate``s and ``write_outputs``. A redelivered or crashed step redoes its part from the
same checkpoint, so ``state``/``restore`` must hold everything that decides what comes next (weights,
optimiser, data order, progress, history): a resumed run repeats bit for bit on the CPU.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import torch

from worker.inputs.archive import Member

T = TypeVar("T")


@dataclass(frozen=True)
class InputLimits:
    """The operator's limits on one input item (each breach is that item's error)."""

    max_item_bytes: int
    max_image_pixels: int


class TrainingContext(Protocol):
    device: torch.device
    limits: InputLimits

    def members(self, uri: str) -> Iterator[Member]:
        """The items of an archive (``upload://``, ``s3://…/archive``) or of an object-store prefix, one
        at a time, each with its bytes or the reason it has none. Raises ``InvalidInput`` when the input is
        missing or not an archive. ``builtin:`` inputs are the kind's own to generate."""

    def asset(self, relative: str) -> Path:
        """A file or folder of the operator's read-only assets (``FOVEA_ASSETS_DIR``: weights, MNIST);
        raises ``InvalidInput`` when it is not there."""

    def scratch(self, name: str) -> Path:
        """A folder on this worker's local disk for files derived from the assets (kept between steps)."""

    def weights(self, reference: str, arch: str) -> dict[str, torch.Tensor]:
        """A state dict named like a model reference's ``weights`` (assets:, upload://, s3://,
        torchvision:), for fine-tuning."""

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` once per worker process and key (a decoded data set reused by later steps)."""

    def write_file(self, name: str, data: bytes, content_type: str) -> str:
        """Store a file of the job for people (metrics, a picture); listed in its results' ``files``."""

    def save_model(self, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
        """Store the trained model: its tensors, and the config that later jobs rebuild it from. The
        engine adds the producing ``kind`` and its ``model_type`` to the config."""


class TrainingPipeline(ABC):
    """A training kind. Everything it reads and writes goes through ``ctx``."""

    def __init__(self, spec: Any, ctx: TrainingContext) -> None:
        self.spec = spec
        self.ctx = ctx

    @abstractmethod
    def load_data(self) -> None:
        """Read or generate the data set (cache it with ``ctx.cached``); raise ``InvalidInput`` when the
        input cannot be used at all (the job then fails with that reason)."""

    @abstractmethod
    def build(self, *, resuming: bool) -> None:
        """Make the model and optimiser, seeded from the spec. ``resuming``: a checkpoint will be restored
        over it (so there is no need to load starting weights)."""

    @abstractmethod
    def train_for(self, seconds: float, should_stop: Callable[[], bool]) -> None:
        """Train until the time budget is spent, training is done, or ``should_stop()`` (checked every few
        batches); always stop at a point that ``state()`` can resume from exactly."""

    @property
    @abstractmethod
    def progress(self) -> tuple[int, int]:
        """(units done, units in all), e.g. epochs: the job's progress while it trains."""

    @property
    def done(self) -> bool:
        finished, total = self.progress
        return finished >= total

    @property
    @abstractmethod
    def history(self) -> list[dict[str, float]]:
        """One row per finished epoch (or evaluation): the curves of the report, written after every step."""

    @abstractmethod
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything needed to resume: tensors (safetensors) and JSON-able metadata."""

    @abstractmethod
    def restore(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None: ...

    @abstractmethod
    def evaluate(self) -> dict[str, Any]:
        """The trained model's figures for the summary (JSON-able), e.g. test accuracy."""

    @abstractmethod
    def write_outputs(self, figures: dict[str, Any]) -> None:
        """Write the model (``ctx.save_model``) and the job's files (``ctx.write_file``)."""


class EpochLoop(Protocol):
    """A kind's training loop object: it counts epochs, stops early, and saves and restores itself."""

    epoch: int
    stopped: bool

    @property
    def done(self) -> bool: ...

    @property
    def history(self) -> list[dict[str, float]]: ...

    def train_for(self, seconds: float, should_stop: Callable[[], bool]) -> None: ...

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]: ...

    def load_state(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None: ...


L = TypeVar("L", bound=EpochLoop)


class EpochLoopPipeline(TrainingPipeline, Generic[L]):
    """A training kind whose steps are an ``EpochLoop``'s (made by ``build``, as ``self.trainer``): the
    contract's training, progress, history and checkpoint calls are the loop's own. Progress is in
    epochs; a loop stopped early counts as all its epochs done."""

    trainer: L | None = None

    @property
    def _trainer(self) -> L:
        if self.trainer is None:
            raise RuntimeError("build() first")
        return self.trainer

    def train_for(self, seconds: float, should_stop: Callable[[], bool]) -> None:
        self._trainer.train_for(seconds, should_stop)

    @property
    def progress(self) -> tuple[int, int]:
        trainer = self._trainer
        return trainer.epoch, trainer.epoch if trainer.stopped else self.spec.epochs

    @property
    def done(self) -> bool:
        return self._trainer.done

    @property
    def history(self) -> list[dict[str, float]]:
        return self._trainer.history

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return self._trainer.state()

    def restore(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        self._trainer.load_state(tensors, metadata)
