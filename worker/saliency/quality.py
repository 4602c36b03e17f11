"""How good is a saliency map, where ground truth exists.

- Pointing game (Zhang et al. 2016): does the map's maximum fall inside the object's box? Chance is
  the box's share of the image (a uniformly random point).
- Deletion (Petsiuk et al. 2018): remove the most salient pixels first (set them to black) and watch the
  explained class's probability fall; the area under that curve is low for a good map. Removing the
  same number of pixels in a random order is the baseline.
"""

from __future__ import annotations

import torch
from torch import nn


def pointing_hit(saliency: torch.Tensor, box: tuple[float, float, float, float]) -> bool:
    """``saliency`` (H, W); ``box`` x0, y0, x1, y1 (exclusive) in the same grid."""
    width = saliency.shape[1]
    flat = int(saliency.flatten().argmax())
    y, x = divmod(flat, width)
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def box_fraction(box: tuple[float, float, float, float], height: int, width: int) -> float:
    return max(0.0, (box[2] - box[0]) * (box[3] - box[1])) / float(height * width)


@torch.no_grad()
def deletion_curves(
    model: nn.Module,
    x: torch.Tensor,
    saliency: torch.Tensor,
    target: int,
    fill: torch.Tensor,
    steps: int,
    generator: torch.Generator,
) -> tuple[list[float], list[float]]:
    """Probabilities of ``target`` as 0, 1/steps, ..., 1 of the pixels are deleted: by saliency, and in
    a random order. ``x`` (1, 3, H, W) preprocessed; ``fill`` the deleted value, same shape as ``x``."""
    pixels = saliency.numel()
    orders = [saliency.flatten().argsort(descending=True), torch.randperm(pixels, generator=generator)]
    curves: list[list[float]] = []
    for order in orders:
        order = order.to(x.device)
        batch = []
        for step in range(steps + 1):
            mask = torch.zeros(pixels, dtype=torch.bool, device=x.device)
            mask[order[: round(pixels * step / steps)]] = True
            batch.append(torch.where(mask.view(1, 1, *saliency.shape), fill, x)[0])
        probs = model(torch.stack(batch)).float().softmax(dim=1)[:, target]
        curves.append([round(float(p), 6) for p in probs])
    return curves[0], curves[1]


def area_under(curve: list[float]) -> float:
    """Trapezoidal area over [0, 1]."""
    if len(curve) < 2:
        return float(curve[0]) if curve else 0.0
    step = 1.0 / (len(curve) - 1)
    return float(sum((a + b) * step / 2 for a, b in zip(curve, curve[1:], strict=False)))
