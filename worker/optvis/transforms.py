"""Random transforms applied to the image before each forward pass (transformation robustness: the
rendered feature must survive small shifts, scalings and rotations, which removes high-frequency
adversarial patterns).

Every image draws its own parameters from its own explicit CPU ``torch.Generator`` (one per image, in
batch order), so a seeded render repeats, and an image's transforms never depend on which images share
its batch. Shifts are per-image crops; scale and rotation are one per-image affine resampling of the
batch (``grid_sample``). Scaling keeps the image's size (a zoom about the centre), so that images with
different scales still form one batch; Lucid resizes the whole batch by one shared factor instead.

``standard()`` is Lucid/Lucent's default chain: pad 12 (constant 0.5), jitter 8, scale 0.90..1.10,
rotate -10..10 degrees (with extra weight on 0), jitter 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

Generators = Sequence[torch.Generator]
Transform = Callable[[torch.Tensor, Generators], torch.Tensor]


def _choice(options: Sequence[float], generator: torch.Generator) -> float:
    return float(options[int(torch.randint(len(options), (1,), generator=generator))])


def _check(x: torch.Tensor, generators: Generators) -> None:
    if len(generators) != x.shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {x.shape[0]} images")


def pad(width: int, value: float = 0.5) -> Transform:
    def apply(x: torch.Tensor, _generators: Generators) -> torch.Tensor:
        return F.pad(x, [width] * 4, mode="constant", value=value)

    return apply


def jitter(distance: int) -> Transform:
    """Shift each image by its own 0..distance-1 pixels along each axis, filling with zeros (the size stays)."""
    if distance < 2:
        raise ValueError("jitter distance must be at least 2")

    def apply(x: torch.Tensor, generators: Generators) -> torch.Tensor:
        _check(x, generators)
        height, width = x.shape[-2:]
        padded = F.pad(x, [distance, 0, distance, 0])
        out = []
        for row, generator in enumerate(generators):
            dy, dx = (int(v) for v in torch.randint(distance, (2,), generator=generator))
            y0, x0 = distance - dy, distance - dx
            out.append(padded[row, :, y0 : y0 + height, x0 : x0 + width])
        return torch.stack(out)

    return apply


def _affine(x: torch.Tensor, matrices: list[list[list[float]]]) -> torch.Tensor:
    theta = torch.tensor(matrices, dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_scale(scales: Sequence[float]) -> Transform:
    """Zoom each image about its centre by its own factor from ``scales`` (zeros where it shrinks)."""

    def apply(x: torch.Tensor, generators: Generators) -> torch.Tensor:
        _check(x, generators)
        factors = [_choice(scales, generator) for generator in generators]
        if all(f == 1.0 for f in factors):
            return x
        return _affine(x, [[[1.0 / f, 0.0, 0.0], [0.0, 1.0 / f, 0.0]] for f in factors])

    return apply


def random_rotate(degrees: Sequence[float]) -> Transform:
    """Rotate each image about its centre by its own angle from ``degrees``, zero fill outside, bilinear."""

    def apply(x: torch.Tensor, generators: Generators) -> torch.Tensor:
        _check(x, generators)
        angles = [math.radians(_choice(degrees, generator)) for generator in generators]
        if all(a == 0.0 for a in angles):
            return x
        return _affine(x, [[[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]] for a in angles])

    return apply


def compose(transforms: Sequence[Transform]) -> Transform:
    def apply(x: torch.Tensor, generators: Generators) -> torch.Tensor:
        for transform in transforms:
            x = transform(x, generators)
        return x

    return apply


def standard() -> Transform:
    return compose(
        [
            pad(12, 0.5),
            jitter(8),
            random_scale([1 + (i - 5) / 50.0 for i in range(11)]),
            random_rotate([*range(-10, 11), 0, 0, 0, 0, 0]),
            jitter(4),
        ]
    )
