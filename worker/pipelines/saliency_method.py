"""One saliency method over a batch of images (the ``saliency`` kind runs one, or several side by side).
Per image: heatmap PNG and overlay JPEG for each explained target,
optionally the raw and signed maps; the top-k predictions with class names; for a hidden unit its
activation, position and receptive field (a crop of the image beside the crop of its gradient); for
spectral residual the object map and its boxes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from shared.errors import InvalidInput
from shared.specs.base import Unit
from shared.specs.saliency import SaliencySpec, TopClasses
from worker.nets.framing import Framing
from worker.nets.zoo import preprocess
from worker.pictures import images as render
from worker.pipelines import checks
from worker.pipelines.base import Item, LoadedModel, MapPipeline, Outcome, PipelineContext
from worker.pipelines.predictions import label, predictions
from worker.pipelines.saliency_pictures import field_in_image, frame_of, on_image, receptive_field_picture
from worker.saliency import attribution, objects, quality
from worker.saliency.model_maps import MapOptions, model_maps
from worker.saliency.spectral import spectral_residual
from worker.saliency.spectral_torch import spectral_residual_batch
from worker.saliency.units import unit_saliency


class SaliencyPipeline(MapPipeline):
    spec: SaliencySpec

    def __init__(self, spec: SaliencySpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size or (64 if spec.method == "spectral_residual" else 16)
        self._sums: dict[str, np.ndarray] | None = None
        self.options = MapOptions(
            method=spec.method,
            smoothgrad_samples=spec.smoothgrad_samples,
            smoothgrad_noise=spec.smoothgrad_noise,
            ig_steps=spec.ig_steps,
            ig_baseline=spec.ig_baseline,
            grad_cam_layer=spec.grad_cam_layer,
            internal_batch_size=spec.internal_batch_size,
            precision=spec.precision,
        )

    def check(self) -> None:
        """The model loads, and the layer, channel or class the job explains exists in it."""
        spec = self.spec
        if spec.method == "spectral_residual" or spec.model is None:
            return
        loaded = self.ctx.model(spec.model)  # missing or unfitting weights, an unfinished job: InvalidInput
        module, size = loaded.module, loaded.ref.input_size
        if spec.method == "grad_cam" and spec.grad_cam_layer:
            checks.require_layers(module, [spec.grad_cam_layer], "grad_cam_layer")
        target = spec.target
        if isinstance(target, Unit):
            checks.require_channels(module, {target.layer: target.channels}, size, self.ctx.device, "target")
            grid = checks.layer_shapes(module, [target.layer], size, self.ctx.device)[target.layer][1:]
            if target.position is not None and (
                len(grid) != 2 or not all(p < g for p, g in zip(target.position, grid, strict=False))
            ):
                raise InvalidInput(
                    f"target.position: {list(target.position)} is outside layer {target.layer!r}'s grid {grid}"
                )
        elif isinstance(target, int) and not isinstance(target, bool):
            checks.require_classes([target], loaded.ref.num_classes, "target")
        elif isinstance(target, TopClasses) and target.top_k > loaded.ref.num_classes:
            raise InvalidInput(f"target.top_k: the model has only {loaded.ref.num_classes} classes")

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        self._sums = None
        if self.spec.method == "spectral_residual":
            return self._spectral(items)
        return self._model_based(items)

    def take_batch_sums(self) -> dict[str, np.ndarray] | None:
        """Model-based class maps at the model's input size: the job's mean map per pixel (for the
        gradient, the archive's mean |d score / d pixel|: where the model looks across the data)."""
        sums, self._sums = self._sums, None
        return sums

    # --- spectral residual -------------------------------------------------------------------

    def _spectral(self, items: list[Item]) -> list[Outcome]:
        if self.spec.implementation == "opencv":
            maps = [spectral_residual(item.image) for item in items]
        else:
            tensors = [torch.from_numpy(item.image).permute(2, 0, 1) for item in items]
            maps = [m.cpu().numpy() for m in spectral_residual_batch(tensors, self.ctx.device)]
        outcomes = []
        for item, saliency in zip(items, maps, strict=True):
            outcome = self._outcome(item)
            self._add_maps(outcome, item, saliency)
            self._objects(item, saliency, outcome)
            if item.truth is not None and "box" in item.truth:
                x0, y0, x1, y1 = item.truth["box"]
                height, width = item.image.shape[:2]
                outcome.data["quality"] = {
                    "pointing_hit": quality.pointing_hit(torch.from_numpy(saliency), (x0, y0, x1, y1)),
                    "box_fraction": round(quality.box_fraction((x0, y0, x1, y1), height, width), 6),
                }
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

    # --- model-based methods -----------------------------------------------------------------

    def _model_based(self, items: list[Item]) -> list[Outcome]:
        if self.spec.model is None:
            raise ValueError(f"method '{self.spec.method}' needs a model")
        loaded = self.ctx.model(self.spec.model)
        size, mode = loaded.ref.input_size, loaded.ref.preprocessing
        tensors = [torch.from_numpy(item.image).permute(2, 0, 1) for item in items]
        inputs = preprocess(tensors, size, mode, self.ctx.device, loaded.ref.resize)
        if isinstance(self.spec.target, Unit):
            return self._units(items, loaded, inputs, self.spec.target)
        black = preprocess([torch.zeros(3, 1, 1, dtype=torch.uint8)], size, mode, self.ctx.device)  # all black
        targets: list[int | torch.Tensor | None]
        if isinstance(self.spec.target, TopClasses):
            with torch.no_grad():
                ranked = loaded.module(inputs).topk(self.spec.target.top_k, dim=1).indices
            targets = [ranked[:, rank] for rank in range(self.spec.target.top_k)]
        else:
            targets = [None if self.spec.target == "predicted" else int(self.spec.target)]
        results = []
        for target in targets:
            seeds = [self.spec.seed * 1_000_003 + item.index for item in items]  # each image's own noise
            results.append(model_maps(loaded.module, inputs, target, self.options, black, seeds))
            self.options = replace(self.options, internal_batch_size=results[-1].batch_size)  # keep what fitted
        first = results[0].maps.float()
        self._sums = {"map_sum": first.sum(dim=0).cpu().numpy(), "count": np.array(len(items))}
        outcomes = []
        for row, item in enumerate(items):
            outcome = self._outcome(item)
            frame = frame_of(item, loaded)
            outcome.data["predictions"] = predictions(loaded, results[0].logits[row], self.spec.top_k)
            if item.truth is not None and "box" in item.truth:
                outcome.data["quality"] = self._quality(
                    loaded,
                    inputs[row : row + 1],
                    black,
                    results[0].maps[row],
                    int(results[0].targets[row]),
                    item,
                    item.truth,
                    frame,
                )
            explained = []
            for rank, result in enumerate(results, start=1):
                suffix = f"_rank{rank}" if len(results) > 1 else ""
                signed = result.signed[row].cpu().numpy() if self.spec.signed and result.signed is not None else None
                self._add_maps(outcome, item, result.maps[row].cpu().numpy(), suffix, signed, frame)
                cls = int(result.targets[row])
                explained.append({"class": cls, "label": label(loaded.class_names, cls), "outputs_suffix": suffix})
            outcome.data["target"] = explained[0] if len(explained) == 1 else None
            if len(explained) > 1:
                outcome.data["targets"] = explained
            outcomes.append(outcome)
        return outcomes

    def _quality(
        self,
        loaded: LoadedModel,
        x: torch.Tensor,
        black: torch.Tensor,
        saliency: torch.Tensor,
        target: int,
        item: Item,
        truth: dict[str, Any],
        frame: Framing,
    ) -> dict[str, Any]:
        """Pointing game and deletion curves against the item's ground-truth box (model resolution)."""
        height, width = item.image.shape[:2]
        x0, y0, x1, y1 = truth["box"]
        box = frame.to_model((x0, y0, x1, y1))
        generator = torch.Generator().manual_seed(item.index)
        fill = attribution.baseline_for(x, self.spec.deletion_fill, black)
        by_map, random = quality.deletion_curves(
            loaded.module, x, saliency, target, fill, self.spec.deletion_steps, generator
        )
        return {
            "pointing_hit": quality.pointing_hit(saliency, box),
            "box_fraction": round(quality.box_fraction((x0, y0, x1, y1), height, width), 6),
            "correct": target == int(truth["class"]),
            "deletion_auc": round(quality.area_under(by_map), 6),
            "random_deletion_auc": round(quality.area_under(random), 6),
            "deletion_curve": by_map,
            "random_deletion_curve": random,
        }

    def _units(self, items: list[Item], loaded: LoadedModel, inputs: torch.Tensor, unit: Unit) -> list[Outcome]:
        channels = unit.channel if isinstance(unit.channel, list) else [unit.channel]
        results = [unit_saliency(loaded.module, inputs, unit.layer, c, unit.position) for c in channels]
        outcomes = []
        for row, item in enumerate(items):
            outcome = self._outcome(item)
            frame = frame_of(item, loaded)
            described, tiles = [], []
            for channel, result in zip(channels, results, strict=True):
                suffix = f"_ch{channel}" if len(channels) > 1 else ""
                saliency = result.maps[row].cpu().numpy()
                signed = result.signed[row].cpu().numpy() if self.spec.signed else None
                self._add_maps(outcome, item, saliency, suffix, signed, frame)
                field = field_in_image(result.support[row], item.image.shape[:2], frame)
                if field is not None:
                    laid = on_image(saliency, frame, item.image.shape[1], item.image.shape[0])
                    tile = receptive_field_picture(item.image, laid, field, self.spec.colormap)
                    tiles.append(render.caption(tile, f"{unit.layer}:{channel}  {float(result.activations[row]):.3g}"))
                    data = render.encode_jpeg(tile)
                    outcome.outputs["receptive_field" + suffix] = self.ctx.write(
                        item, f"receptive_field{suffix}.jpg", data, "image/jpeg"
                    )
                position = result.positions[row]
                described.append(
                    {
                        "layer": unit.layer,
                        "channel": channel,
                        "position": list(position) if position is not None else None,
                        "activation": round(float(result.activations[row]), 6),
                        "receptive_field": field,
                    }
                )
            if len(channels) > 1:
                outcome.data["units"] = described
                if tiles:
                    picture = render.encode_jpeg(render.grid(tiles))
                    outcome.outputs["unit_grid"] = self.ctx.write(item, "unit_grid.jpg", picture, "image/jpeg")
            else:
                outcome.data["unit"] = described[0]
            outcome.data["predictions"] = []
            outcomes.append(outcome)
        return outcomes

    # --- pictures ----------------------------------------------------------------------------

    def _outcome(self, item: Item) -> Outcome:
        height, width = item.image.shape[:2]
        return Outcome(data={"width": width, "height": height, "method": self.spec.method})

    def _add_maps(
        self,
        outcome: Outcome,
        item: Item,
        saliency: np.ndarray,
        suffix: str = "",
        signed: np.ndarray | None = None,
        frame: Framing | None = None,
    ) -> None:
        """Heatmap, overlay and the optional raw and signed maps. ``frame``: how the image sat in the model's
        input (model-based maps are on that grid); None for a map already at the image's own size."""
        height, width = item.image.shape[:2]
        out_w, out_h = render.fit_within(width, height, self.spec.max_output_side)

        def shown(values: np.ndarray) -> np.ndarray:
            return render.resize_map(values, out_w, out_h) if frame is None else on_image(values, frame, out_w, out_h)

        full = render.normalise(shown(saliency), self.spec.clip_percentile)
        picture = render.resize_map(item.image, out_w, out_h) if (out_w, out_h) != (width, height) else item.image
        heat = render.colorize(full, self.spec.colormap)
        overlay = render.overlay(picture, heat, self.spec.overlay_alpha, full)
        write = self.ctx.write
        outcome.outputs["heatmap" + suffix] = write(item, f"heatmap{suffix}.png", render.encode_png(heat), "image/png")
        outcome.outputs["overlay" + suffix] = write(
            item, f"overlay{suffix}.jpg", render.encode_jpeg(overlay), "image/jpeg"
        )
        if self.spec.raw_map:
            values = render.raw_values(saliency)  # the method's own units, not scaled
            raw = render.encode_npy(values)
            outcome.outputs["raw_map" + suffix] = write(item, f"map{suffix}.npy", raw, "application/octet-stream")
            outcome.data["raw_map"] = {
                "shape": list(values.shape),
                "grid": "image" if self.spec.method == "spectral_residual" else "model input",
                "dtype": str(values.dtype),
            }
        if signed is not None:
            diverging = render.diverging(shown(signed), self.spec.clip_percentile)
            outcome.outputs["signed" + suffix] = write(
                item, f"signed{suffix}.png", render.encode_png(diverging), "image/png"
            )
