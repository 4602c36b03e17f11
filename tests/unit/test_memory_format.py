"""CUDA workers hold models, and receive batches, in channels_last (``zoo.ready_for_inference``,
``zoo.preprocess``). CI has no GPU, so the same layout is exercised here on the CPU: every map and
render must equal the one computed in the usual layout."""

from __future__ import annotations

import pytest
import torch

from worker.nets import zoo
from worker.optvis import objectives
from worker.optvis.deepdream import DreamSettings, dream
from worker.optvis.param import PixelImage
from worker.optvis.render import RenderSettings, render
from worker.saliency.model_maps import MapOptions, model_maps
from worker.saliency.units import unit_saliency

LAYERS = {"squeezenet1_1": "features.9", "resnet18": "layer2", "tiny_cnn": "features.6"}


def _pair(arch: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    usual = zoo.build(arch, 10).eval().requires_grad_(False)
    last = zoo.build(arch, 10).eval().requires_grad_(False)
    last.load_state_dict(usual.state_dict())
    return usual, last.to(memory_format=torch.channels_last)


@pytest.mark.parametrize("arch", list(LAYERS))
def test_saliency_maps_are_the_same_in_channels_last(arch: str) -> None:
    usual, last = _pair(arch)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    x_last = x.contiguous(memory_format=torch.channels_last)
    black = torch.zeros(1, 3, 64, 64)
    for method in ("gradient", "integrated_gradients", "grad_cam"):
        options = MapOptions(
            method=method,
            smoothgrad_samples=2,
            smoothgrad_noise=0.1,
            ig_steps=4,
            ig_baseline="black",
            grad_cam_layer=None,
            internal_batch_size=8,
            precision="fp32",
        )
        expected = model_maps(usual, x, None, options, black).maps
        got = model_maps(last, x_last, None, options, black).maps
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-3)
    unit = unit_saliency(last, x_last, LAYERS[arch], 1, None)
    torch.testing.assert_close(unit.maps, unit_saliency(usual, x, LAYERS[arch], 1, None).maps, atol=1e-4, rtol=1e-3)


def test_renders_and_dreams_are_the_same_in_channels_last() -> None:
    usual, last = _pair("tiny_cnn")
    start = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    settings = RenderSettings(steps=5, learning_rate=0.05)
    objective = objectives.channel("features.6", [0, 3])
    images = [
        render(model, objective, PixelImage(start), settings, preprocessing="unit", generator=torch.Generator()).images
        for model in (usual, last)
    ]
    torch.testing.assert_close(images[1], images[0], atol=1e-4, rtol=1e-3)
    dream_settings = DreamSettings(layers=(("features.6", 1.0),), octaves=2, steps=3, step_size=0.02, max_loss=None)
    dreams = [dream(model, start, dream_settings, torch.Generator().manual_seed(0)).images for model in (usual, last)]
    torch.testing.assert_close(dreams[1], dreams[0], atol=1e-4, rtol=1e-3)
