"""What a glimpse network trains on: a digit task made from the real MNIST (``builtin:mnist``,
``builtin:mnist_translated``, ``builtin:mnist_cluttered``) or a labelled ImageFolder archive.

Train / validation / test: the validation images are a seeded share of the training digits (or
images); the test set is MNIST's own 10,000 (an archive: a seeded share held out first). Validation
and test canvases are composed once from the seed; training canvases are composed afresh for every
batch from a generator seeded by (seed, epoch, batch): every epoch places the digits and distractors
anew (as the paper's tasks are made), and a resumed run composes the same batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from shared.errors import InvalidInput
from shared.specs.glimpse import GlimpseTrainSpec
from worker.inputs.imagefolder import labelled_from_members, split
from worker.inputs.mnist import load_mnist
from worker.inputs.mnist_tasks import Task, compose, make_set, seeded
from worker.inputs.shapes import LabelledImages
from worker.pipelines.training_base import TrainingContext

DATA_FIELDS = {
    "input", "canvas_size", "distractors", "input_size", "color", "seed", "validation_fraction", "train_items",
    "test_items", "test_fraction", "max_items",
}  # fmt: skip
"""The spec fields that decide the data set (the key of the per-process cache)."""

_VALIDATION_STREAM, _TEST_STREAM = 1_000_003, 2_000_003


@dataclass
class GlimpseData:
    train_x: torch.Tensor  # digit tasks: (N, 28, 28) digits to compose; archives: (N, C, S, S) images; uint8
    train_y: torch.Tensor  # (N,) int64
    val_x: torch.Tensor  # (N, C, S, S) uint8
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    image_size: int
    channels: int
    task: Task | None = None
    test_boxes: torch.Tensor | None = None  # digit tasks: (N, 4) the digit's box on each test canvas
    skipped: int = 0
    skipped_examples: list[dict[str, str]] = field(default_factory=list)

    def train_batch(self, picked: torch.Tensor, seed: int, epoch: int, batch: int) -> torch.Tensor:
        """(B, C, S, S) uint8 training images at ``picked``: digit tasks compose theirs for this batch."""
        if self.task is None:
            return self.train_x[picked]
        canvases, _boxes = compose(self.train_x[picked], self.train_x, self.task, seeded(seed, epoch, batch))
        return canvases[:, None]


def task_of(spec: GlimpseTrainSpec) -> Task | None:
    return None if spec.task is None else Task.of(spec.task, spec.canvas_size, spec.distractors)


def load_data(spec: GlimpseTrainSpec, ctx: TrainingContext) -> GlimpseData:
    task = task_of(spec)
    return _digits(spec, task, ctx) if task is not None else _archive(spec, ctx)


def _digits(spec: GlimpseTrainSpec, task: Task, ctx: TrainingContext) -> GlimpseData:
    try:
        assets, cache = ctx.asset("."), ctx.scratch("mnist")
        train_digits, train_labels = load_mnist(assets, cache, True)
        test_digits, test_labels = load_mnist(assets, cache, False)
    except FileNotFoundError as exc:
        raise InvalidInput(f"{spec.input} needs MNIST in the assets folder: {exc}") from exc
    train_x = torch.from_numpy(train_digits[: spec.train_items])
    train_y = torch.from_numpy(train_labels[: spec.train_items])
    test_x, test_y = torch.from_numpy(test_digits[: spec.test_items]), torch.from_numpy(test_labels[: spec.test_items])
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(spec.seed))
    cut = min(max(1, round(len(order) * spec.validation_fraction)), len(order) - 1)
    val, train = order[:cut], order[cut:]
    val_canvas, _ = make_set(train_x[val], train_x[train], task, spec.seed * 7 + _VALIDATION_STREAM)
    test_canvas, test_boxes = make_set(test_x, test_x, task, spec.seed * 7 + _TEST_STREAM)
    return GlimpseData(
        train_x=train_x[train].clone(),
        train_y=train_y[train].clone(),
        val_x=val_canvas[:, None],
        val_y=train_y[val].clone(),
        test_x=test_canvas[:, None],
        test_y=test_y.clone(),
        classes=tuple(str(d) for d in range(10)),
        image_size=task.size,
        channels=1,
        task=task,
        test_boxes=test_boxes,
    )


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """(N, S, S, 3) RGB uint8 -> (N, C, S, S): grayscale by luminance, or RGB."""
    if channels == 1:
        return np.stack([cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in images])[:, None]
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def _archive(spec: GlimpseTrainSpec, ctx: TrainingContext) -> GlimpseData:
    limits = ctx.limits
    data, skipped = labelled_from_members(
        ctx.members(spec.input),
        size=spec.input_size,
        max_items=spec.max_items,
        max_pixels=limits.max_image_pixels,
        max_bytes=limits.max_item_bytes,
    )
    if len(data.labels) < 3:
        raise InvalidInput(f"the archive holds {len(data.labels)} decodable images: a glimpse network needs 3 or more")
    rest, test = split(data, spec.test_fraction, spec.seed)
    train, val = split(rest, spec.validation_fraction, spec.seed + 1)
    channels = 1 if spec.color == "gray" else 3

    def images(part: LabelledImages) -> torch.Tensor:
        return torch.from_numpy(to_channels(part.images, channels))

    return GlimpseData(
        train_x=images(train),
        train_y=torch.from_numpy(train.labels),
        val_x=images(val),
        val_y=torch.from_numpy(val.labels),
        test_x=images(test),
        test_y=torch.from_numpy(test.labels),
        classes=tuple(data.classes),
        image_size=spec.input_size,
        channels=channels,
        skipped=len(skipped),
        skipped_examples=skipped[:20],
    )
