"""The ``deepdream`` job kind: every image of an archive dreamed at its own size (scaled down first only
beyond ``max_side``), same-size images as one batch, large ones in tiles. Per item: the dream (JPEG) and
each octave's loss at its first and last step."""

from __future__ import annotations

from collections import defaultdict

import cv2
import numpy as np
import torch

from shared.errors import InvalidInput
from shared.specs.optvis import DeepDreamSpec
from worker.nets.zoo import denormalize, normalize, pixel_scale
from worker.optvis.deepdream import DreamSettings, dream
from worker.pictures import images as pictures
from worker.pipelines import checks
from worker.pipelines.base import Item, LoadedModel, MapPipeline, Outcome, PipelineContext
from worker.pipelines.plugin import MapPlugin, ReportHooks

DEFAULT_LAYERS: dict[str, dict[str, float]] = {
    "inception5h": {"mixed4c": 1.0},
    "inception_v3": {"Mixed_6b": 1.0, "Mixed_6c": 1.5, "Mixed_6d": 2.0, "Mixed_6e": 2.5},
}
"""The classic layers: the notebook's inception_4c/output; the keras recipe's mixed4..mixed7."""
KERAS_MAX_LOSS = 15.0


class DeepDreamPipeline(MapPipeline):
    spec: DeepDreamSpec

    def __init__(self, spec: DeepDreamSpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size

    def layers(self, loaded: LoadedModel) -> tuple[tuple[str, float], ...]:
        if self.spec.layers:
            return tuple(self.spec.layers.items())
        arch = loaded.ref.arch or ""
        if arch not in DEFAULT_LAYERS:
            raise ValueError(
                f"give 'layers' for a {arch or 'trained'} model (defaults exist for inception5h, inception_v3)"
            )
        return tuple(DEFAULT_LAYERS[arch].items())

    def settings(self, loaded: LoadedModel) -> DreamSettings:
        spec = self.spec
        max_loss = spec.setting("max_loss")
        if max_loss is None and spec.preset == "keras" and loaded.ref.arch == "inception_v3":
            max_loss = KERAS_MAX_LOSS  # the recipe's ceiling means something only in its own network's units
        step_pixels = float(spec.setting("step_size"))
        return DreamSettings(
            layers=self.layers(loaded),
            octaves=int(spec.setting("octaves")),
            octave_scale=float(spec.setting("octave_scale")),
            steps=int(spec.setting("steps")),
            step_size=step_pixels * pixel_scale(loaded.ref.preprocessing, self.ctx.device),
            max_loss=None if max_loss is None else float(max_loss),
            border=int(spec.setting("border")),
            roll=int(spec.setting("jitter")),
            tile_size=spec.tile_size,
            reinject_detail=spec.reinject_detail,
            precision=spec.precision,
        )

    def check(self) -> None:
        loaded = self.ctx.model(self.spec.model)
        try:
            layers = [layer for layer, _ in self.layers(loaded)]
        except ValueError as exc:
            raise InvalidInput(f"layers: {exc}") from exc
        checks.require_layers(loaded.module, layers, "layers")

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        loaded = self.ctx.model(self.spec.model)
        settings = self.settings(loaded)
        images = {item.index: self._fit(item.image) for item in items}
        by_size: dict[tuple[int, ...], list[Item]] = defaultdict(list)
        for item in items:
            by_size[images[item.index].shape].append(item)
        outcomes: dict[int, Outcome] = {}
        for members in by_size.values():
            batch = torch.stack([torch.from_numpy(images[m.index]).permute(2, 0, 1) for m in members])
            inputs = normalize(batch.to(self.ctx.device, torch.float32), loaded.ref.preprocessing)
            generators = [torch.Generator().manual_seed(self.spec.seed * 1_000_003 + m.index) for m in members]
            result = dream(loaded.module, inputs, settings, generators)
            dreamed = denormalize(result.images, loaded.ref.preprocessing).clamp(0, 255).round().byte()
            for row, item in enumerate(members):
                picture = dreamed[row].permute(1, 2, 0).cpu().numpy()
                data = pictures.encode_jpeg(np.ascontiguousarray(picture), quality=self.spec.jpeg_quality)
                outcome = Outcome()
                outcome.outputs["dream"] = self.ctx.write(item, "dream.jpg", data, "image/jpeg")
                outcome.data["size"] = [int(picture.shape[1]), int(picture.shape[0])]
                outcome.data["octaves"] = [
                    {"shape": o.shape, "loss_first": o.loss_first[row], "loss_last": o.loss_last[row]}
                    for o in result.octave_losses
                ]
                outcomes[item.index] = outcome
        return [outcomes[item.index] for item in items]

    def _fit(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        size = pictures.fit_within(width, height, self.spec.max_side)
        if size == (width, height):
            return image
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


PLUGIN = MapPlugin(pipeline=DeepDreamPipeline, report=ReportHooks(preview=("dream",)))
