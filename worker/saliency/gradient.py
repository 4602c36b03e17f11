"""Gradient saliency (Simonyan, Vedaldi & Zisserman 2014).

w = d S_c / d I for the unnormalised class score S_c, one backward pass for the whole batch; for RGB,
M_ij = max over channels of |w_ijc| (the paper's reduction; Captum's visualiser sums channels instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from worker.saliency.precision import autocast_keeping_first_conv


@dataclass
class GradientResult:
    maps: torch.Tensor  # (B, H, W) float32, max over channels of |grad|
    signed: torch.Tensor  # (B, H, W) float32, sum over channels of grad: > 0 where brightening raises the score
    logits: torch.Tensor  # (B, num_classes), detached
    targets: torch.Tensor  # (B,) the class each map explains


def gradient_saliency(
    model: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor | None = None, precision: str = "fp32"
) -> GradientResult:
    """Saliency of ``target`` (None: each image's predicted class) for a batch of preprocessed inputs.

    Scores of different images do not interact in eval mode, so summing them before one backward pass
    gives each image its own gradient.
    """
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad(), _precision(model, x.device.type, precision) as scale:
        logits = model(x).float()
        if target is None:
            targets = logits.detach().argmax(dim=1)
        elif isinstance(target, int):
            targets = torch.full((x.shape[0],), target, dtype=torch.long, device=logits.device)
        else:
            targets = target.to(logits.device)
        score = logits.gather(1, targets[:, None]).sum() * scale
        (grad,) = torch.autograd.grad(score, x)
    grad = grad.float() / scale
    return GradientResult(maps=grad.abs().amax(dim=1), signed=grad.sum(dim=1), logits=logits.detach(), targets=targets)


@contextmanager
def _precision(model: nn.Module, device_type: str, precision: str) -> Iterator[float]:
    if precision == "fp32":
        yield 1.0
        return
    with autocast_keeping_first_conv(model, device_type, precision) as scale:
        yield scale
