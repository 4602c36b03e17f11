"""GoogLeNet "inception5h": the network of the original DeepDream notebook and of Lucid's InceptionV1.

Not torchvision's ``googlenet`` (different weights, local response norms, 1008 outputs). Inputs are RGB
in 0..255 minus 117. Module names are the tensor names of the weights file (``conv2d0``, ``mixed4c``,
``softmax2``), so a hook on ``mixed4c`` is the classic DeepDream layer (inception_4c/output).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

# Channel counts (1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce), from the weights' shapes.
_MIXED: dict[str, tuple[int, int, int, int, int, int]] = {
    "mixed3a": (64, 96, 128, 16, 32, 32),
    "mixed3b": (128, 128, 192, 32, 96, 64),
    "mixed4a": (192, 96, 204, 16, 48, 64),
    "mixed4b": (160, 112, 224, 24, 64, 64),
    "mixed4c": (128, 128, 256, 24, 64, 64),
    "mixed4d": (112, 144, 288, 32, 64, 64),
    "mixed4e": (256, 160, 320, 32, 128, 128),
    "mixed5a": (256, 160, 320, 48, 128, 128),
    "mixed5b": (384, 192, 384, 48, 128, 128),
}
LAYERS = ("conv2d0", "conv2d1", "conv2d2", *_MIXED, "softmax2")
NUM_CLASSES = 1008


def _lrn() -> nn.LocalResponseNorm:
    # TensorFlow's depth_radius 5, alpha 1e-4 (not divided by the window), beta 0.5, bias 2 in torch's terms.
    return nn.LocalResponseNorm(size=11, alpha=0.0011, beta=0.5, k=2.0)


class Mixed(nn.Module):
    """Four ReLU branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max-pool -> 1x1."""

    def __init__(self, in_channels: int, sizes: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        c1, b3, c3, b5, c5, pool = sizes
        self.convs = nn.ModuleDict(
            {
                "1x1": nn.Conv2d(in_channels, c1, 1),
                "3x3_bottleneck": nn.Conv2d(in_channels, b3, 1),
                "3x3": nn.Conv2d(b3, c3, 3, padding=1),
                "5x5_bottleneck": nn.Conv2d(in_channels, b5, 1),
                "5x5": nn.Conv2d(b5, c5, 5, padding=2),
                "pool_reduce": nn.Conv2d(in_channels, pool, 1),
            }
        )
        self.out_channels = c1 + c3 + c5 + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.convs
        branch3 = F.relu(conv["3x3"](F.relu(conv["3x3_bottleneck"](x))))
        branch5 = F.relu(conv["5x5"](F.relu(conv["5x5_bottleneck"](x))))
        pooled = F.relu(conv["pool_reduce"](F.max_pool2d(x, 3, stride=1, padding=1)))
        return torch.cat([F.relu(conv["1x1"](x)), branch3, branch5, pooled], dim=1)


class Inception5h(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.conv2d0 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.conv2d1 = nn.Conv2d(64, 64, 1)
        self.conv2d2 = nn.Conv2d(64, 192, 3, padding=1)
        self.lrn0, self.lrn2 = _lrn(), _lrn()
        channels = 192
        for name, sizes in _MIXED.items():
            block = Mixed(channels, sizes)
            self.add_module(name, block)
            channels = block.out_channels
        self.softmax2 = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lrn0(F.max_pool2d(F.relu(self.conv2d0(x)), 3, stride=2, padding=1))
        x = F.relu(self.conv2d1(x))
        x = F.max_pool2d(self.lrn2(F.relu(self.conv2d2(x))), 3, stride=2, padding=1)
        for name in _MIXED:
            x = self.get_submodule(name)(x)
            if name in ("mixed3b", "mixed4e"):
                x = F.max_pool2d(x, 3, stride=2, padding=1)
        return self.softmax2(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Accepts the weights file's flat names (``mixed4a_3x3_w``) as well as this module's own."""
        return super().load_state_dict(from_file_names(state_dict), strict=strict, assign=assign)


def from_file_names(state: Mapping[str, Any]) -> dict[str, Any]:
    """``conv2d0_w`` -> ``conv2d0.weight``; ``mixed3a_3x3_bottleneck_b`` -> ``mixed3a.convs.3x3_bottleneck.bias``."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if "." in key or not key.endswith(("_w", "_b")):
            out[key] = value
            continue
        stem, kind = key[:-2], "weight" if key.endswith("_w") else "bias"
        layer, _, branch = stem.partition("_")
        out[f"{layer}.convs.{branch}.{kind}" if branch else f"{layer}.{kind}"] = value
    return out
