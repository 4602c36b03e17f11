"""The optimisation loop shared by feature visualisation and inversion: ascend an objective by changing
an image parameterisation, through random transforms, with priors as penalties.

Every image of the batch is independent (the loss is a sum of per-image terms and the network's
weights are fixed), so many targets render together at the cost of one larger batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from worker.nets.zoo import normalize
from worker.optvis import priors
from worker.optvis.hooks import capture, forward
from worker.optvis.objectives import LOGITS, Objective, wide
from worker.optvis.transforms import Transform


class ImageParam(Protocol):
    def parameters(self) -> list[torch.Tensor]: ...

    def image(self) -> torch.Tensor: ...

    def clamp_(self) -> None: ...


@dataclass(frozen=True)
class RenderSettings:
    steps: int = 512
    learning_rate: float = 0.05
    optimizer: Literal["adam", "ascent", "momentum"] = "adam"
    """adam (Lucid); ascent: plain gradient ascent, each image's gradient divided by its L2 norm
    (Simonyan/CS231n); momentum: SGD with momentum 0.9 (Mahendran & Vedaldi)."""
    lr_drops: tuple[float, ...] = ()
    """Fractions of ``steps`` at which the learning rate is divided by 10."""
    l2: float = 0.0
    """Weight of ||model input||^2 (Simonyan's lambda)."""
    alpha: float = 0.0
    alpha_exponent: float = 6.0
    tv: float = 0.0
    tv_beta: float = 2.0
    blur_every: int = 0
    blur_sigma: float = 0.5
    clamp: bool = False
    """Clamp pixels into [0, 1] after every step (pixel parameterisation)."""
    min_size: int = 0
    """Upsample smaller images to this size before the network (Lucent uses 224)."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    record_every: int = 0
    """Record the per-image objective every this many steps (0: only the first and the last step)."""


@dataclass
class RenderResult:
    images: torch.Tensor
    """(B, 3, H, W) in [0, 1], detached."""
    scores: torch.Tensor
    """The objective per image at the last step (before the last update)."""
    history: list[tuple[int, list[float]]] = field(default_factory=list)


def penalties(image: torch.Tensor, inputs: torch.Tensor, settings: RenderSettings) -> torch.Tensor:
    """The priors, per image. L2 acts on the model input; alpha-norm on the image in [-1, 1] units (so
    that leaving [0, 1] costs dearly); total variation on the image in [0, 1] units."""
    total = torch.zeros(image.shape[0], device=image.device)
    if settings.l2:
        total = total + settings.l2 * priors.l2(inputs)
    if settings.alpha:
        total = total + settings.alpha * priors.alpha_norm(image * 2.0 - 1.0, settings.alpha_exponent)
    if settings.tv:
        total = total + settings.tv * priors.total_variation(image, settings.tv_beta)
    return total


def _autocast(device: torch.device, precision: str) -> torch.autocast | nullcontext[None]:
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _learning_rate(settings: RenderSettings, step: int) -> float:
    drops = sum(1 for fraction in settings.lr_drops if step >= fraction * settings.steps)
    return settings.learning_rate * (0.1**drops)


def render(
    model: nn.Module,
    objective: Objective,
    param: ImageParam,
    settings: RenderSettings,
    *,
    preprocessing: str,
    generators: Sequence[torch.Generator],
    transform: Transform | None = None,
) -> RenderResult:
    params = param.parameters()
    device = params[0].device
    optimizer: torch.optim.Optimizer | None = None
    if settings.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=settings.learning_rate)
    elif settings.optimizer == "momentum":
        optimizer = torch.optim.SGD(params, lr=settings.learning_rate, momentum=0.9)
    history: list[tuple[int, list[float]]] = []
    scores = torch.zeros(0)
    needs_output = LOGITS in objective.layers
    with capture(model, objective.hooked_layers, stop_early=not needs_output) as activations:
        for step in range(settings.steps):
            image = param.image()
            seen = transform(image, generators) if transform is not None else image
            if settings.min_size and min(seen.shape[-2:]) < settings.min_size:
                seen = F.interpolate(seen, size=(settings.min_size,) * 2, mode="bilinear", align_corners=True)
            inputs = normalize(seen * 255.0, preprocessing)
            with _autocast(device, settings.precision):
                output = forward(model, inputs, activations)
                if output is not None:
                    activations[LOGITS] = output
                scores = wide(objective(activations))
            loss = (penalties(image, normalize(image * 255.0, preprocessing), settings) - scores).sum()
            grads = torch.autograd.grad(loss, params)
            lr = _learning_rate(settings, step)
            if optimizer is None:  # plain ascent on the loss, each image's step of length lr
                with torch.no_grad():
                    for p, g in zip(params, grads, strict=True):
                        norms = g.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, *([1] * (g.dim() - 1)))
                        p.sub_(lr * g / norms)
            else:
                for group in optimizer.param_groups:
                    group["lr"] = lr
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                optimizer.step()
            if settings.blur_every and (step + 1) % settings.blur_every == 0:
                with torch.no_grad():
                    for p in params:
                        if p.dim() == 4:  # pixels only: blurring a spectrum means nothing
                            p.copy_(priors.gaussian_blur(p, settings.blur_sigma))
            if settings.clamp:
                param.clamp_()
            last = step == settings.steps - 1
            if step == 0 or last or (settings.record_every and step % settings.record_every == 0):
                history.append((step, [round(float(v), 6) for v in scores.detach().cpu()]))
        activations.clear()
    with torch.no_grad():
        final = param.image().detach().clamp(0.0, 1.0)
    return RenderResult(images=final, scores=scores.detach().cpu(), history=history)


@dataclass
class Evaluation:
    scores: torch.Tensor
    """The objective per image, on the CPU."""
    logits: torch.Tensor
    """The model's output per image, on the CPU (how it classifies the picture)."""


@torch.no_grad()
def evaluate(
    model: nn.Module, objective: Objective, images: torch.Tensor, preprocessing: str, min_size: int = 0
) -> Evaluation:
    """Finished images without transforms, in one forward pass: the objective a user of the picture would
    measure, and the model's output."""
    seen = images
    if min_size and min(seen.shape[-2:]) < min_size:
        seen = F.interpolate(seen, size=(min_size,) * 2, mode="bilinear", align_corners=True)
    with capture(model, objective.hooked_layers) as activations:
        output = model(normalize(seen * 255.0, preprocessing))
        activations[LOGITS] = output
        scores = wide(objective(activations)).cpu()
        activations.clear()
    return Evaluation(scores=scores, logits=wide(output).cpu())
