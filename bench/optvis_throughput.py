"""Feature visualisation and DeepDream throughput against the anchors users have today, in one run.

- DeepDream, InceptionV3, keras.io recipe (3 octaves x 20 steps, 1024x768): the recipe as written (a
  plain loop, fp32, one image at a time, the whole network run each step) vs Fovea's batched path
  (``worker.optvis.deepdream``: a batch of same-size images, bf16 autocast, channels_last, the forward
  pass stopped after the last dreamed layer). Seconds per image and the ratio.
- Feature visualisation, GoogLeNet (inception5h) mixed4a = inception4a, 128 px, 512 steps, Lucid's
  settings: one channel at a time in fp32 (what Lucent does) vs many channels per batch in bf16.
  Seconds per channel and the ratio.
- Peak GPU memory of a tiled 4000x3000 DeepDream (tiles of 512).

On a CUDA machine it runs that configuration; on a CPU-only machine a small one (smaller images, fewer
steps and channels) and says so. Weights are random: timings only (the loss ceiling is off, so that
random weights do not stop the ascent early). One JSON line per figure.

    .venv/bin/python bench/optvis_throughput.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.nets.inception5h import Inception5h  # noqa: E402
from worker.nets.zoo import ready_for_inference  # noqa: E402
from worker.optvis import objectives  # noqa: E402
from worker.optvis import transforms as T  # noqa: E402
from worker.optvis.deepdream import DreamSettings, dream  # noqa: E402
from worker.optvis.param import FFTImage  # noqa: E402
from worker.optvis.render import RenderSettings, render  # noqa: E402

KERAS_LAYERS = (("Mixed_6b", 1.0), ("Mixed_6c", 1.5), ("Mixed_6d", 2.0), ("Mixed_6e", 2.5))


def emit(**figure: Any) -> None:
    print(json.dumps(figure), flush=True)


def inception_v3(device: torch.device) -> torch.nn.Module:
    model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    return model.eval().requires_grad_(False).to(device)


def keras_recipe_as_written(model: torch.nn.Module, image: torch.Tensor, octaves: int, steps: int) -> torch.Tensor:
    """The keras.io example translated line by line: one image, fp32, the whole network every step."""
    store: dict[str, torch.Tensor] = {}
    handles = [
        model.get_submodule(name).register_forward_hook(lambda _m, _i, out, n=name: store.__setitem__(n, out))
        for name, _ in KERAS_LAYERS
    ]
    try:
        original = image
        shape = tuple(original.shape[-2:])
        shapes = [tuple(int(d / 1.4**i) for d in shape) for i in range(octaves)][::-1]
        shrunk = F.interpolate(original, size=shapes[0], mode="bilinear")
        img = original
        for size in shapes:
            img = F.interpolate(img, size=size, mode="bilinear")
            for _ in range(steps):
                img = img.detach().requires_grad_(True)
                model(img)
                loss = sum(w * store[n][:, :, 2:-2, 2:-2].pow(2).sum() / store[n].numel() for n, w in KERAS_LAYERS)
                (grad,) = torch.autograd.grad(loss, img)  # type: ignore[arg-type]
                img = img + 0.01 * grad / grad.abs().mean().clamp_min(1e-6)
            same = F.interpolate(original, size=size, mode="bilinear")
            img = img + same - F.interpolate(shrunk, size=size, mode="bilinear")
            shrunk = same
        return img.detach()
    finally:
        for handle in handles:
            handle.remove()


def timed(work: Any, sync: Any) -> float:
    sync()
    start = time.perf_counter()
    work()
    sync()
    return time.perf_counter() - start


def deepdream_figures(device: torch.device, cuda: bool, sync: Any) -> None:
    height, width, octaves, steps, batch = (768, 1024, 3, 20, 8) if cuda else (192, 256, 3, 3, 4)
    model = inception_v3(device)
    image = torch.rand(1, 3, height, width, device=device) * 2 - 1
    keras_recipe_as_written(model, image, 1, 1)  # warm-up
    anchor = timed(lambda: keras_recipe_as_written(model, image, octaves, steps), sync)
    emit(figure="deepdream_anchor", seconds_per_image=round(anchor, 3), size=[width, height], precision="fp32")
    fast_model = ready_for_inference(model, device)  # as the worker's model cache prepares it
    settings = DreamSettings(
        layers=KERAS_LAYERS,
        octaves=octaves,
        steps=steps,
        step_size=0.01,
        max_loss=None,
        tile_size=0,
        precision="bf16" if cuda else "fp32",
    )
    images = torch.rand(batch, 3, height, width, device=device) * 2 - 1
    generators = [torch.Generator().manual_seed(i) for i in range(len(images))]
    dream(fast_model, images[:1], DreamSettings(**{**settings.__dict__, "octaves": 1, "steps": 1}), generators[:1])
    fovea = timed(lambda: dream(fast_model, images, settings, generators), sync) / batch
    emit(
        figure="deepdream_fovea",
        seconds_per_image=round(fovea, 3),
        batch=batch,
        precision=settings.precision,
        speedup=round(anchor / fovea, 2),
        goal=8.0,
    )
    if cuda:
        big = torch.rand(1, 3, 3000, 4000, device=device) * 2 - 1
        torch.cuda.reset_peak_memory_stats()
        tiled = DreamSettings(**{**settings.__dict__, "steps": 2, "tile_size": 512, "roll": 512})
        seconds = timed(lambda: dream(fast_model, big, tiled, generators[: len(big)]), sync)
        peak = torch.cuda.max_memory_allocated() / 2**30
        emit(figure="deepdream_4000x3000_tiled", peak_gib=round(peak, 2), goal_gib=10.0, seconds=round(seconds, 1))
    else:
        emit(figure="deepdream_4000x3000_tiled", note="needs CUDA: peak GPU memory is a GPU figure")


def feature_vis_figures(device: torch.device, cuda: bool, sync: Any) -> None:
    steps, channels = (512, 64) if cuda else (16, 8)
    model = Inception5h().eval().requires_grad_(False).to(device)

    def run(count: int, precision: str, net: torch.nn.Module) -> None:
        generator = torch.Generator().manual_seed(0)
        param = FFTImage(count, 128, 128, generator=generator, device=device)
        settings = RenderSettings(steps=steps, learning_rate=0.05, min_size=224, precision=precision)  # type: ignore[arg-type]
        objective = objectives.channel("mixed4a", list(range(count)))
        render(
            net,
            objective,
            param,
            settings,
            preprocessing="inception5h",
            generators=[torch.Generator().manual_seed(i) for i in range(count)],
            transform=T.standard(),
        )

    run(1, "fp32", model)  # warm-up
    anchor = timed(lambda: run(1, "fp32", model), sync)
    emit(figure="feature_vis_anchor", seconds_per_channel=round(anchor, 3), steps=steps, precision="fp32")
    fast = ready_for_inference(model, device)  # as the worker's model cache prepares it
    precision = "bf16" if cuda else "fp32"
    fovea = timed(lambda: run(channels, precision, fast), sync) / channels
    emit(
        figure="feature_vis_fovea",
        seconds_per_channel=round(fovea, 4),
        channels_per_batch=channels,
        precision=precision,
        speedup=round(anchor / fovea, 2),
        goal=50.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["deepdream", "feature_vis"], help="run one part")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    emit(device=torch.cuda.get_device_name() if cuda else "cpu", torch=torch.__version__)
    if not cuda:
        emit(note="no CUDA device: small CPU configuration, not comparable with GPU figures or goals")
    if args.only in (None, "deepdream"):
        deepdream_figures(device, cuda, sync)
    if args.only in (None, "feature_vis"):
        feature_vis_figures(device, cuda, sync)


if __name__ == "__main__":
    main()
