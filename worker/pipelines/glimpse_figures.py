"""Trajectory figures for a batch: the sensor cuts again, at the locations an episode visited, the patches
the model saw (so the figure shows exactly its input), and the boxes they cover."""

from __future__ import annotations

import numpy as np
import torch

from worker.nets.glimpse import RecurrentAttention
from worker.nets.glimpse_sensor import boxes, glimpse, patch_widths
from worker.pictures.glimpse import trajectory_figure


@torch.no_grad()
def retina_views(
    model: RecurrentAttention, images: torch.Tensor, locations: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """(patches (B, T, k, C, p, p), boxes (B, T, k, 4)): what the retina saw at each visited location."""
    c = model.config
    widths = patch_widths(c.patch_size, c.scales, c.scale)
    side, steps = images.shape[-1], locations.shape[1]
    flat = locations.reshape(-1, 2).to(images.device)
    seen = glimpse(images.repeat_interleave(steps, dim=0), flat, c.patch_size, c.scales, c.scale).cpu().numpy()
    where = boxes(flat, side, side, widths).cpu().numpy()
    return seen.reshape(len(images), steps, *seen.shape[1:]), where.reshape(len(images), steps, *where.shape[1:])


@torch.no_grad()
def trajectory_figures(
    model: RecurrentAttention,
    images: torch.Tensor,
    locations: torch.Tensor,
    titles: list[str],
    panel_size: int,
) -> list[np.ndarray]:
    """One RGB figure per image: ``images`` (B, C, S, S) in [0, 1], ``locations`` (B, T, 2)."""
    c = model.config
    widths = patch_widths(c.patch_size, c.scales, c.scale)
    seen, where = retina_views(model, images, locations)
    pictures = images.cpu().numpy()
    return [
        trajectory_figure(pictures[i], where[i], seen[i], widths, panel_size=panel_size, title=titles[i])
        for i in range(len(images))
    ]
