"""The ``autoencoder_apply`` kind: a trained autoencoder (``{"job": ID}``) over any archive. Per image: its
code (``Outcome.arrays["code"]``, assembled into the job's ``arrays/code.npy`` whose row i is item i), its
place on the 2-D map (the projection fitted at training time, so it never depends on batch neighbours),
its reconstruction error (the model's own loss, per pixel) and its reconstruction (for a denoising model,
the denoised image). The job's summary ranks images by error and draws the archive's map
(``autoencoder_apply_summary``)."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shared.errors import InvalidInput, ItemError
from shared.specs.autoencoder import AutoencoderApplySpec
from worker.inputs.attributes import AttributeSidecars
from worker.nets.autoencoders import Autoencoder
from worker.pictures import images as pictures
from worker.pipelines.autoencoder_analysis import Projection
from worker.pipelines.autoencoder_apply_summary import ApplySummary, apply_sections
from worker.pipelines.autoencoder_data import prepare_image
from worker.pipelines.autoencoder_loop import add_noise
from worker.pipelines.autoencoder_pictures import to_pixels
from worker.pipelines.base import Item, MapPipeline, Outcome, PipelineContext, TrainedModel
from worker.pipelines.plugin import MapPlugin, ReportHooks

_NOISE_STREAM = 104_729


def item_label(item: Item) -> str | None:
    """An image's class where the input says it: its ground truth, else its ImageFolder folder."""
    if item.truth and item.truth.get("label") is not None:
        return str(item.truth["label"])
    return item.name.split("/")[0] if "/" in item.name else None


class AutoencoderApply(MapPipeline):
    spec: AutoencoderApplySpec

    def __init__(self, spec: AutoencoderApplySpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size
        self._trained: TrainedModel | None = None

    def _model(self) -> tuple[Autoencoder, dict[str, Any]]:
        if self._trained is None:
            self._trained = self.ctx.trained(self.spec.model.job, "autoencoder")
        module = self._trained.module
        if not isinstance(module, Autoencoder):
            raise InvalidInput(f"job {self.spec.model.job} did not leave an autoencoder")
        return module, self._trained.config

    def check(self) -> None:
        """Loads the model (a wrong or unfinished job fails the job at once) and checks the options."""
        _module, config = self._model()
        if self.spec.add_noise and not config.get("denoising"):
            raise InvalidInput(f"add_noise needs a denoising model; job {self.spec.model.job} trained a plain one")

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        module, config = self._model()
        size, channels = int(config["input_size"]), int(config["channels"])
        device = self.ctx.device
        clean = torch.from_numpy(np.stack([prepare_image(i.image, size, channels) for i in items]))
        clean = clean.float().div_(255.0)
        inputs = clean
        if self.spec.add_noise:  # each image's own noise, seeded by its name: no neighbour changes it
            inputs = torch.stack(
                [
                    add_noise(image, float(config["noise_factor"]), self._noise(item))
                    for image, item in zip(clean, items, strict=True)
                ]
            )
        attributes = self._attributes(items, config)
        with torch.no_grad():
            code, logits, attribute_out = module(
                inputs.to(device), attributes.to(device) if attributes is not None else None
            )
            target = clean.to(device)
            if config["loss"] == "bce":
                errors = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(1, 2, 3))
            else:
                errors = (module.activate(logits) - target).pow(2).mean(dim=(1, 2, 3))
            output = module.activate(logits).cpu()
        errors, codes = errors.float().cpu(), code.float().cpu().numpy()  # one transfer per batch
        attribute_out = attribute_out.float().cpu() if attribute_out is not None else None
        points = Projection.from_config(config["projection"])(codes)
        denoising = bool(config.get("denoising"))
        outcomes = []
        for row, item in enumerate(items):
            outcome = Outcome()
            if self.spec.write_inputs:
                outcome.outputs["input"] = self._png(item, "input.png", clean[row])
            if self.spec.add_noise:
                outcome.outputs["noisy"] = self._png(item, "noisy.png", inputs[row])
            name = "denoised" if denoising else "reconstruction"
            outcome.outputs[name] = self._png(item, f"{name}.png", output[row])
            error = float(errors[row])
            outcome.data = {
                "reconstruction_error": round(error, 6),
                "loss": config["loss"],
                "map_2d": [round(float(v), 5) for v in points[row]],
                "label": item_label(item),
            }
            if attribute_out is not None:
                outcome.data["attributes"] = self._decoded_attributes(attribute_out[row], config)
            outcome.arrays = {
                "code": codes[row],
                "map_2d": points[row],
                "reconstruction_error": np.asarray(error, dtype=np.float32),
            }
            outcomes.append(outcome)
        return outcomes

    def _noise(self, item: Item) -> torch.Generator:
        return torch.Generator().manual_seed((self.spec.seed * _NOISE_STREAM + zlib.crc32(item.name.encode())) % 2**62)

    def _png(self, item: Item, output: str, image: torch.Tensor) -> str:
        return self.ctx.write(item, output, pictures.encode_png(to_pixels(image[None])[0]), "image/png")

    def _attributes(self, items: list[Item], config: dict[str, Any]) -> torch.Tensor | None:
        """A multimodal model's attribute vectors, as it was trained on them; one image without a usable
        vector raises (the batch is then retried item by item, so only that image fails)."""
        info = config.get("attributes")
        if not info:
            return None
        rows = []
        for item in items:
            if info["source"] == "class":
                label = item_label(item)
                if label is None:
                    raise ItemError("a multimodal model needs each image's class: put the image in a class folder")
                if label not in info["classes"]:
                    raise ItemError(f"class {label!r} is not one the model was trained on")
                rows.append(np.eye(len(info["classes"]), dtype=np.float32)[info["classes"].index(label)])
                continue
            truth = item.truth or {}
            if "attributes_error" in truth:
                raise ItemError(str(truth["attributes_error"]))
            values = truth.get("attributes")
            if values is None:
                raise ItemError("no attributes for this image: put NAME.json beside it or an attributes.json entry")
            if len(values) != int(info["size"]):
                raise ItemError(f"{len(values)} attributes, but the model was trained on {info['size']}")
            mean, std = np.asarray(info["mean"], np.float32), np.asarray(info["std"], np.float32)
            rows.append((np.asarray(values, dtype=np.float32) - mean) / std)
        return torch.from_numpy(np.stack(rows))

    @staticmethod
    def _decoded_attributes(out: torch.Tensor, config: dict[str, Any]) -> dict[str, Any]:
        """What the joint code says of the attributes: the class and its probability, or the numbers."""
        info = config["attributes"]
        if info["source"] == "class":
            probabilities = out.softmax(dim=0)
            best = int(probabilities.argmax())
            return {"class": info["classes"][best], "probability": round(float(probabilities[best]), 4)}
        values = out.numpy() * np.asarray(info["std"], np.float32) + np.asarray(info["mean"], np.float32)
        return {"values": [round(float(v), 5) for v in values]}


def caption(item: dict[str, Any]) -> list[str]:
    lines = []
    if item.get("reconstruction_error") is not None:
        lines.append(f"error {item['reconstruction_error']:.4f} ({item.get('loss', '')})")
    if item.get("label") is not None:
        lines.append(f"label {item['label']}")
    decoded = item.get("attributes") or {}
    if "class" in decoded:
        lines.append(f"decoded class {decoded['class']} ({decoded['probability']:.0%})")
    return lines


PLUGIN = MapPlugin(
    pipeline=AutoencoderApply,
    report=ReportHooks(
        preview=("reconstruction", "denoised"),
        beside=lambda name: name in ("input", "noisy"),
        caption=caption,
        summary=ApplySummary,
        sections=apply_sections,
    ),
    sidecars=lambda _spec: AttributeSidecars(strict=False),
)
