"""The Recurrent Attention Model's digit tasks, made from the real MNIST (Mnih et al. 2014): each 28x28
digit placed at a random position on a larger black canvas (``translated``), optionally with
``distractors`` random 8x8 crops of other digits scattered over it (``cluttered``; 4 on 60x60, 8 on
100x100 in the paper). Everything is drawn from a seeded generator, whole batches at once (one indexed
assignment per layer, no loop over images), so a set repeats exactly from its seed.

Pieces are combined by maximum, so a distractor never blacks out part of the digit it overlaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.errors import InvalidInput
from worker.inputs.mnist import load_mnist

DIGIT = 28
CROP = 8  # the paper's distractor size


@dataclass(frozen=True)
class Task:
    name: str  # "mnist", "mnist_translated" or "mnist_cluttered"
    size: int = 28  # canvas side
    distractors: int = 0

    @classmethod
    def of(cls, name: str, size: int | None = None, distractors: int | None = None) -> Task:
        if name == "mnist":
            return cls(name)
        if name == "mnist_translated":
            return cls(name, size or 60)
        if name == "mnist_cluttered":
            side = size or 60
            return cls(name, side, 4 if distractors is None else distractors)
        raise ValueError(f"unknown digit task {name!r}")


def _paste(canvas: torch.Tensor, pieces: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> None:
    """Max-combine square ``pieces`` (B, w, w) into ``canvas`` (B, S, S) with top-left corners (rows, cols)."""
    width = pieces.shape[-1]
    steps = torch.arange(width)
    r = (rows[:, None] + steps)[:, :, None]
    c = (cols[:, None] + steps)[:, None, :]
    batch = torch.arange(len(canvas))[:, None, None]
    canvas[batch, r, c] = torch.maximum(canvas[batch, r, c], pieces)


def compose(
    digits: torch.Tensor, pool: torch.Tensor, task: Task, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(canvases (B, S, S) uint8, digit boxes (B, 4) [x0, y0, x1, y1]) for ``digits`` (B, 28, 28) uint8;
    distractors are cut from random digits of ``pool`` (N, 28, 28)."""
    batch = len(digits)
    if task.size == DIGIT and task.distractors == 0:
        zeros = torch.zeros(batch, dtype=torch.long)
        return digits.clone(), torch.stack([zeros, zeros, zeros + DIGIT, zeros + DIGIT], dim=1)
    canvas = torch.zeros(batch, task.size, task.size, dtype=torch.uint8)
    room = task.size - DIGIT + 1
    for _ in range(task.distractors):
        source = pool[torch.randint(len(pool), (batch,), generator=generator)]
        at = torch.randint(DIGIT - CROP + 1, (batch, 2), generator=generator)
        steps = torch.arange(CROP)
        picked = torch.arange(batch)[:, None, None]
        piece = source[picked, (at[:, 0, None] + steps)[:, :, None], (at[:, 1, None] + steps)[:, None, :]]
        where = torch.randint(task.size - CROP + 1, (batch, 2), generator=generator)
        _paste(canvas, piece, where[:, 0], where[:, 1])
    place = torch.randint(room, (batch, 2), generator=generator)  # (row, column) of the digit's corner
    _paste(canvas, digits, place[:, 0], place[:, 1])
    boxes = torch.stack([place[:, 1], place[:, 0], place[:, 1] + DIGIT, place[:, 0] + DIGIT], dim=1)
    return canvas, boxes


def seeded(*parts: int) -> torch.Generator:
    seed = 0
    for part in parts:
        seed = (seed * 1_000_003 + part) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def make_set(
    digits: torch.Tensor, pool: torch.Tensor, task: Task, seed: int, block: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole fixed set (validation, test, a built-in input), drawn in blocks seeded by their number."""
    canvases, boxes = [], []
    for number, start in enumerate(range(0, len(digits), block)):
        canvas, box = compose(digits[start : start + block], pool, task, seeded(seed, number))
        canvases.append(canvas)
        boxes.append(box)
    if not canvases:
        return torch.zeros(0, task.size, task.size, dtype=torch.uint8), torch.zeros(0, 4, dtype=torch.long)
    return torch.cat(canvases), torch.cat(boxes)


def digit_items(
    assets: Path | None, cache: Path, name: str, count: int, seed: int, size: int | None, distractors: int | None
) -> Iterator[tuple[str, np.ndarray, dict[str, Any]]]:
    """A built-in input of MNIST test digits (held out from every training set) as (name, RGB image, truth):
    the first ``count`` digits, composed as the task says from the seed; truth is the class and the digit's box."""
    if assets is None:
        raise InvalidInput(f"builtin:{name} needs FOVEA_ASSETS_DIR (the real MNIST) on the worker")
    try:
        task = Task.of(name, size, distractors)
        digits, labels = load_mnist(assets, cache, False)
    except FileNotFoundError as exc:
        raise InvalidInput(f"builtin:{name} needs MNIST in the assets folder: {exc}") from exc
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    if count > len(digits):
        raise InvalidInput(f"builtin:{name} has {len(digits)} test digits, not n={count}")
    pool = torch.from_numpy(digits)
    canvases, boxes = make_set(pool[:count], pool, task, seed)
    for index in range(count):
        label = int(labels[index])
        gray = canvases[index].numpy()
        truth = {"class": label, "label": str(label), "box": [int(v) for v in boxes[index]]}
        yield f"{name}/{index:05d}-{label}.png", np.repeat(gray[:, :, None], 3, axis=2), truth
