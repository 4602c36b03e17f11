"""The attribution family checked against Captum, closed forms and hand-written computations."""

from __future__ import annotations

import pytest
import torch
from captum.attr import Saliency
from torch import nn

from worker.nets.tiny import TinyCNN
from worker.saliency import attribution
from worker.saliency.gradient import gradient_saliency
from worker.saliency.model_maps import MapOptions, model_maps


def _model(seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN(num_classes=6).eval()


def test_gradient_map_equals_captum_saliency_max_over_channels() -> None:
    model = _model()
    x = torch.randn(5, 3, 40, 40)
    ours = gradient_saliency(model, x)
    captum = Saliency(model).attribute(x, target=ours.targets, abs=True).amax(dim=1)
    torch.testing.assert_close(ours.maps, captum, rtol=1e-5, atol=1e-5)


def test_smoothgrad_with_vanishing_noise_is_the_gradient() -> None:
    model = _model(1)
    x = torch.randn(2, 3, 32, 32)
    target = gradient_saliency(model, x).targets
    smooth = attribution.smoothgrad(model, x, target, samples=4, noise=1e-9, batch_size=2, seeds=[1, 2])
    torch.testing.assert_close(smooth, gradient_saliency(model, x, target).maps, rtol=1e-4, atol=1e-6)
    noisy = attribution.smoothgrad(model, x, target, samples=8, noise=0.3, batch_size=3, seeds=[1, 2])
    assert noisy.shape == (2, 32, 32) and noisy.min() >= 0 and not torch.allclose(noisy, smooth)


def test_smoothgrad_is_the_mean_of_captum_saliency_over_each_images_own_noise() -> None:
    """Against Captum's Saliency on the very noisy copies, one at a time: per-image noise std from the
    image's own range (a dim image among bright ones gets its own small noise, not theirs)."""
    model = _model(2)
    dim, bright = torch.rand(1, 3, 24, 24) * 0.1, torch.rand(2, 3, 24, 24) * 4.0
    x = torch.cat([dim, bright])
    target = gradient_saliency(model, x).targets
    ours = attribution.smoothgrad(model, x, target, samples=5, noise=0.2, batch_size=4, seeds=[7, 8, 9])
    for row, seed in enumerate([7, 8, 9]):
        generator = torch.Generator().manual_seed(seed)
        spread = 0.2 * float(x[row].max() - x[row].min())
        copies = torch.stack([x[row] + torch.randn(x.shape[1:], generator=generator) * spread for _ in range(5)])
        expected = Saliency(model).attribute(copies, target=int(target[row]), abs=True).mean(dim=0).amax(dim=0)
        torch.testing.assert_close(ours[row], expected, rtol=1e-4, atol=1e-7)
    alone = attribution.smoothgrad(model, x[:1], target[:1], samples=5, noise=0.2, batch_size=2, seeds=[7])
    torch.testing.assert_close(alone[0], ours[0], rtol=1e-5, atol=1e-8)  # the same with or without neighbours


def test_integrated_gradients_on_a_linear_model_is_exact() -> None:
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    x, baseline = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    target = torch.tensor([0, 1, 1])
    maps = attribution.integrated_gradients(linear, x, baseline, target, steps=8, batch_size=4)
    weights = linear[1].weight.detach()[target].view(3, 3, 8, 8)
    torch.testing.assert_close(maps, ((x - baseline) * weights).abs().amax(dim=1), rtol=1e-4, atol=1e-5)


def test_grad_cam_matches_the_definition() -> None:
    model = _model(2)
    x = torch.randn(2, 3, 32, 32)
    target = torch.tensor([1, 4])
    ours = attribution.grad_cam(model, model.features, x, target)
    activations: list[torch.Tensor] = []
    handle = model.features.register_forward_hook(lambda _m, _i, out: activations.append(out))
    try:
        logits = model(x)
    finally:
        handle.remove()
    (grads,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), activations[0])
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * activations[0]).sum(dim=1, keepdim=True))
    expected = torch.nn.functional.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-6)


def test_out_of_memory_halves_the_batch() -> None:
    seen: list[int] = []

    def run(batch: int) -> str:
        seen.append(batch)
        if batch > 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done"

    assert attribution.with_oom_backoff(run, 40) == ("done", 5)
    assert seen == [40, 20, 10, 5]
    with pytest.raises(ValueError):
        attribution.with_oom_backoff(lambda b: (_ for _ in ()).throw(ValueError("not memory")), 8)


@pytest.mark.parametrize("method", ["gradient", "smoothgrad", "integrated_gradients", "grad_cam"])
def test_every_method_gives_one_map_per_image(method: str) -> None:
    model = _model(3)
    x = torch.randn(3, 3, 32, 32)
    result = model_maps(
        model, x, None, MapOptions(method=method, smoothgrad_samples=3, ig_steps=4), torch.zeros(1, 3, 32, 32)
    )
    assert result.maps.shape == (3, 32, 32) and torch.isfinite(result.maps).all() and result.maps.min() >= 0
    assert result.targets.tolist() == result.logits.argmax(dim=1).tolist()


def test_default_cam_layers() -> None:
    import torchvision

    assert attribution.default_cam_layer(torchvision.models.resnet18()) == "layer4"
    assert attribution.default_cam_layer(torchvision.models.squeezenet1_1()) == "features"
    with pytest.raises(ValueError, match="no layer"):
        attribution.resolve_layer(_model(), "classifier.nope")
