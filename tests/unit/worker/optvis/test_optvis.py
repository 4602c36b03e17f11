"""The optimisation engine on CPU: composable objectives, parameterisations, priors, hooks, seeding,
and renders that a trained classifier recognises."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.support.trained import SIZE, shapes_classifier
from worker.nets import zoo
from worker.optvis import objectives, priors
from worker.optvis import transforms as T
from worker.optvis.hooks import capture, forward, hook_count
from worker.optvis.param import FFTImage, PixelImage
from worker.optvis.render import RenderSettings, evaluate, render

CPU = torch.device("cpu")


def _tiny() -> nn.Module:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1), nn.ReLU())
    return model.eval().requires_grad_(False)


@pytest.mark.parametrize("width", [32, 33])
def test_fft_parameterisation_round_trips_an_image(width: int) -> None:
    image = torch.rand(2, 3, 24, width, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.05
    for decorrelate in (True, False):
        back = FFTImage.from_image(image, decorrelate=decorrelate).image()
        assert torch.allclose(back, image, atol=1e-4), (back - image).abs().max()


def test_objectives_compose_with_plus_and_scalar_times() -> None:
    acts = {"a": torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4), objectives.LOGITS: torch.eye(2)}
    first, second = objectives.channel("a", [0, 2]), objectives.class_logit(1)
    combined = 2 * first + second * 0.5 - objectives.neuron("a", 1, (0, 0))
    expected = 2 * acts["a"][[0, 1], [0, 2]].mean(dim=(1, 2)) + 0.5 * torch.tensor([0.0, 1.0]) - acts["a"][:, 1, 0, 0]
    assert torch.allclose(combined(acts), expected)
    assert set(combined.layers) == {"a", objectives.LOGITS} and combined.hooked_layers == ("a",)
    dream = objectives.layer_l2("a", border=1)(acts)
    assert torch.allclose(dream, acts["a"][:, :, 1:-1, 1:-1].pow(2).sum(dim=(1, 2, 3)) / 48)


def generators(count: int, seed: int = 0) -> list[torch.Generator]:
    """One generator per image, as the pipelines make them."""
    return [torch.Generator().manual_seed(seed * 1000 + i) for i in range(count)]


def test_the_tv_prior_lowers_total_variation() -> None:
    model, results = _tiny(), []
    for weight in (0.0, 50.0):
        generator = torch.Generator().manual_seed(0)
        param = PixelImage(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)))
        settings = RenderSettings(steps=60, learning_rate=0.02, tv=weight, clamp=True)
        result = render(
            model, objectives.channel("2", 1), param, settings, preprocessing="unit", generators=[generator]
        )
        results.append(float(priors.total_variation(result.images)[0]))
    assert results[1] < 0.5 * results[0], results


def test_hooks_are_removed_after_a_render_and_after_one_that_raised() -> None:
    model = _tiny()
    settings = RenderSettings(steps=2)
    param = PixelImage(torch.rand(2, 3, 16, 16))
    render(model, objectives.channel("0", [1, 2]), param, settings, preprocessing="unit", generators=generators(2))
    assert hook_count(model) == 0
    with pytest.raises(ValueError, match="targets for a batch"):
        render(model, objectives.channel("0", [1]), param, settings, preprocessing="unit", generators=generators(2))
    assert hook_count(model) == 0
    with pytest.raises(RuntimeError), capture(model, ["0", "2"]):
        assert hook_count(model) == 2
        raise RuntimeError("boom")
    assert hook_count(model) == 0
    with pytest.raises(ValueError, match="no layer"), capture(model, ["nope"]):
        pass


def test_a_seeded_render_is_bit_identical() -> None:
    model = _tiny()

    def once() -> torch.Tensor:
        generator = torch.Generator().manual_seed(11)
        param = FFTImage(3, 40, 40, generator=generator, device=CPU)
        transform = T.standard()
        settings = RenderSettings(steps=5, learning_rate=0.05)
        return render(
            model,
            objectives.channel("2", [0, 1, 3]),
            param,
            settings,
            preprocessing="unit",
            generators=generators(3, 11),
            transform=transform,
        ).images

    assert torch.equal(once(), once())


def test_transforms_keep_the_batch_and_draw_from_the_generator() -> None:
    x = torch.rand(2, 3, 40, 40)
    out = T.standard()(x, generators(2))
    assert out.shape == (2, 3, 64, 64)  # padded by 12 on each side; every later transform keeps the size
    assert torch.equal(T.jitter(4)(x, generators(2, 5)), T.jitter(4)(x, generators(2, 5)))
    rotated = T.random_rotate([90])(x, generators(2))
    assert torch.allclose(
        rotated[0, 0, 1:-1, 1:-1], torch.rot90(x[0, 0], 1, dims=(0, 1))[1:-1, 1:-1], atol=1e-4
    ) or torch.allclose(rotated[0, 0, 1:-1, 1:-1], torch.rot90(x[0, 0], -1, dims=(0, 1))[1:-1, 1:-1], atol=1e-4)


def test_class_images_of_the_trained_shapes_classifier_are_recognised() -> None:
    model, classes, _ = shapes_classifier()
    targets = list(range(len(classes)))
    generator = torch.Generator().manual_seed(0)
    param = FFTImage(len(targets), SIZE, SIZE, generator=generator, device=CPU)
    settings = RenderSettings(steps=96, learning_rate=0.05)
    result = render(
        model,
        objectives.class_logit(targets),
        param,
        settings,
        preprocessing="unit",
        generators=generators(len(targets)),
        transform=T.compose([T.pad(4), T.jitter(4)]),
    )
    with torch.no_grad():
        logits = model(zoo.normalize(result.images * 255.0, "unit"))
        random_logits = model(torch.rand(len(targets), 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)))
    assert logits.argmax(dim=1).tolist() == targets
    rows = torch.arange(len(targets))
    assert (logits[rows, targets] > random_logits[rows, targets] + 5.0).all(), (logits, random_logits)
    assert torch.allclose(
        evaluate(model, objectives.class_logit(targets), result.images, "unit").scores, logits[rows, targets]
    )


def test_inversion_error_falls_and_is_lower_for_shallow_layers() -> None:
    model, _, _ = shapes_classifier()
    from worker.inputs.shapes import make_shapes

    photo = torch.from_numpy(make_shapes(2, SIZE, 9).images).permute(0, 3, 1, 2).float() / 255.0
    errors = {}
    for layer in ("features.2", "features.13"):
        with capture(model, [layer]) as acts:
            model(photo)
            reference = acts[layer]
        objective = objectives.feature_match(layer, reference)
        generator = torch.Generator().manual_seed(0)
        param = PixelImage(0.5 + 0.01 * torch.randn(photo.shape, generator=generator))
        settings = RenderSettings(steps=150, learning_rate=0.02, alpha=1e-4, tv=0.5, record_every=10)
        result = render(model, objective, param, settings, preprocessing="unit", generators=[generator])
        first, last = -torch.tensor(result.history[0][1]), -torch.tensor(result.history[-1][1])
        assert (last < 0.5 * first).all(), (layer, first, last)
        errors[layer] = -evaluate(model, objective, result.images, "unit").scores
    assert (errors["features.2"] < errors["features.13"]).all(), errors


def test_a_forward_pass_stops_once_the_wanted_layers_are_captured() -> None:
    class Boom(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise AssertionError("the rest of the network must not run")

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), Boom()).eval()
    with capture(model, ["1"], stop_early=True) as acts:
        assert forward(model, torch.rand(1, 3, 8, 8), acts) is None
        assert acts["1"].shape == (1, 4, 6, 6)
    assert hook_count(model) == 0


@pytest.mark.parametrize("parameterization", ["fft", "pixels"])
def test_a_render_does_not_depend_on_its_batch_neighbours(parameterization: str) -> None:
    """In double precision, where float rounding cannot be amplified into a difference: each image starts
    from its own generator and draws its own transforms, so alone it renders exactly as in a batch."""
    model = _tiny().double()
    channels = [0, 3, 1]

    def rendered(rows: list[int]) -> torch.Tensor:
        starts = [torch.Generator().manual_seed(100 + row) for row in rows]
        if parameterization == "fft":
            param: FFTImage | PixelImage = FFTImage(
                len(rows), 40, 40, generator=starts, device=CPU, dtype=torch.float64
            )
        else:
            param = PixelImage(torch.stack([torch.rand(3, 40, 40, generator=g, dtype=torch.float64) for g in starts]))
        settings = RenderSettings(steps=12, learning_rate=0.05)
        return render(
            model,
            objectives.channel("2", [channels[row] for row in rows]),
            param,
            settings,
            preprocessing="unit",
            generators=[torch.Generator().manual_seed(row) for row in rows],
            transform=T.standard(),
        ).images

    together = rendered([0, 1, 2])
    for row in range(3):
        torch.testing.assert_close(rendered([row])[0], together[row], rtol=0, atol=1e-10)
