"""Checks of what a job needs from its model, made once when the job starts (``MapPipeline.check``), so
that a layer the model lacks, a channel past its width or a class past its outputs fails the job at once
with the reason and the valid names, instead of failing every item one by one."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from shared.errors import InvalidInput
from worker.optvis.hooks import capture

_SHOWN = 80  # layer names listed in an error at most


def layer_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", … ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


def require_layers(model: nn.Module, layers: Iterable[str], field: str) -> None:
    known = set(layer_names(model))
    missing = [layer for layer in layers if layer not in known]
    if missing:
        raise InvalidInput(
            f"{field}: the model has no layer {', '.join(repr(m) for m in missing)}; "
            f"its layers: {_listing(layer_names(model))}"
        )


@torch.no_grad()
def layer_shapes(model: nn.Module, layers: list[str], input_size: int, device: torch.device) -> dict[str, list[int]]:
    """Each layer's output shape for one image (channels first), from one forward pass of a blank image."""
    with capture(model, layers, stop_early=True) as activations:
        try:
            model(torch.zeros(1, 3, input_size, input_size, device=device))
        except Exception as exc:  # a model that cannot take this input size at all
            if not all(layer in activations for layer in layers):
                raise InvalidInput(f"the model cannot run on {input_size}x{input_size} images: {exc}") from exc
        return {layer: list(activations[layer].shape[1:]) for layer in layers}


def require_channels(
    model: nn.Module, channels: dict[str, list[int]], input_size: int, device: torch.device, field: str
) -> None:
    """Every channel asked of a layer is below the layer's width."""
    require_layers(model, channels, field)
    shapes = layer_shapes(model, list(channels), input_size, device)
    for layer, wanted in channels.items():
        width = shapes[layer][0] if shapes[layer] else 0
        past = [c for c in wanted if c >= width]
        if past:
            raise InvalidInput(f"{field}: layer {layer!r} has {width} channels; asked for channel {past[0]}")


def require_classes(classes: Iterable[int], num_classes: int, field: str) -> None:
    past = [c for c in classes if not 0 <= c < num_classes]
    if past:
        raise InvalidInput(f"{field}: class {past[0]} is not below the model's {num_classes} classes")
