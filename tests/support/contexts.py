"""In-memory contexts for running a kind's pipeline alone: every write is recorded, models are tiny and
seeded, and nothing else of the service exists (no store, no coordinator, no queue)."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from shared.errors import InvalidInput
from shared.models import ModelRef
from worker.inputs.archive import Member, iter_members
from worker.nets import zoo
from worker.pipelines.base import Item, TrainedModel
from worker.pipelines.training_base import InputLimits

T = TypeVar("T")
CPU = torch.device("cpu")


@dataclass
class TinyModel:
    module: torch.nn.Module
    ref: ModelRef
    class_names: list[str] | None


def seeded_model(ref: ModelRef, seed: int = 0) -> TinyModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = zoo.build(ref.arch or "", ref.num_classes)
    zoo.ready_for_inference(module, CPU)
    return TinyModel(module, ref, None)


class RecordingContext:
    """A map pipeline's context: outputs land in ``written`` (key -> bytes)."""

    device = CPU

    def __init__(self, trained: dict[str, TrainedModel] | None = None) -> None:
        self.written: dict[str, bytes] = {}
        self.models: dict[str, TinyModel] = {}
        self._trained = trained or {}

    def write(self, item: Item, output: str, data: bytes, content_type: str) -> str:
        key = f"items/{item.index:08d}/{output}"
        self.written[key] = data
        return key

    def write_job(self, output: str, data: bytes, content_type: str) -> str:
        key = f"job/{output}"
        self.written[key] = data
        return key

    def model(self, ref: ModelRef) -> TinyModel:
        key = ref.model_dump_json()
        if key not in self.models:
            self.models[key] = seeded_model(ref)
        return self.models[key]

    def trained_models(self) -> list[TrainedModel]:
        return list(self._trained.values())

    def trained(self, job_id: str, model_type: str) -> TrainedModel:
        found = self._trained[job_id]
        if found.config.get("model_type") != model_type:
            raise ValueError(f"{job_id} is not a {model_type}")
        return found


class RecordingTrainingContext:
    """A training pipeline's context: archives come from ``archives`` (URI -> tar bytes), files and the
    model land in ``files`` and ``model``."""

    device = CPU
    limits = InputLimits(max_item_bytes=10_000_000, max_image_pixels=10_000_000)

    def __init__(self, archives: dict[str, bytes] | None = None) -> None:
        self.archives = archives or {}
        self.files: dict[str, bytes] = {}
        self.model: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None
        self.cache: dict[str, Any] = {}

    def members(self, uri: str) -> Iterator[Member]:
        return iter_members(io.BytesIO(self.archives[uri]), uri, max_bytes=self.limits.max_item_bytes)

    def asset(self, relative: str) -> Path:
        """The assets folder of the tests (``FOVEA_ASSETS_DIR``, else ``../shared/data``)."""
        root = Path(os.environ.get("FOVEA_ASSETS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data")
        path = root / relative
        if not path.exists():
            raise InvalidInput(f"not found in the assets folder: {relative}")
        return path

    def scratch(self, name: str) -> Path:
        folder = Path(tempfile.gettempdir()) / "fovea-test-scratch" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def weights(self, reference: str, arch: str) -> dict[str, torch.Tensor]:
        raise AssertionError("no starting weights in these tests")

    def cached(self, key: str, build: Callable[[], T]) -> T:
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]  # type: ignore[no-any-return]

    def write_file(self, name: str, data: bytes, content_type: str) -> str:
        self.files[name] = data
        return f"files/{name}"

    def save_model(self, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
        self.model = ({k: v.detach().clone() for k, v in tensors.items()}, dict(config))


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
