"""The ``saliency`` job kind: per image a heatmap PNG, an overlay JPEG, optionally the raw map,
and for model-based methods the top-k predictions with class names."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from shared.specs import SaliencySpec
from worker.nets.zoo import preprocess
from worker.pipelines.base import Item, MapPipeline, Outcome, PipelineContext
from worker.render import images as render
from worker.saliency.gradient import gradient_saliency
from worker.saliency.spectral import spectral_residual


class SaliencyPipeline(MapPipeline):
    spec: SaliencySpec

    def __init__(self, spec: SaliencySpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size or (16 if spec.method == "gradient" else 64)

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        if self.spec.method == "spectral_residual":
            return [self._emit(item, spectral_residual(item.image), {}) for item in items]
        return self._gradient(items)

    def _gradient(self, items: list[Item]) -> list[Outcome]:
        if self.spec.model is None:
            raise ValueError("method 'gradient' needs a model")
        loaded = self.ctx.model(self.spec.model)
        ref = loaded.ref
        tensors = [torch.from_numpy(item.image).permute(2, 0, 1) for item in items]
        inputs = preprocess(tensors, ref.input_size, ref.preprocessing, self.ctx.device)
        target = None if self.spec.target == "predicted" else int(self.spec.target)
        result = gradient_saliency(loaded.module, inputs, target)
        probs = result.logits.softmax(dim=1)
        k = min(self.spec.top_k, probs.shape[1])
        top_p, top_i = probs.topk(k, dim=1)
        maps = result.maps.cpu().numpy()
        outcomes = []
        for row, item in enumerate(items):
            predictions = [
                {
                    "class": int(c),
                    "label": _label(loaded.class_names, int(c)),
                    "probability": round(float(p), 6),
                    "logit": round(float(result.logits[row, int(c)]), 4),
                }
                for p, c in zip(top_p[row].tolist(), top_i[row].tolist(), strict=True)
            ]
            target_class = int(result.targets[row])
            data = {
                "predictions": predictions,
                "target": {"class": target_class, "label": _label(loaded.class_names, target_class)},
            }
            outcomes.append(self._emit(item, maps[row], data))
        return outcomes

    def _emit(self, item: Item, saliency: np.ndarray, data: dict[str, Any]) -> Outcome:
        height, width = item.image.shape[:2]
        out_w, out_h = render.fit_within(width, height, self.spec.max_output_side)
        full = render.normalise(render.resize_map(saliency, out_w, out_h), self.spec.clip_percentile)
        picture = render.resize_map(item.image, out_w, out_h) if (out_w, out_h) != (width, height) else item.image
        heat = render.colorize(full, self.spec.colormap)
        outputs = {
            "heatmap": self.ctx.write(item, "heatmap.png", render.encode_png(heat), "image/png"),
            "overlay": self.ctx.write(
                item,
                "overlay.jpg",
                render.encode_jpeg(render.overlay(picture, heat, self.spec.overlay_alpha, full)),
                "image/jpeg",
            ),
        }
        if self.spec.raw_map:
            raw = render.normalise(saliency).astype(np.float16)
            outputs["raw_map"] = self.ctx.write(item, "map.npy", render.encode_npy(raw), "application/octet-stream")
        return Outcome(outputs=outputs, data={**data, "width": width, "height": height, "method": self.spec.method})


def _label(names: list[str] | None, index: int) -> str:
    return names[index] if names is not None and 0 <= index < len(names) else str(index)
