"""Hidden-unit saliency: zero outside the unit's receptive field, equal to a direct computation."""

from __future__ import annotations

import pytest
import torch

from worker.nets.tiny import TinyCNN
from worker.saliency.units import unit_saliency


def _model() -> TinyCNN:
    torch.manual_seed(0)
    return TinyCNN(num_classes=3).eval()


@pytest.mark.parametrize(
    ("layer", "position", "rows"),
    [
        ("features.0", (10, 12), (9, 12)),  # 3x3 conv: rows y-1 .. y+1
        ("features.4", (5, 6), (7, 15)),  # conv, pool 2, conv: rows 2y-3 .. 2y+4
    ],
)
def test_zero_outside_the_receptive_field(layer: str, position: tuple[int, int], rows: tuple[int, int]) -> None:
    x = torch.rand(2, 3, 32, 32) + 0.1
    result = unit_saliency(_model(), x, layer, channel=2, position=position)
    lo, hi = rows  # inclusive
    col_lo, col_hi = (
        (position[1] - 1, position[1] + 1) if layer == "features.0" else (2 * position[1] - 3, 2 * position[1] + 4)
    )
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[lo : hi + 1, col_lo : col_hi + 1] = True
    assert (result.maps[:, ~inside] == 0).all()
    for box in result.support:
        assert box is not None and lo <= box[1] and box[3] - 1 <= hi and col_lo <= box[0] and box[2] - 1 <= col_hi


def test_most_active_position_and_direct_gradient() -> None:
    model = _model()
    x = torch.rand(1, 3, 32, 32)
    result = unit_saliency(model, x, "features.5", channel=7, position=None)
    act = model.features[:6](x)[0, 7]
    y, z = divmod(int(act.argmax()), act.shape[1])
    assert result.positions == [(y, z)]
    torch.testing.assert_close(result.activations[0], act[y, z])
    xg = x.clone().requires_grad_(True)
    model.features[:6](xg)[0, 7, y, z].backward()
    torch.testing.assert_close(result.maps[0], xg.grad.abs().amax(dim=1)[0])  # type: ignore[union-attr]
    torch.testing.assert_close(result.signed[0], xg.grad.sum(dim=1)[0])  # type: ignore[union-attr]


def test_hooks_are_removed_even_when_the_unit_is_wrong() -> None:
    model = _model()
    with pytest.raises(ValueError, match="channel"):
        unit_saliency(model, torch.rand(1, 3, 16, 16), "features.0", channel=999, position=None)
    with pytest.raises(ValueError, match="outside"):
        unit_saliency(model, torch.rand(1, 3, 16, 16), "features.0", channel=0, position=(99, 0))
    assert all(not m._forward_hooks for m in model.modules())
