"""What to maximise, per image of a batch: each objective maps the captured activations (and the
model output under ``LOGITS``) to one score per image, shape (B,). Objectives compose with ``+``,
``-`` and scalar ``*``, so a DeepDream over several layers is a weighted sum of layer objectives.

Batched targets are vectors: ``channel("mixed4a", [3, 17, 99])`` asks image 0 for channel 3, image 1
for channel 17, and so on, so many targets render in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

LOGITS = "__logits__"
"""The key under which the model's output (pre-softmax) is captured."""

Scores = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def wide(values: torch.Tensor) -> torch.Tensor:
    """At least float32 (activations under autocast are half precision); float64 stays float64, so that a
    render in double precision (the tests' reference) is double throughout."""
    return values if values.dtype == torch.float64 else values.float()


class Objective:
    def __init__(self, layers: Sequence[str], scores: Scores, description: str) -> None:
        self.layers = tuple(dict.fromkeys(layers))
        self._scores = scores
        self.description = description

    def __call__(self, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._scores(activations)

    @property
    def hooked_layers(self) -> tuple[str, ...]:
        """The layers that need a forward hook (the logits come from the forward pass itself)."""
        return tuple(layer for layer in self.layers if layer != LOGITS)

    def __add__(self, other: Objective) -> Objective:
        return Objective(
            (*self.layers, *other.layers), lambda a: self(a) + other(a), f"{self.description} + {other.description}"
        )

    def __sub__(self, other: Objective) -> Objective:
        return self + (-1.0) * other

    def __mul__(self, weight: float) -> Objective:
        factor = float(weight)
        return Objective(self.layers, lambda a: factor * self(a), f"{factor:g} * {self.description}")

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return (-1.0) * self


def _rows(values: int | Sequence[int], batch: int, device: torch.device) -> torch.Tensor:
    if isinstance(values, int):
        return torch.full((batch,), values, dtype=torch.long, device=device)
    if len(values) != batch:
        raise ValueError(f"{len(values)} targets for a batch of {batch}")
    return torch.as_tensor(list(values), dtype=torch.long, device=device)


def class_logit(classes: int | Sequence[int]) -> Objective:
    """The unnormalised class score (pre-softmax logits give better class images than probabilities)."""

    def scores(a: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = a[LOGITS]
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, _rows(classes, logits.shape[0], logits.device)]

    return Objective([LOGITS], scores, f"class {classes}")


def channel(layer: str, channels: int | Sequence[int]) -> Objective:
    """The mean activation of a channel over its spatial grid."""

    def scores(a: dict[str, torch.Tensor]) -> torch.Tensor:
        act = a[layer]
        rows = torch.arange(act.shape[0], device=act.device)
        return wide(act[rows, _rows(channels, act.shape[0], act.device)]).mean(dim=(-2, -1))

    return Objective([layer], scores, f"{layer}:{channels}")


def neuron(layer: str, channels: int | Sequence[int], position: tuple[int, int] | None = None) -> Objective:
    """One unit: a channel at a grid position (default: the centre of the grid)."""

    def scores(a: dict[str, torch.Tensor]) -> torch.Tensor:
        act = a[layer]
        height, width = act.shape[-2:]
        y, x = position if position is not None else (height // 2, width // 2)
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f"position {(y, x)} is outside {layer}'s {height}x{width} grid")
        rows = torch.arange(act.shape[0], device=act.device)
        return wide(act[rows, _rows(channels, act.shape[0], act.device), y, x])

    return Objective([layer], scores, f"{layer}:{channels}@{position or 'centre'}")


def layer_l2(layer: str, border: int = 0) -> Objective:
    """DeepDream: a whole layer's squared activation, summed without ``border`` cells at each edge and
    divided by the layer's full size (the keras.io recipe crops 2; with no border this is the mean)."""

    def scores(a: dict[str, torch.Tensor]) -> torch.Tensor:
        act = wide(a[layer])
        size = act[0].numel()
        if border and min(act.shape[-2:]) > 2 * border:
            act = act[..., border:-border, border:-border]
        return act.pow(2).flatten(1).sum(dim=1) / size

    return Objective([layer], scores, f"dream {layer}")


def feature_match(layer: str, reference: torch.Tensor) -> Objective:
    """Inversion (Mahendran & Vedaldi): minus the normalised error ||phi(x) - phi0||^2 / ||phi0||^2,
    one reference representation per image of the batch."""
    target = wide(reference.detach())
    norms = target.flatten(1).pow(2).sum(dim=1).clamp_min(1e-12)

    def scores(a: dict[str, torch.Tensor]) -> torch.Tensor:
        error = (wide(a[layer]) - target).flatten(1).pow(2).sum(dim=1)
        return -error / norms

    return Objective([layer], scores, f"match {layer}")
