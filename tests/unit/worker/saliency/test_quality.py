"""Quality measures on cases whose answers are known."""

from __future__ import annotations

import torch
from torch import nn

from worker.saliency.quality import area_under, box_fraction, deletion_curves, pointing_hit


def test_pointing_game() -> None:
    saliency = torch.zeros(10, 20)
    saliency[3, 15] = 1.0
    assert pointing_hit(saliency, (14, 2, 17, 5))
    assert not pointing_hit(saliency, (0, 0, 15, 10))  # x1 is exclusive
    assert box_fraction((0, 0, 10, 5), 10, 20) == 0.25


def test_deletion_by_a_perfect_map_beats_random() -> None:
    class Patch(nn.Module):
        """Class 0's logit is the brightness of a 4x4 patch; class 1's is constant."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            patch = x[:, :, 2:6, 2:6].mean(dim=(1, 2, 3)) * 10
            return torch.stack([patch, torch.zeros_like(patch)], dim=1)

    x = torch.ones(1, 3, 16, 16)
    saliency = torch.zeros(16, 16)
    saliency[2:6, 2:6] = 1.0
    by_map, random = deletion_curves(Patch(), x, saliency, 0, torch.zeros_like(x), 8, torch.Generator().manual_seed(0))
    assert by_map[0] == random[0] and by_map[0] > 0.99
    assert abs(by_map[1] - 0.5) < 1e-6  # the first eighth deleted holds the whole patch: logits tie
    assert area_under(by_map) < area_under(random) - 0.3
    assert area_under([1.0, 1.0, 1.0]) == 1.0 and area_under([1.0, 0.0]) == 0.5
