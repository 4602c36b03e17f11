"""The ``filters`` job kind: the first layer's filters as one grid for the job, and per image the
activation maps of chosen layers, most active channel first and framed in red, with that channel's map
laid over the image (the course's "layer activations / maximum activation filter" figure)."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from shared.errors import InvalidInput
from shared.specs.optvis import FiltersSpec
from worker.nets.framing import Framing, framing
from worker.nets.zoo import preprocess
from worker.optvis.hooks import capture, find_module
from worker.pictures import images as pictures
from worker.pipelines import checks
from worker.pipelines.base import Item, MapPipeline, Outcome, PipelineContext
from worker.pipelines.plugin import MapPlugin, ReportHooks

FILTER_GRID = "first_layer_filters.png"
_RED = np.array([220, 30, 30], dtype=np.uint8)


def first_conv(model: nn.Module, name: str | None) -> tuple[str, nn.Conv2d]:
    if name is not None:
        module = find_module(model, name)
        if not isinstance(module, nn.Conv2d):
            raise ValueError(f"layer {name!r} is a {type(module).__name__}, not a convolution")
        return name, module
    for found, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return found, module
    raise ValueError("the model has no convolution")


def filter_grid(weight: torch.Tensor, cell: int = 48) -> np.ndarray:
    """(O, I, kh, kw) -> a grid, each filter scaled symmetrically about grey by its own largest weight.
    Three input channels show as colour; otherwise the mean over inputs shows in grey."""
    w = weight.detach().float().cpu()
    w = w if w.shape[1] == 3 else w.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    scale = w.flatten(1).abs().max(dim=1).values.clamp_min(1e-12).reshape(-1, 1, 1, 1)
    pixels = ((w / scale * 0.5 + 0.5) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    factor = max(1, cell // max(w.shape[-2:]))
    tiles = [np.kron(t, np.ones((factor, factor, 1), dtype=np.uint8)) for t in pixels]
    return pictures.grid(tiles, columns=math.ceil(math.sqrt(len(tiles))), gap=2)


def activation_grid(act: torch.Tensor, order: list[int], cell: int = 48) -> np.ndarray:
    """Channel maps (C, H, W) in ``order`` on one colour scale; the first (most active) framed in red."""
    shown = act[order].float()
    top = float(shown.max().clamp_min(1e-12))
    tiles = []
    for rank, channel_map in enumerate(shown):
        heat = pictures.colorize((channel_map / top).clamp(0, 1).cpu().numpy(), "viridis")
        factor = max(1, cell // max(heat.shape[:2]))
        heat = np.kron(heat, np.ones((factor, factor, 1), dtype=np.uint8))
        if rank == 0:
            heat = np.pad(heat, ((3, 3), (3, 3), (0, 0)))
            heat[:3], heat[-3:], heat[:, :3], heat[:, -3:] = _RED, _RED, _RED, _RED
        tiles.append(heat)
    return pictures.grid(tiles, columns=math.ceil(math.sqrt(len(tiles))), gap=3)


class FiltersPipeline(MapPipeline):
    spec: FiltersSpec

    def __init__(self, spec: FiltersSpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size
        self._grid_written = False

    def check(self) -> None:
        module = self.ctx.model(self.spec.model).module
        checks.require_layers(module, self.spec.layers, "layers")
        if self.spec.first_layer is not None:
            checks.require_layers(module, [self.spec.first_layer], "first_layer")
        try:
            first_conv(module, self.spec.first_layer)
        except ValueError as exc:
            raise InvalidInput(f"first_layer: {exc}") from exc

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        loaded = self.ctx.model(self.spec.model)
        if not self._grid_written:  # a job-level picture; every shard writes the same bytes to one key
            _, conv = first_conv(loaded.module, self.spec.first_layer)
            self.ctx.write_job(FILTER_GRID, pictures.encode_png(filter_grid(conv.weight)), "image/png")
            self._grid_written = True
        tensors = [torch.from_numpy(item.image).permute(2, 0, 1) for item in items]
        inputs = preprocess(
            tensors, loaded.ref.input_size, loaded.ref.preprocessing, self.ctx.device, loaded.ref.resize
        )
        with torch.no_grad(), capture(loaded.module, self.spec.layers) as activations:
            loaded.module(inputs)
            acts = {layer: activations[layer].detach().float() for layer in self.spec.layers}
        outcomes = []
        for row, item in enumerate(items):
            outcome = Outcome(data={"layers": {}})
            for layer, act in acts.items():
                if act.dim() != 4:
                    raise ValueError(f"layer {layer!r} has no spatial maps (output shape {list(act.shape)[1:]})")
                means = act[row].mean(dim=(1, 2))
                order = means.argsort(descending=True)[: self.spec.channels_shown].tolist()
                sheet = activation_grid(act[row], order)
                outcome.outputs[f"activations:{layer}"] = self.ctx.write(
                    item, f"activations-{layer}.png", pictures.encode_png(sheet), "image/png"
                )
                height, width = item.image.shape[:2]
                frame = framing(width, height, loaded.ref.input_size, loaded.ref.resize)
                outcome.outputs[f"overlay:{layer}"] = self._overlay(item, layer, act[row, order[0]], frame)
                outcome.data["layers"][layer] = {
                    "most_active": order[0],
                    "top_channels": [{"channel": c, "mean": round(float(means[c]), 6)} for c in order[:5]],
                    "grid": list(act.shape[-2:]),
                }
            outcomes.append(outcome)
        return outcomes

    def _overlay(self, item: Item, layer: str, channel_map: torch.Tensor, frame: Framing) -> str:
        """The channel's map laid over the image where the model saw it (``frame``)."""
        height, width = item.image.shape[:2]
        side = pictures.fit_within(width, height, 1024)
        image = item.image if (width, height) == side else cv2.resize(item.image, side, interpolation=cv2.INTER_AREA)
        values = pictures.normalise(channel_map.cpu().numpy())
        matrix = frame.image_to_grid(*side, values.shape[0], self.ctx.model(self.spec.model).ref.input_size)
        heat = pictures.map_to_image(values, matrix, *side)
        blended = pictures.overlay(image, pictures.colorize(heat, "inferno"), 0.7, heat)
        return self.ctx.write(item, f"overlay-{layer}.jpg", pictures.encode_jpeg(blended), "image/jpeg")


def caption(item: dict[str, Any]) -> list[str]:
    return [f"{layer}: most active channel {info['most_active']}" for layer, info in (item.get("layers") or {}).items()]


PLUGIN = MapPlugin(
    pipeline=FiltersPipeline,
    report=ReportHooks(beside=lambda name: name.startswith(("activations:", "overlay:")), caption=caption),
)
