"""The glimpse sensor of the Recurrent Attention Model (Mnih et al. 2014): around a location l in
[-1, 1]^2 (x then y; -1 is the image's left or top edge, +1 its right or bottom edge) it cuts k square
patches, the first ``patch_size`` pixels wide and each next one ``scale`` times as wide as the last, and
shrinks every one to ``patch_size`` (a retina: sharp in the centre, coarse around it). Pixels outside
the image read as zero.

Written here rather than taken from a library because none has it: the patches are cut for the whole
batch at once by one gather per scale (each image's rows and columns as index tensors into a
zero-padded copy) and shrunk by area averaging (``adaptive_avg_pool2d``: the mean over each block for a
whole-number scale, the paper's coarser resolution). Integer crops, rather than ``grid_sample``'s
bilinear point samples, make every patch exactly the pixels of the image it covers (a test compares
them with direct slicing), and area averaging keeps every pixel's share where point sampling would
skip most of a wide patch's pixels.

The centre pixel of l is floor((l + 1) / 2 * side), as in the widely used PyTorch version; a patch of
width w covers [centre - w // 2, centre - w // 2 + w).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patch_widths(patch_size: int, scales: int, scale: float) -> list[int]:
    """The widths of the k patches, innermost first: patch_size, patch_size * scale, ..."""
    return [int(round(patch_size * scale**i)) for i in range(scales)]


def centres(locations: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(column, row) pixel of each location: (B, 2) in [-1, 1] -> two (B,) int64 tensors."""
    x = torch.floor((locations[:, 0].clamp(-1.0, 1.0) + 1.0) * 0.5 * width).long()
    y = torch.floor((locations[:, 1].clamp(-1.0, 1.0) + 1.0) * 0.5 * height).long()
    return x, y


def boxes(locations: torch.Tensor, height: int, width: int, widths: list[int]) -> torch.Tensor:
    """(B, k, 4) boxes [x0, y0, x1, y1] in pixels (x1, y1 exclusive) of each patch, for drawing."""
    x, y = centres(locations, height, width)
    out = []
    for w in widths:
        x0, y0 = x - w // 2, y - w // 2
        out.append(torch.stack([x0, y0, x0 + w, y0 + w], dim=1))
    return torch.stack(out, dim=1)


def crop(images: torch.Tensor, locations: torch.Tensor, width: int) -> torch.Tensor:
    """(B, C, width, width): each image's square of ``width`` pixels around its location, zero outside."""
    batch, _channels, height, image_width = images.shape
    pad = width  # enough on every side for any centre in [0, side]
    padded = F.pad(images, (pad, pad, pad, pad))
    x, y = centres(locations, height, image_width)
    steps = torch.arange(width, device=images.device)
    rows = (y - width // 2 + pad)[:, None] + steps  # (B, width)
    cols = (x - width // 2 + pad)[:, None] + steps
    picked = torch.arange(batch, device=images.device)[:, None, None]
    # (B, width, width, C) from advanced indexing over batch, rows and columns, then channels first again.
    return padded.permute(0, 2, 3, 1)[picked, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def glimpse(images: torch.Tensor, locations: torch.Tensor, patch_size: int, scales: int, scale: float) -> torch.Tensor:
    """(B, k, C, patch_size, patch_size): the retina's k patches around each location, innermost first."""
    patches = []
    for width in patch_widths(patch_size, scales, scale):
        patch = crop(images, locations, width)
        if width != patch_size:
            patch = F.adaptive_avg_pool2d(patch, patch_size)
        patches.append(patch)
    return torch.stack(patches, dim=1)
