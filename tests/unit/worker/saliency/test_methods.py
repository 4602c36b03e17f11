"""Saliency maps checked against direct computations and against what the methods promise."""

from __future__ import annotations

import numpy as np
import torch

from worker.nets.tiny import TinyCNN
from worker.saliency.gradient import gradient_saliency
from worker.saliency.spectral import spectral_residual


def _model(seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN(num_classes=5).eval()


def test_gradient_map_equals_direct_autograd_per_image() -> None:
    model = _model()
    inputs = torch.randn(4, 3, 32, 32)
    result = gradient_saliency(model, inputs)
    for row in range(4):
        x = inputs[row : row + 1].clone().requires_grad_(True)
        logits = model(x)
        cls = int(logits.argmax())
        logits[0, cls].backward()
        expected = x.grad.abs().amax(dim=1)[0]  # type: ignore[union-attr]
        assert int(result.targets[row]) == cls
        torch.testing.assert_close(result.maps[row], expected, rtol=1e-5, atol=1e-7)


def test_given_target_class_is_explained() -> None:
    model = _model(1)
    inputs = torch.randn(2, 3, 32, 32)
    result = gradient_saliency(model, inputs, target=3)
    x = inputs.clone().requires_grad_(True)
    model(x)[:, 3].sum().backward()
    torch.testing.assert_close(result.maps, x.grad.abs().amax(dim=1), rtol=1e-5, atol=1e-7)  # type: ignore[union-attr]
    assert result.targets.tolist() == [3, 3]


def test_gradient_is_zero_where_the_score_does_not_look() -> None:
    """A model whose score reads only the top-left quadrant has no saliency elsewhere."""

    class Corner(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x[:, :, :8, :8].pow(2).sum(dim=(1, 2, 3)), x.new_zeros(x.shape[0])], dim=1)

    maps = gradient_saliency(Corner(), torch.randn(2, 3, 16, 16) + 0.1).maps
    assert maps[:, :8, :8].min() > 0
    assert maps[:, 8:, :].abs().max() == 0 and maps[:, :, 8:].abs().max() == 0


def test_spectral_residual_peaks_on_the_odd_object() -> None:
    rng = np.random.default_rng(0)
    image = np.full((120, 160, 3), 128, dtype=np.uint8) + rng.integers(0, 4, (120, 160, 3), dtype=np.uint8)
    image[40:60, 100:120] = 255  # a lone bright patch
    saliency = spectral_residual(image)
    assert saliency.shape == (120, 160) and saliency.dtype == np.float32
    assert abs(float(saliency.max()) - 1.0) < 1e-6 and float(saliency.min()) >= 0
    y, x = np.unravel_index(int(saliency.argmax()), saliency.shape)
    assert 30 <= y <= 70 and 90 <= x <= 130
