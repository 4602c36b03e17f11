"""The ``glimpse`` kind: a trained glimpse network (``{"job": ID}``) over any input. Per image: the class, its
probability (averaged over ``samples`` Monte-Carlo episodes), the locations the first episode visited,
and its trajectory figure. Each image draws its first location and its policy noise from its own
generator, seeded by the job's seed and the image's name, so its result never depends on the images
batched with it."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch

from shared.errors import InvalidInput
from shared.specs.glimpse import GlimpseSpec
from worker.nets.glimpse import RecurrentAttention
from worker.pictures import images as pictures
from worker.pipelines.autoencoder_apply import item_label
from worker.pipelines.autoencoder_data import prepare_image
from worker.pipelines.base import Item, MapPipeline, Outcome, PipelineContext, TrainedModel
from worker.pipelines.glimpse_figures import retina_views, trajectory_figures
from worker.pipelines.glimpse_loop import predict
from worker.pipelines.glimpse_report import ApplySummary, apply_caption, apply_sections
from worker.pipelines.plugin import MapPlugin, ReportHooks

_STREAM = 15_485_863


class GlimpseApply(MapPipeline):
    spec: GlimpseSpec

    def __init__(self, spec: GlimpseSpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size
        self._trained: TrainedModel | None = None

    def _model(self) -> tuple[RecurrentAttention, dict[str, Any]]:
        if self._trained is None:
            self._trained = self.ctx.trained(self.spec.model.job, "glimpse_network")
        module = self._trained.module
        if not isinstance(module, RecurrentAttention):
            raise InvalidInput(f"job {self.spec.model.job} did not leave a glimpse network")
        return module, self._trained.config

    def check(self) -> None:
        """Loads the model: a wrong or unfinished job fails the job at once."""
        self._model()

    def _generator(self, item: Item) -> torch.Generator:
        seed = (self.spec.seed * _STREAM + zlib.crc32(item.name.encode())) % 2**62
        return torch.Generator().manual_seed(seed)

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        model, config = self._model()
        network = model.config
        pixels = np.stack([prepare_image(item.image, network.image_size, network.channels) for item in items])
        images = torch.from_numpy(pixels).float().div_(255.0).to(self.ctx.device)
        probabilities, locations = predict(model, images, self.spec.samples, [self._generator(i) for i in items])
        probabilities, locations = probabilities.float().cpu(), locations.float().cpu()
        classes = list(config["classes"])
        best = probabilities.argmax(dim=1)
        figures: list[np.ndarray] = []
        seen = retina_views(model, images, locations)[0] if self.spec.raw_glimpses else None
        if self.spec.figure:
            titles = [f"{classes[int(b)]} ({float(probabilities[i, b]):.0%})" for i, b in enumerate(best)]
            figures = trajectory_figures(model, images, locations, titles, self.spec.panel_size)
        outcomes = []
        for row, item in enumerate(items):
            outcome = Outcome()
            if figures:
                png = pictures.encode_png(figures[row])
                outcome.outputs["trajectory"] = self.ctx.write(item, "trajectory.png", png, "image/png")
            if seen is not None:
                raw = pictures.encode_npy(seen[row].astype(np.float16))
                outcome.outputs["glimpses"] = self.ctx.write(item, "glimpses.npy", raw, "application/x-npy")
            top = probabilities[row].topk(min(3, len(classes)))
            outcome.data = {
                "class": classes[int(best[row])],
                "probability": round(float(probabilities[row, best[row]]), 5),
                "top": [
                    {"class": classes[int(i)], "probability": round(float(p), 5)}
                    for p, i in zip(top.values, top.indices, strict=True)
                ],
                "locations": [[round(float(v), 4) for v in point] for point in locations[row]],
                "samples": self.spec.samples,
                "label": item_label(item),
            }
            outcome.arrays = {"probabilities": probabilities[row].numpy(), "locations": locations[row].numpy()}
            outcomes.append(outcome)
        return outcomes


PLUGIN = MapPlugin(
    pipeline=GlimpseApply,
    report=ReportHooks(
        preview=("trajectory",),
        preview_width=480,
        caption=apply_caption,
        summary=ApplySummary,
        sections=apply_sections,
    ),
)
