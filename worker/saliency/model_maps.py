"""Model-based saliency for a preprocessed batch: predictions plus one map per image, by method."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from worker.saliency import attribution
from worker.saliency.gradient import gradient_saliency


@dataclass(frozen=True)
class MapOptions:
    method: str
    smoothgrad_samples: int = 25
    smoothgrad_noise: float = 0.15
    ig_steps: int = 32
    ig_baseline: str = "black"
    grad_cam_layer: str | None = None
    internal_batch_size: int = 64
    precision: str = "fp32"


@dataclass
class ModelMaps:
    maps: torch.Tensor  # (B, H, W) float32, non-negative
    signed: torch.Tensor | None  # (B, H, W) for the plain gradient: sum over RGB of the gradient
    logits: torch.Tensor  # (B, classes)
    targets: torch.Tensor  # (B,)
    batch_size: int  # the internal batch size that fitted (after any out-of-memory back-off)


def model_maps(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor | None,
    options: MapOptions,
    black: torch.Tensor,
    seeds: list[int] | None = None,
) -> ModelMaps:
    """Maps of ``target`` (None: the predicted class; an int; or one class per image).
    ``black`` is a black image in the model's input space (the 'black' IG baseline); ``seeds``, one per
    image, seed SmoothGrad's noise (default: the image's place in the batch)."""
    if options.method == "gradient":
        result = gradient_saliency(model, x, target, options.precision)
        return ModelMaps(result.maps, result.signed, result.logits, result.targets, options.internal_batch_size)
    with torch.no_grad():
        logits = model(x).float()
    if target is None:
        targets = logits.argmax(dim=1)
    elif isinstance(target, int):
        targets = torch.full_like(logits[:, 0], target, dtype=torch.long)
    else:
        targets = target.to(logits.device)
    size = options.internal_batch_size
    if options.method == "smoothgrad":
        maps, size = attribution.with_oom_backoff(
            lambda b: attribution.smoothgrad(
                model,
                x,
                targets,
                options.smoothgrad_samples,
                options.smoothgrad_noise,
                b,
                seeds if seeds is not None else list(range(x.shape[0])),
            ),
            size,
        )
    elif options.method == "integrated_gradients":
        baseline = attribution.baseline_for(x, options.ig_baseline, black)
        maps, size = attribution.with_oom_backoff(
            lambda b: attribution.integrated_gradients(model, x, baseline, targets, options.ig_steps, b), size
        )
    elif options.method == "grad_cam":
        layer = attribution.resolve_layer(model, options.grad_cam_layer or attribution.default_cam_layer(model))
        maps = attribution.grad_cam(model, layer, x, targets)
    else:
        raise ValueError(f"unknown model-based method {options.method!r}")
    return ModelMaps(maps.detach().float(), None, logits, targets, size)
