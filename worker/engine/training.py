"""Training jobs as a chain of bounded steps. Each step resumes from the newest checkpoint in the
store, trains for ``step_seconds``, writes a checkpoint (then the pointer to it) and enqueues the next
step; a redelivered or crashed step simply redoes its part from the same checkpoint. The last step
writes the model (safetensors + config, referable as ``{"job": ID}``), the curves and the report."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import safetensors.torch
import torch

from shared import keys
from shared.errors import InvalidInput
from shared.jobs import JobStatus, Progress
from shared.jobstore import LIVE
from shared.specs import ClassifierTrainSpec, parse_spec
from worker.engine.inputs import ArchiveInput, resolve_input
from worker.engine.models import ModelCache
from worker.engine.services import TRAIN_STEP_TASK, Services
from worker.engine.training_report import write_training_outputs
from worker.inputs.archive import iter_members
from worker.inputs.imagefolder import labelled_from_members, split
from worker.inputs.shapes import LabelledImages, make_digits, make_shapes
from worker.nets import zoo
from worker.pipelines.classifier_train import TrainData, Trainer, to_tensor_images


def train_step(
    services: Services, models: ModelCache, device: torch.device, tenant: str, job_id: str, step: int
) -> None:
    storage, coordinator = services.storage, services.coordinator
    record = services.jobs.get(tenant, job_id)
    if record.status not in (JobStatus.queued, JobStatus.running):
        return  # canceled or already finished: the chain stops here
    spec = parse_spec(record.spec)
    if not isinstance(spec, ClassifierTrainSpec):
        raise TypeError(f"job {job_id} is not a training job")
    latest = _latest(services, tenant, job_id)
    if latest is not None and latest["step"] > step and not latest["done"]:
        _continue(services, tenant, job_id, latest["step"], False)  # redelivered after it finished: pass it on
        return
    try:
        data = _data(services, tenant, spec, device)
    except InvalidInput as exc:
        services.jobs.transition(tenant, job_id, JobStatus.failed, LIVE, error=str(exc))
        return
    model = _model(models, spec, len(data.classes), tenant, start=latest is None).to(device)
    trainer = Trainer(
        model,
        data,
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        weight_decay=spec.weight_decay,
        preprocessing=spec.preprocessing,
        seed=spec.seed,
    )
    if latest is not None:
        blob = storage.get_bytes(latest["key"])
        trainer.load_state(safetensors.torch.load(blob), _metadata(blob))
    if not trainer.done:  # (done already: a crash came after the last checkpoint; just finish below)
        trainer.train_for(spec.step_seconds, lambda: coordinator.get_status(job_id) == JobStatus.canceled.value)
        tensors, metadata = trainer.state()
        key = keys.checkpoint(tenant, job_id, step + 1)
        storage.put_bytes(key, safetensors.torch.save(tensors, metadata=metadata))
        pointer = {"step": step + 1, "key": key, "done": trainer.done}
        storage.put_json(keys.checkpoint_latest(tenant, job_id), pointer)
    record = services.jobs.load(tenant, job_id)
    record.progress = Progress(total=spec.epochs, done=trainer.epoch, failed=0)
    services.jobs.save(record)
    if trainer.done:
        write_training_outputs(services, tenant, job_id, spec, trainer, data)
        services.jobs.transition(tenant, job_id, JobStatus.succeeded, LIVE, progress=record.progress)
    elif coordinator.get_status(job_id) == JobStatus.canceled.value:
        return  # canceled mid-step: the checkpoint is kept, nothing more runs
    else:
        _continue(services, tenant, job_id, step + 1, False)


def _continue(services: Services, tenant: str, job_id: str, next_step: int, done: bool) -> None:
    if not done and services.coordinator.claim(f"train:{job_id}:{next_step}"):
        services.enqueue(TRAIN_STEP_TASK, (tenant, job_id, next_step))


def _latest(services: Services, tenant: str, job_id: str) -> dict[str, Any] | None:
    key = keys.checkpoint_latest(tenant, job_id)
    return dict(services.storage.get_json(key)) if services.storage.exists(key) else None


def _metadata(blob: bytes) -> dict[str, str]:
    header_size = int.from_bytes(blob[:8], "little")
    return dict(json.loads(blob[8 : 8 + header_size]).get("__metadata__", {}))


def _model(models: ModelCache, spec: ClassifierTrainSpec, classes: int, tenant: str, *, start: bool) -> torch.nn.Module:
    """The network to train; on the first step, optionally from given weights with a new classifier.
    Initialisation is seeded from the spec (without touching the process's global generator)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        if spec.weights is None or not start:
            return zoo.build(spec.arch, classes)
        state = models.state_dict_for(spec.weights, spec.arch, tenant)
        pretrained = zoo.build(spec.arch, 1000)
        pretrained.load_state_dict(state)
        return zoo.replace_classifier(pretrained, classes)


_DATA_FIELDS = {"input", "input_size", "seed", "train_items", "test_items", "test_fraction", "max_items"}
_ARCHIVES: dict[tuple[str, str], tuple[LabelledImages, LabelledImages, int]] = {}


def _data(services: Services, tenant: str, spec: ClassifierTrainSpec, device: torch.device) -> TrainData:
    train, test, skipped = _labelled(services, tenant, spec.model_dump_json(include=_DATA_FIELDS))
    return TrainData(
        train_x=to_tensor_images(train.images, spec.input_size, device),
        train_y=torch.from_numpy(train.labels).to(device),
        test_x=to_tensor_images(test.images, spec.input_size, device),
        test_y=torch.from_numpy(test.labels).to(device),
        classes=train.classes,
        skipped=skipped,
    )


@lru_cache(maxsize=2)
def _cached_builtin(
    name: str, size: int, seed: int, train_items: int, test_items: int, fraction: float
) -> tuple[LabelledImages, LabelledImages]:
    if name == "shapes":
        return make_shapes(train_items, size, seed), make_shapes(test_items, size, seed + 1_000_003)
    return split(make_digits(), fraction, seed)


def _labelled(services: Services, tenant: str, spec_json: str) -> tuple[LabelledImages, LabelledImages, int]:
    """Train and test sets and the count of skipped archive members. Each worker process builds them
    once per job: built-in sets are generated, an archive is decoded on the first step only."""
    spec = json.loads(spec_json)
    source = spec["input"]
    if source.startswith("builtin:"):
        return *_cached_builtin(
            source.removeprefix("builtin:"),
            spec["input_size"],
            spec["seed"],
            spec["train_items"],
            spec["test_items"],
            spec["test_fraction"],
        ), 0
    if (tenant, spec_json) in _ARCHIVES:
        return _ARCHIVES[(tenant, spec_json)]
    settings = services.settings
    archive = resolve_input(source, tenant, settings, services.storage)
    if not isinstance(archive, ArchiveInput):
        raise InvalidInput("classifier_train needs an archive (ImageFolder layout), not a prefix")
    try:
        members = iter_members(archive.stream, archive.name, max_bytes=settings.max_item_bytes)
        data, skipped = labelled_from_members(
            members,
            size=spec["input_size"],
            max_items=spec["max_items"],
            max_pixels=settings.max_image_pixels,
            max_bytes=settings.max_item_bytes,
        )
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    finally:
        archive.stream.close()
    _ARCHIVES.clear()  # one archive in memory per process
    _ARCHIVES[(tenant, spec_json)] = (*split(data, spec["test_fraction"], spec["seed"]), len(skipped))
    return _ARCHIVES[(tenant, spec_json)]
