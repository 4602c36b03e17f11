"""The attribution family through Captum (SmoothGrad, Integrated Gradients, Grad-CAM), each bounded
by an internal batch size that halves itself on out-of-memory instead of failing the shard.

Pixel maps are reduced like the gradient map: max over RGB of the absolute attribution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency
from torch import nn

T = TypeVar("T")


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def with_oom_backoff(run: Callable[[int], T], batch_size: int) -> tuple[T, int]:
    """Call ``run(batch_size)``, halving the batch size after each out-of-memory error down to 1.
    Returns the result and the batch size that worked (callers keep it for the next batch)."""
    while True:
        try:
            return run(batch_size), batch_size
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            if not is_out_of_memory(exc) or batch_size == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            batch_size = max(1, batch_size // 2)


def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    samples: int,
    noise: float,
    batch_size: int,
    seeds: list[int],
) -> torch.Tensor:
    """Smilkov et al. 2017: the mean |gradient| over noisy copies, max over RGB. Each image's noise std is
        ``noise`` times its own input range and is drawn from its own generator (seeded from ``seeds``, made here so
    that a retry after an out-of-memory back-off draws the same noise), so its map is the same
        whatever images share its batch (Captum's NoiseTunnel takes one std for the batch and the global RNG).
        The gradients are Captum's ``Saliency``, ``batch_size`` noisy copies at a time."""
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    spread = (x.flatten(1).amax(dim=1) - x.flatten(1).amin(dim=1)) * noise
    pending = [(row, copy) for row in range(x.shape[0]) for copy in range(samples)]
    total = torch.zeros_like(x)
    saliency = Saliency(model)
    for start in range(0, len(pending), batch_size):
        chunk = pending[start : start + batch_size]
        rows = [row for row, _ in chunk]
        drawn = torch.stack([torch.randn(x.shape[1:], generator=generators[row]) for row in rows]).to(x.device)
        noisy = x[rows] + drawn * spread[rows].reshape(-1, 1, 1, 1)
        grads = saliency.attribute(noisy, target=target[rows], abs=True).detach()
        total.index_add_(0, torch.tensor(rows, device=x.device), grads)
    return (total / samples).amax(dim=1)


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, baseline: torch.Tensor, target: torch.Tensor, steps: int, batch_size: int
) -> torch.Tensor:
    """Sundararajan et al. 2017, Gauss-Legendre steps from ``baseline`` to ``x``."""
    attr = IntegratedGradients(model).attribute(
        x, baselines=baseline, target=target, n_steps=steps, internal_batch_size=batch_size
    )
    return attr.abs().amax(dim=1)


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Selvaraju et al. 2017: ReLU of the channel-weighted layer activation, upsampled to the input."""
    cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")[:, 0].clamp_min(0)


def default_cam_layer(model: nn.Module) -> str:
    """The last feature block: ``features`` (SqueezeNet, MobileNet, VGG, AlexNet, TinyCNN) or ``layer4``
    (ResNet); otherwise the last convolution."""
    names = dict(model.named_modules())
    if "layer4" in names:
        return "layer4"
    if "features" in names:
        return "features"
    convs = [name for name, module in names.items() if isinstance(module, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no convolution for Grad-CAM; give grad_cam_layer")
    return convs[-1]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        top = ", ".join(n for n, _ in model.named_children())
        raise ValueError(f"no layer {name!r} in the model (top-level layers: {top})") from exc


def baseline_for(x: torch.Tensor, kind: str, zero_pixel: torch.Tensor) -> torch.Tensor:
    """Integrated-gradients baselines: 'black' (a black image, in the model's input space), 'zero'
    (zeros in input space, the mean image for mean/std preprocessing), 'blur' (a heavily blurred copy)."""
    if kind == "black":
        return zero_pixel.expand_as(x).contiguous()
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "blur":
        size = max(3, (min(x.shape[2:]) // 8) | 1)
        return F.avg_pool2d(F.pad(x, [size // 2] * 4, mode="reflect"), size, stride=1)
    raise ValueError(f"unknown baseline {kind!r}")
