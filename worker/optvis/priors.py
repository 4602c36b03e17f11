"""Image priors: penalties that keep a rendered image natural, one value per image, shape (B,).

- ``l2``: Simonyan's lambda * ||x||^2 on the model input (the zero input is the mean image);
- ``alpha_norm``: Mahendran & Vedaldi's sum |x|^alpha (alpha = 6 keeps pixels in range);
- ``total_variation``: sum ((dx^2 + dy^2))^(beta/2) (beta = 2 is the squared-gradient prior; beta = 1
  the classic TV); both averaged per pixel, so weights do not depend on the image size.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from worker.optvis.objectives import wide


def l2(x: torch.Tensor) -> torch.Tensor:
    return wide(x).pow(2).flatten(1).sum(dim=1)


def alpha_norm(x: torch.Tensor, alpha: float = 6.0) -> torch.Tensor:
    return wide(x).abs().pow(alpha).flatten(1).mean(dim=1)


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    x = wide(x)
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (dx.pow(2) + dy.pow(2) + 1e-8).pow(beta / 2.0).flatten(1).mean(dim=1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (CS231n's class-model recipe blurs every few steps), reflect borders."""
    radius = max(1, int(3 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    padded = F.pad(x, [radius, radius, radius, radius], mode="reflect")
    horizontal = kernel.reshape(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.reshape(1, 1, -1, 1).expand(channels, 1, -1, 1)
    return F.conv2d(F.conv2d(padded, horizontal, groups=channels), vertical, groups=channels)
