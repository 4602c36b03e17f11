"""DeepDream on CPU with small networks: every octave raises the dreamed layers' activation, the output
keeps the input's size, tiling changes nothing when the image fits one tile, and batching changes
nothing for an image."""

from __future__ import annotations

import torch
from torch import nn

from worker.optvis.deepdream import DreamSettings, dream, octave_shapes, tile_bounds
from worker.optvis.hooks import hook_count


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()
    )
    return model.eval().requires_grad_(False)


def _generators(images: torch.Tensor) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(i) for i in range(images.shape[0])]


def _settings(**overrides: object) -> DreamSettings:
    base: dict[str, object] = {
        "layers": (("1", 1.0), ("4", 1.5)),
        "octaves": 3,
        "octave_scale": 1.4,
        "steps": 6,
        "step_size": 0.05,
        "max_loss": None,
    }
    return DreamSettings(**{**base, **overrides})  # type: ignore[arg-type]


def test_every_octave_raises_the_activation_and_the_size_is_kept() -> None:
    model = _model()
    image = torch.rand(2, 3, 45, 61, generator=torch.Generator().manual_seed(1))
    result = dream(model, image, _settings(), _generators(image))
    assert result.images.shape == image.shape
    assert [o.shape for o in result.octave_losses] == [(22, 31), (32, 43), (45, 61)]
    for octave in result.octave_losses:
        assert all(last > first for first, last in zip(octave.loss_first, octave.loss_last, strict=True)), octave
    assert hook_count(model) == 0


def test_octave_shapes_follow_the_recipe() -> None:
    assert octave_shapes(768, 1024, 3, 1.4) == [(391, 522), (548, 731), (768, 1024)]


def test_tiled_and_untiled_dreams_of_an_image_that_fits_one_tile_are_identical() -> None:
    model = _model()
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    whole = dream(model, image, _settings(), _generators(image)).images
    tiled = dream(model, image, _settings(tile_size=40), _generators(image)).images
    assert torch.equal(whole, tiled)


def test_tiles_cover_a_large_image_and_the_roll_is_undone() -> None:
    model = _model()
    image = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(3))
    settings = _settings(octaves=1, steps=1, tile_size=32, roll=16, reinject_detail=False)
    out = dream(model, image, settings, _generators(image)).images
    changed = (out - image).abs().sum(dim=1)[0]
    assert out.shape == image.shape and bool((changed > 0).all())  # every pixel of every tile stepped


def test_a_batch_dreams_as_its_images_do_alone() -> None:
    model = _model()
    images = torch.rand(3, 3, 36, 36, generator=torch.Generator().manual_seed(4))
    settings = _settings(max_loss=0.5, roll=8)  # also: each image stops at its own ceiling, rolls its own way
    batch = dream(model, images, settings, _generators(images))
    for row in range(3):
        alone = dream(model, images[row : row + 1], settings, [torch.Generator().manual_seed(row)]).images
        assert torch.allclose(batch.images[row : row + 1], alone, atol=1e-5)


def test_lost_detail_is_reinjected() -> None:
    model = _model()
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(5))
    no_steps = _settings(steps=0)
    kept = dream(model, image, no_steps, _generators(image)).images
    lost = dream(
        model, image, DreamSettings(**{**no_steps.__dict__, "reinject_detail": False}), _generators(image)
    ).images
    assert torch.allclose(kept, image, atol=1e-5)  # with no ascent, re-injection gives the input back
    assert (lost - image).abs().mean() > 0.05  # without it, the octaves blur the image


def test_tile_bounds_cover_everything_in_even_tiles() -> None:
    assert tile_bounds(70, 32) == [(0, 23), (23, 47), (47, 70)]
    assert tile_bounds(512, 512) == [(0, 512)]
    assert tile_bounds(4000, 512)[-1][1] == 4000 and max(b - a for a, b in tile_bounds(4000, 512)) <= 512
