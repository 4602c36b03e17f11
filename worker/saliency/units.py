"""Gradient saliency of a hidden unit (Simonyan et al. 2014 applied inside the network): the unit is
a channel of a named layer at one position (by default its most active position in each image). The
gradient is non-zero only inside the unit's receptive field; its support is reported as a box."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from worker.saliency.attribution import resolve_layer


@dataclass
class UnitMaps:
    maps: torch.Tensor  # (B, H, W): max over RGB of |d unit / d pixel|
    signed: torch.Tensor  # (B, H, W): sum over RGB of d unit / d pixel (brightening raises it where > 0)
    activations: torch.Tensor  # (B,) the unit's value
    positions: list[tuple[int, int] | None]  # per image, in the layer's grid (None for a vector layer)
    support: list[tuple[int, int, int, int] | None]  # per image: x0, y0, x1, y1 (exclusive) of non-zero gradient


def capture_layer(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model; return (logits, the layer's output). The hook is removed even if the model raises."""
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        logits = model(x)
    finally:
        handle.remove()
    if not captured:
        raise ValueError("the layer did not run in the forward pass")
    return logits, captured[0]


def unit_saliency(
    model: nn.Module, x: torch.Tensor, layer_name: str, channel: int, position: tuple[int, int] | None
) -> UnitMaps:
    layer = resolve_layer(model, layer_name)
    inputs = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        _, act = capture_layer(model, layer, inputs)
        if act.dim() not in (2, 4):
            raise ValueError(f"layer {layer_name!r} gives {act.dim()}-d outputs; units need 2-d or 4-d")
        if not 0 <= channel < act.shape[1]:
            raise ValueError(f"channel {channel} out of range: layer {layer_name!r} has {act.shape[1]} channels")
        positions: list[tuple[int, int] | None]
        if act.dim() == 2:
            if position is not None:
                raise ValueError(f"layer {layer_name!r} is a vector layer: give no position")
            values = act[:, channel]
            positions = [None] * act.shape[0]
        else:
            height, width = act.shape[2:]
            if position is None:
                flat = act[:, channel].detach().flatten(1).argmax(dim=1)
                positions = [(int(i) // width, int(i) % width) for i in flat]
            else:
                if not (0 <= position[0] < height and 0 <= position[1] < width):
                    raise ValueError(f"position {list(position)} outside the {height}x{width} grid of {layer_name!r}")
                positions = [position] * act.shape[0]
            rows = torch.tensor([p[0] for p in positions if p is not None], device=act.device)
            cols = torch.tensor([p[1] for p in positions if p is not None], device=act.device)
            values = act[torch.arange(act.shape[0], device=act.device), channel, rows, cols]
        (grad,) = torch.autograd.grad(values.sum(), inputs)
    magnitude = grad.abs().amax(dim=1)
    return UnitMaps(
        maps=magnitude.float(),
        signed=grad.sum(dim=1).float(),
        activations=values.detach().float(),
        positions=positions,
        support=[_support(m) for m in magnitude],
    )


def _support(saliency: torch.Tensor) -> tuple[int, int, int, int] | None:
    nonzero = saliency > 0
    if not bool(nonzero.any()):
        return None
    rows = torch.nonzero(nonzero.any(dim=1)).flatten()
    cols = torch.nonzero(nonzero.any(dim=0)).flatten()
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
