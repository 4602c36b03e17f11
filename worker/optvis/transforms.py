"""Random transforms applied to the image before each forward pass (transformation robustness: the
rendered feature must survive small shifts, scalings and rotations, which removes high-frequency
adversarial patterns). Every transform draws from an explicit CPU ``torch.Generator`` so that a seeded
render repeats; one draw applies to the whole batch.

``standard()`` is Lucid/Lucent's default chain: pad 12 (constant 0.5), jitter 8, scale 0.90..1.10,
rotate -10..10 degrees (with extra weight on 0), jitter 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _choice(options: Sequence[float], generator: torch.Generator) -> float:
    return float(options[int(torch.randint(len(options), (1,), generator=generator))])


def pad(width: int, value: float = 0.5) -> Transform:
    def apply(x: torch.Tensor, _generator: torch.Generator) -> torch.Tensor:
        return F.pad(x, [width] * 4, mode="constant", value=value)

    return apply


def jitter(distance: int) -> Transform:
    """Shift by 0..distance-1 pixels along each axis, filling with zeros (the size stays)."""
    if distance < 2:
        raise ValueError("jitter distance must be at least 2")

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        dy, dx = (int(v) for v in torch.randint(distance, (2,), generator=generator))
        if dy == 0 and dx == 0:
            return x
        height, width = x.shape[-2:]
        shifted = F.pad(x, [dx, 0, dy, 0])
        return shifted[..., :height, :width]

    return apply


def random_scale(scales: Sequence[float]) -> Transform:
    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        scale = _choice(scales, generator)
        height, width = x.shape[-2:]
        size = (math.ceil(scale * height), math.ceil(scale * width))
        out = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        pad_y, pad_x = max(0, math.ceil((height - size[0]) / 2)), max(0, math.ceil((width - size[1]) / 2))
        return F.pad(out, [pad_x, pad_x, pad_y, pad_y]) if pad_x or pad_y else out

    return apply


def random_rotate(degrees: Sequence[float]) -> Transform:
    """Rotate about the centre by an angle drawn from ``degrees``, zero fill outside, bilinear."""

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        angle = math.radians(_choice(degrees, generator))
        if angle == 0.0:
            return x
        cos, sin = math.cos(angle), math.sin(angle)
        matrix = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(matrix.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    return apply


def compose(transforms: Sequence[Transform]) -> Transform:
    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for transform in transforms:
            x = transform(x, generator)
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
