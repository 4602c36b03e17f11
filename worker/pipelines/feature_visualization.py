"""The ``feature_visualization`` job kind: one rendered image per target (a class or a channel), the
targets of a batch optimised together. Per item: the image (PNG), the objective it reaches, and its
curve; the finaliser lays every image out on a contact sheet."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from shared.specs.base import Unit
from shared.specs.optvis import ClassTarget, FeatureVisualizationSpec
from worker.nets.zoo import denormalize
from worker.optvis import objectives
from worker.optvis import transforms as T
from worker.optvis.param import FFTImage, PixelImage, zero_input_image
from worker.optvis.render import RenderSettings, evaluate, render
from worker.pictures import images as pictures
from worker.pipelines import checks
from worker.pipelines.base import Item, LoadedModel, MapPipeline, Outcome, PipelineContext
from worker.pipelines.contact_sheet import ContactSheet
from worker.pipelines.plugin import MapPlugin, ReportHooks
from worker.pipelines.predictions import label, predictions

PRESETS: dict[str, dict[str, Any]] = {
    "robust": {"parameterization": "fft", "steps": 512, "learning_rate": 0.05, "size": 128, "l2": 0.0},
    "paper": {"parameterization": "pixels", "steps": 100, "learning_rate": 6.0, "size": None, "l2": 1e-3},
}


def _group_key(params: dict[str, Any]) -> tuple[Any, ...]:
    if "class" in params:
        return ("class",)
    position = params.get("position")
    return ("channel", params["layer"], tuple(position) if position else None)


class FeatureVisualizationPipeline(MapPipeline):
    spec: FeatureVisualizationSpec

    def __init__(self, spec: FeatureVisualizationSpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size
        self.preset = PRESETS[spec.preset]

    def _setting(self, name: str) -> Any:
        value = getattr(self.spec, name)
        return self.preset[name] if value is None else value

    def check(self) -> None:
        """The model loads, and every class and channel rendered exists in it."""
        loaded = self.ctx.model(self.spec.model)
        classes = [t.class_index for t in self.spec.targets if isinstance(t, ClassTarget)]
        checks.require_classes(classes, loaded.ref.num_classes, "targets")
        channels: dict[str, list[int]] = {}
        for target in self.spec.targets:
            if isinstance(target, Unit):
                channels.setdefault(target.layer, []).extend(target.channels)
        if channels:
            checks.require_channels(loaded.module, channels, loaded.ref.input_size, self.ctx.device, "targets")

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        loaded = self.ctx.model(self.spec.model)
        groups: dict[tuple[Any, ...], list[Item]] = defaultdict(list)
        for item in items:
            groups[_group_key(item.params or {})].append(item)
        outcomes: dict[int, Outcome] = {}
        for key, members in groups.items():
            outcomes.update(self._render_group(loaded, key, members))
        return [outcomes[item.index] for item in items]

    def _objective(self, key: tuple[Any, ...], members: list[Item], loaded: LoadedModel) -> objectives.Objective:
        if key[0] == "class":
            classes = [int((m.params or {})["class"]) for m in members]
            if max(classes) >= loaded.ref.num_classes:
                raise ValueError(f"class {max(classes)} is not below the model's {loaded.ref.num_classes} classes")
            return objectives.class_logit(classes)
        channels = [int((m.params or {})["channel"]) for m in members]
        _, layer, position = key
        if position is not None:
            return objectives.neuron(layer, channels, position)
        return objectives.channel(layer, channels)

    def _param(self, members: list[Item], size: int, loaded: LoadedModel) -> FFTImage | PixelImage:
        device = self.ctx.device
        if self._setting("parameterization") == "fft":
            # One generator per target, seeded by the job's seed and the item: an image does not depend
            # on which other targets share its batch.
            generators = [torch.Generator().manual_seed(self.spec.seed * 1_000_003 + m.index) for m in members]
            return FFTImage(len(members), size, size, generator=generators, device=device)
        zero = denormalize(torch.zeros(3, 1, 1), loaded.ref.preprocessing) / 255.0
        return PixelImage(zero_input_image(len(members), size, size, zero, device))

    def _render_group(self, loaded: LoadedModel, key: tuple[Any, ...], members: list[Item]) -> dict[int, Outcome]:
        spec = self.spec
        objective = self._objective(key, members, loaded)
        size = int(self._setting("size") or loaded.ref.input_size)
        robust = spec.preset == "robust"
        use_transforms = robust if spec.transforms is None else spec.transforms
        transform = (T.standard() if robust else T.jitter(16)) if use_transforms else None
        settings = RenderSettings(
            steps=int(self._setting("steps")),
            learning_rate=float(self._setting("learning_rate")),
            optimizer="adam" if robust else "ascent",
            l2=float(self._setting("l2")),
            tv=spec.tv,
            alpha=spec.alpha,
            blur_every=0 if robust else 10,
            clamp=not robust,
            min_size=loaded.ref.input_size if robust else 0,
            precision=spec.precision,
            record_every=max(1, int(self._setting("steps")) // 16),
        )
        # One generator per target for its transforms (another than its start's): an image does not
        # depend on which targets share its batch.
        generators = [torch.Generator().manual_seed(spec.seed * 1_000_003 + m.index + 500_000_000) for m in members]
        param = self._param(members, size, loaded)
        result = render(
            loaded.module,
            objective,
            param,
            settings,
            preprocessing=loaded.ref.preprocessing,
            generators=generators,
            transform=transform,
        )
        final = evaluate(loaded.module, objective, result.images, loaded.ref.preprocessing, settings.min_size)
        outcomes = {}
        for row, item in enumerate(members):
            picture = (result.images[row].permute(1, 2, 0).cpu().numpy() * 255.0).round().astype(np.uint8)
            outcome = Outcome()
            outcome.outputs["image"] = self.ctx.write(item, "image.png", pictures.encode_png(picture), "image/png")
            outcome.data["target"] = self._describe(item.params or {}, loaded)
            outcome.data["objective"] = round(float(final.scores[row]), 6)
            outcome.data["curve"] = [[step, values[row]] for step, values in result.history]
            outcome.data["predictions"] = predictions(loaded, final.logits[row], 3)
            outcomes[item.index] = outcome
        return outcomes

    def _describe(self, params: dict[str, Any], loaded: LoadedModel) -> dict[str, Any]:
        if "class" in params:
            return {"class": params["class"], "label": label(loaded.class_names, int(params["class"]))}
        return dict(params)


def caption(item: dict[str, Any]) -> list[str]:
    lines = []
    target = item.get("target")
    if target and "class" not in target:  # a rendered channel or neuron
        where = f" at {target['position']}" if target.get("position") else ""
        lines.append(f"{target.get('layer')}:{target.get('channel')}{where}")
    elif target:
        prob = next((p["probability"] for p in item.get("predictions", []) if p["class"] == target["class"]), None)
        lines.append(f"{target['label']}" + (f" ({prob:.0%})" if prob is not None else ""))
    if "objective" in item:
        lines.append(f"objective {item['objective']:.4g}")
    return lines


PLUGIN = MapPlugin(
    pipeline=FeatureVisualizationPipeline,
    report=ReportHooks(preview=("image",), caption=caption, summary=ContactSheet),
)
