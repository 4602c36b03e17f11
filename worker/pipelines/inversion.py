"""The ``inversion`` job kind (Mahendran & Vedaldi 2015): for each image and each chosen layer, the image
rebuilt from that layer's representation alone. Per item: one PNG per layer, a strip from the original
through shallow to deep, and the normalised feature error ||phi(x) - phi0||^2 / ||phi0||^2 per layer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from shared.specs.optvis import InversionSpec
from worker.nets.zoo import denormalize, preprocess
from worker.optvis import objectives
from worker.optvis.hooks import capture
from worker.optvis.param import PixelImage
from worker.optvis.render import RenderSettings, evaluate, render
from worker.pictures import images as pictures
from worker.pipelines import checks
from worker.pipelines.base import Item, MapPipeline, Outcome, PipelineContext
from worker.pipelines.plugin import MapPlugin, ReportHooks


def depth_tv(model: nn.Module, layer: str) -> float:
    """The default TV weight: 5 x 1000^depth, depth in [0, 1] the layer's place among the network's
    modules (nested ones included). Deeper representations keep less of the image, so the prior must
    carry more of it. Measured on inception5h and a photo: mixed4c (depth 0.52, weight about 180) gives
    a clean cat at 150 steps where weight 5 gives noise with a cat's outline; mixed5b (0.83, about
    1,500) halves the feature error that weight 0.5 leaves."""
    names = [name for name, _ in model.named_modules() if name]
    depth = names.index(layer) / max(1, len(names) - 1) if layer in names else 0.5
    return 5.0 * 1000.0**depth


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) in [0, 1] -> RGB uint8 arrays."""
    return [(img.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8) for img in images]


class InversionPipeline(MapPipeline):
    spec: InversionSpec

    def __init__(self, spec: InversionSpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size

    def check(self) -> None:
        checks.require_layers(self.ctx.model(self.spec.model).module, self.spec.layers, "layers")

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        spec, device = self.spec, self.ctx.device
        loaded = self.ctx.model(spec.model)
        mode = loaded.ref.preprocessing
        tensors = [torch.from_numpy(item.image).permute(2, 0, 1) for item in items]
        inputs = preprocess(tensors, loaded.ref.input_size, mode, device, loaded.ref.resize)
        originals = to_uint8(denormalize(inputs, mode) / 255.0)
        base = RenderSettings(
            steps=spec.steps,
            learning_rate=spec.learning_rate,
            optimizer=spec.optimizer,
            lr_drops=(0.6, 0.85) if spec.lr_drops else (),
            alpha=spec.alpha,
            precision=spec.precision,
            record_every=max(1, spec.steps // 16),
        )
        outcomes = [Outcome(data={"errors": {}, "curves": {}}) for _ in items]
        strips: list[list[np.ndarray]] = [[pictures.caption(o, "original")] for o in originals]
        for layer in spec.layers:
            with torch.no_grad(), capture(loaded.module, [layer]) as activations:
                loaded.module(inputs)
                reference = activations[layer].detach()
            objective = objectives.feature_match(layer, reference)
            # Small noise around mid-grey, one generator per image: a reconstruction does not depend on
            # its batch neighbours.
            noise = [torch.randn(inputs.shape[1:], generator=self._generator(item)) for item in items]
            param = PixelImage((0.5 + 0.01 * torch.stack(noise)).to(device))
            generators = [self._generator(item) for item in items]
            settings = replace(base, tv=spec.tv if spec.tv is not None else depth_tv(loaded.module, layer))
            result = render(loaded.module, objective, param, settings, preprocessing=mode, generators=generators)
            errors = (-evaluate(loaded.module, objective, result.images, mode).scores).tolist()
            for row, (item, picture) in enumerate(zip(items, to_uint8(result.images), strict=True)):
                outcome = outcomes[row]
                key = self.ctx.write(item, f"layer-{layer}.png", pictures.encode_png(picture), "image/png")
                outcome.outputs[f"layer:{layer}"] = key
                outcome.data["errors"][layer] = round(float(errors[row]), 6)
                outcome.data["curves"][layer] = [[step, round(-values[row], 6)] for step, values in result.history]
                strips[row].append(pictures.caption(picture, f"{layer} {errors[row]:.3f}"))
        for item, outcome, strip in zip(items, outcomes, strips, strict=True):
            sheet = pictures.grid(strip, columns=len(strip))
            outcome.outputs["strip"] = self.ctx.write(item, "strip.png", pictures.encode_png(sheet), "image/png")
        return outcomes

    def _generator(self, item: Item) -> torch.Generator:
        return torch.Generator().manual_seed(self.spec.seed * 1_000_003 + item.index)


def caption(item: dict[str, Any]) -> list[str]:
    errors = item.get("errors") or {}
    return ["feature error " + ", ".join(f"{layer} {value:.3f}" for layer, value in errors.items())] if errors else []


PLUGIN = MapPlugin(pipeline=InversionPipeline, report=ReportHooks(preview=("strip",), caption=caption))
