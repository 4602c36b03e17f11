"""The ``saliency`` job kind: per image a heatmap PNG, an overlay JPEG, optionally the raw map,
and for model-based methods the top-k predictions with class names."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from shared.specs import SaliencySpec
from worker.nets.zoo import preprocess
from worker.pipelines.base import Item, MapPipeline, Outcome, PipelineContext
from worker.render import images as render
from worker.saliency import objects
from worker.saliency.model_maps import MapOptions, model_maps
from worker.saliency.spectral import spectral_residual
from worker.saliency.spectral_torch import spectral_residual_batch


class SaliencyPipeline(MapPipeline):
    spec: SaliencySpec

    def __init__(self, spec: SaliencySpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size or (64 if spec.method == "spectral_residual" else 16)
        self.options = MapOptions(
            method=spec.method,
            smoothgrad_samples=spec.smoothgrad_samples,
            smoothgrad_noise=spec.smoothgrad_noise,
            ig_steps=spec.ig_steps,
            ig_baseline=spec.ig_baseline,
            grad_cam_layer=spec.grad_cam_layer,
            internal_batch_size=spec.internal_batch_size,
        )

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        if self.spec.method == "spectral_residual":
            return self._spectral(items)
        return self._model_based(items)

    def _spectral(self, items: list[Item]) -> list[Outcome]:
        if self.spec.implementation == "opencv":
            maps = [spectral_residual(item.image) for item in items]
        else:
            tensors = [torch.from_numpy(item.image).permute(2, 0, 1) for item in items]
            maps = [m.cpu().numpy() for m in spectral_residual_batch(tensors, self.ctx.device)]
        outcomes = []
        for item, saliency in zip(items, maps, strict=True):
            outcome = self._emit(item, saliency, {})
            self._objects(item, saliency, outcome)
            outcomes.append(outcome)
        return outcomes

    def _objects(self, item: Item, saliency: np.ndarray, outcome: Outcome) -> None:
        """Hou & Zhang's object map S(x) > delta, its boxes drawn on the image, and OpenCV's binary map."""
        mask = objects.object_map(saliency, self.spec.object_threshold)
        found = objects.boxes(saliency, mask, self.spec.min_box_area)
        outcome.data["boxes"] = [box.as_list() for box in found]
        mask_png = render.encode_png(np.repeat((mask * 255).astype(np.uint8)[:, :, None], 3, axis=2))
        outcome.outputs["objects"] = self.ctx.write(item, "objects.png", mask_png, "image/png")
        drawn = render.encode_jpeg(objects.draw_boxes(item.image, found))
        outcome.outputs["boxes"] = self.ctx.write(item, "boxes.jpg", drawn, "image/jpeg")
        if self.spec.binary_map:
            binary = objects.opencv_binary_map(saliency)
            data = render.encode_png(np.repeat(binary[:, :, None], 3, axis=2))
            outcome.outputs["binary_map"] = self.ctx.write(item, "binary_map.png", data, "image/png")

    def _model_based(self, items: list[Item]) -> list[Outcome]:
        if self.spec.model is None:
            raise ValueError(f"method '{self.spec.method}' needs a model")
        loaded = self.ctx.model(self.spec.model)
        ref = loaded.ref
        tensors = [torch.from_numpy(item.image).permute(2, 0, 1) for item in items]
        inputs = preprocess(tensors, ref.input_size, ref.preprocessing, self.ctx.device)
        black = preprocess(
            [torch.zeros(3, 1, 1, dtype=torch.uint8)], ref.input_size, ref.preprocessing, self.ctx.device
        )
        target = None if self.spec.target == "predicted" else int(self.spec.target)
        result = model_maps(loaded.module, inputs, target, self.options, black)
        self.options = replace(self.options, internal_batch_size=result.batch_size)  # keep what fitted
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
