"""DeepDream: ascend the squared activation of chosen layers, octave by octave, re-injecting the detail
that each downscale lost (the keras.io recipe), optionally in tiles with a random roll (the TensorFlow
tutorial and the original notebook) so that an image of any size fits in bounded memory.

Works in the model's input space, as both recipes do. Same-size images dream as one batch; each keeps
its own gradient normalisation and loss ceiling, so a batch dreams exactly as its images would alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from worker.optvis.hooks import capture, forward
from worker.optvis.objectives import Objective, layer_l2, wide


@dataclass(frozen=True)
class DreamSettings:
    layers: tuple[tuple[str, float], ...]
    """(layer, weight) pairs; the loss is the weighted sum of each layer's squared activation."""
    octaves: int = 3
    octave_scale: float = 1.4
    steps: int = 20
    step_size: torch.Tensor | float = 0.01
    """Per step, in model-input units (a float, or (3, 1, 1) per channel); the gradient is first divided
    by its mean absolute value."""
    max_loss: float | None = 15.0
    """An image stops ascending once its loss exceeds this (after that step's update, as the recipe)."""
    border: int = 2
    """Cells left out at each edge of a layer's grid in the loss (whole images only; tiles use none)."""
    roll: int = 0
    """Shift the image by a random 0..roll-1 pixels (wrapping) before each gradient, and back after."""
    tile_size: int = 0
    """0: whole images; otherwise gradients are computed on tiles of at most this size."""
    reinject_detail: bool = True
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"


@dataclass
class OctaveLosses:
    shape: tuple[int, int]
    loss_first: list[float]
    """Each image's loss at the octave's first step."""
    loss_last: list[float]
    """Each image's loss at its last step (an image that hit the ceiling keeps its last loss)."""


@dataclass
class DreamResult:
    images: torch.Tensor
    """(B, 3, H, W) in model-input units, the input's size."""
    octave_losses: list[OctaveLosses] = field(default_factory=list)


def dream_objective(settings: DreamSettings, border: int | None = None) -> Objective:
    border = settings.border if border is None else border
    terms = [weight * layer_l2(layer, border) for layer, weight in settings.layers]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def octave_shapes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Smallest first, the original last (the recipe: int(dim / scale**i))."""
    shapes = [(int(height / scale**i), int(width / scale**i)) for i in range(octaves)]
    return shapes[::-1]


def _resize(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == shape:
        return x
    return F.interpolate(x, size=shape, mode="bilinear", align_corners=False)


def tile_bounds(length: int, tile: int) -> list[tuple[int, int]]:
    """Equal tiles of at most ``tile`` covering ``length``. (The notebook steps by whole tiles and leaves
    up to half a tile at the far edge to the random roll; even tiles cover every pixel at every step.)"""
    count = -(-length // tile)
    edges = [round(i * length / count) for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


class _Gradient:
    """Loss and gradient of the dream objective for a batch, whole or in tiles."""

    def __init__(self, model: nn.Module, settings: DreamSettings) -> None:
        self.model, self.settings = model, settings
        self.whole_objective = dream_objective(settings)
        # Cropping each tile's border would leave dead seams at every tile edge: tiles use no crop.
        self.tile_objective = dream_objective(settings, border=0)

    def _autocast(self, device: torch.device) -> torch.autocast | nullcontext[None]:
        if self.settings.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.settings.precision == "bf16" else torch.float16
        return torch.autocast(device.type, dtype=dtype)

    def _whole(
        self, x: torch.Tensor, activations: dict[str, torch.Tensor], objective: Objective
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach().requires_grad_(True)
        with self._autocast(x.device):
            forward(self.model, x, activations)  # stops after the deepest dreamed layer
            loss = wide(objective(activations))
        (grad,) = torch.autograd.grad(loss.sum(), x)
        activations.clear()
        return loss.detach(), grad

    def __call__(
        self, x: torch.Tensor, activations: dict[str, torch.Tensor], generators: Sequence[torch.Generator]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        roll = self.settings.roll
        # Each image rolls by its own draw, so a dream does not depend on the images beside it.
        shifts = [
            tuple(int(v) for v in torch.randint(roll, (2,), generator=g)) if roll > 1 else (0, 0) for g in generators
        ]
        rolled = any(dy or dx for dy, dx in shifts)
        shifted = _roll_each(x, shifts) if rolled else x
        tile = self.settings.tile_size
        height, width = x.shape[-2:]
        if not tile or (height <= tile and width <= tile):
            loss, grad = self._whole(shifted, activations, self.whole_objective)
        else:
            grad = torch.zeros_like(x)
            loss = torch.zeros(x.shape[0], device=x.device)
            for y0, y1 in tile_bounds(height, tile):
                for x0, x1 in tile_bounds(width, tile):
                    part_loss, part_grad = self._whole(shifted[..., y0:y1, x0:x1], activations, self.tile_objective)
                    grad[..., y0:y1, x0:x1] = part_grad
                    loss += part_loss * ((y1 - y0) * (x1 - x0)) / (height * width)
        if rolled:
            grad = _roll_each(grad, [(-dy, -dx) for dy, dx in shifts])
        return loss, grad


def _roll_each(x: torch.Tensor, shifts: Sequence[tuple[int, ...]]) -> torch.Tensor:
    return torch.stack([torch.roll(image, shifts=shift, dims=(-2, -1)) for image, shift in zip(x, shifts, strict=True)])


def _ascend(
    x: torch.Tensor,
    gradient: _Gradient,
    activations: dict[str, torch.Tensor],
    settings: DreamSettings,
    generators: Sequence[torch.Generator],
) -> tuple[torch.Tensor, list[float], list[float]]:
    active = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    step_size = settings.step_size
    if isinstance(step_size, torch.Tensor):
        step_size = step_size.to(x.device)
    first: list[float] = []
    last = torch.zeros(x.shape[0])
    for step in range(settings.steps):
        loss, grad = gradient(x, activations, generators)
        if step == 0:
            first = [float(v) for v in loss.cpu()]
        last = torch.where(active.cpu(), loss.cpu(), last)
        scale = grad.abs().flatten(1).mean(dim=1).clamp_min(1e-6).reshape(-1, 1, 1, 1)
        update = step_size * grad / scale
        x = x + update * active.reshape(-1, 1, 1, 1).to(update.dtype)
        if settings.max_loss is not None:
            active = active & (loss <= settings.max_loss)
            if not bool(active.any()):
                break
    return x, first, [float(v) for v in last]


def dream(
    model: nn.Module, inputs: torch.Tensor, settings: DreamSettings, generators: Sequence[torch.Generator]
) -> DreamResult:
    """``inputs``: (B, 3, H, W) model inputs of same-size images; one generator per image (its rolls)."""
    if len(generators) != inputs.shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {inputs.shape[0]} images")
    gradient = _Gradient(model, settings)
    height, width = inputs.shape[-2:]
    shapes = octave_shapes(height, width, settings.octaves, settings.octave_scale)
    original = inputs.detach()
    shrunk_original = _resize(original, shapes[0])
    x = original
    record: list[OctaveLosses] = []
    with capture(model, gradient.whole_objective.hooked_layers, stop_early=True) as activations:
        for shape in shapes:
            x = _resize(x, shape)
            x, first, last = _ascend(x, gradient, activations, settings, generators)
            record.append(OctaveLosses(shape, first, last))
            if settings.reinject_detail:
                same_size_original = _resize(original, shape)
                x = x + (same_size_original - _resize(shrunk_original, shape))
                shrunk_original = same_size_original
    return DreamResult(images=x.detach(), octave_losses=record)
