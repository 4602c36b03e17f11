"""The ``autoencoder_train`` kind: every autoencoder of the Keras blog and the course (dense, deep, conv,
linear, tied, sparse, denoising, multimodal) trained on MNIST or any image archive, as the bounded,
checkpointed steps of the training contract. The loop is ``autoencoder_loop.Trainer``, the data
``autoencoder_data``, the measurements ``autoencoder_analysis``; this module puts them in the contract
and writes what a person looks at (``autoencoder_report``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from shared.specs.autoencoder import AutoencoderTrainSpec
from worker.nets.autoencoders import Autoencoder, DenseAutoencoder, build_autoencoder, weight_count
from worker.pipelines import autoencoder_report as report
from worker.pipelines.autoencoder_analysis import (
    Projection,
    codes_of,
    fit_projection,
    pixel_mean,
    principal_angles,
)
from worker.pipelines.autoencoder_data import DATA_FIELDS, AutoencoderData, load_data
from worker.pipelines.autoencoder_loop import LoopData, LossSettings, Trainer
from worker.pipelines.plugin import ReportHooks, TrainingPlugin
from worker.pipelines.training_base import TrainingContext, TrainingPipeline

PROJECTION_ROWS = 50_000  # training codes the 2-D projection and the sampling Gaussian are fitted on


class AutoencoderTraining(TrainingPipeline):
    spec: AutoencoderTrainSpec

    def __init__(self, spec: AutoencoderTrainSpec, ctx: TrainingContext) -> None:
        super().__init__(spec, ctx)
        self.data: AutoencoderData | None = None
        self.loop_data: LoopData | None = None
        self.trainer: Trainer | None = None
        self.projection: Projection | None = None
        self.train_codes: torch.Tensor | None = None

    def load_data(self) -> None:
        spec, device = self.spec, self.ctx.device
        key = "autoencoder:" + spec.model_dump_json(include=DATA_FIELDS)
        self.data = data = self.ctx.cached(key, lambda: load_data(spec, self.ctx))
        train_a, test_a = self._attributes(data, "train"), self._attributes(data, "test")
        class_targets = spec.attributes == "class"
        self.loop_data = LoopData(
            train_x=torch.from_numpy(data.train.images).to(device),
            test_x=torch.from_numpy(data.test.images).to(device),
            train_a=train_a,
            test_a=test_a,
            train_y=_labels(data, "train", device) if class_targets else None,
            test_y=_labels(data, "test", device) if class_targets else None,
        )

    def _attributes(self, data: AutoencoderData, split: str) -> torch.Tensor | None:
        """What the attribute encoder takes: a class one-hot, or the numbers standardised by the
        training set's mean and std (stored with the model, so an apply job scales them the same)."""
        values = getattr(data, split).attributes
        if values is None:
            return None
        info = data.attribute_info
        if info.get("source") == "sidecar":
            values = (values - np.asarray(info["mean"], dtype=np.float32)) / np.asarray(info["std"], dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).to(self.ctx.device)

    def network_config(self) -> dict[str, Any]:
        spec, data = self.spec, self._data
        return {
            "architecture": spec.architecture,
            "channels": spec.channels,
            "input_size": spec.input_size,
            "code_size": spec.resolved_code_size,
            "code_activation": spec.resolved_code_activation,
            "hidden": spec.resolved_hidden,
            "conv_channels": list(spec.conv_channels),
            "attribute_size": int(data.attribute_info.get("size", 0)),
        }

    def build(self, *, resuming: bool) -> None:
        """Seeded initialisation, without touching the process's global generator."""
        spec = self.spec
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model = build_autoencoder(self.network_config())
        if spec.architecture == "linear" and isinstance(model, DenseAutoencoder) and not resuming:
            model.start_centred(pixel_mean(self._loop_data.train_x).cpu())
        attribute_loss = None
        if spec.attributes is not None:
            attribute_loss = "class" if spec.attributes == "class" else "numbers"
        losses = LossSettings(
            loss=spec.resolved_loss,
            l1_weight=spec.resolved_l1_weight,
            noise_factor=spec.noise_factor if spec.denoising else None,
            attribute_loss=attribute_loss,
            attribute_weight=spec.attribute_weight,
        )
        self.trainer = Trainer(
            model.to(self.ctx.device),
            self._loop_data,
            losses,
            epochs=spec.epochs,
            batch_size=spec.resolved_batch_size,
            learning_rate=spec.learning_rate,
            seed=spec.seed,
            schedule=spec.resolved_schedule,
        )

    @property
    def _data(self) -> AutoencoderData:
        if self.data is None:
            raise RuntimeError("load_data() first")
        return self.data

    @property
    def _loop_data(self) -> LoopData:
        if self.loop_data is None:
            raise RuntimeError("load_data() first")
        return self.loop_data

    @property
    def _trainer(self) -> Trainer:
        if self.trainer is None:
            raise RuntimeError("build() first")
        return self.trainer

    @property
    def model(self) -> Autoencoder:
        return self._trainer.model

    def train_for(self, seconds: float, should_stop: Callable[[], bool]) -> None:
        self._trainer.train_for(seconds, should_stop)

    @property
    def progress(self) -> tuple[int, int]:
        return self._trainer.epoch, self.spec.epochs

    @property
    def history(self) -> list[dict[str, float]]:
        return self._trainer.history

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return self._trainer.state()

    def restore(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        self._trainer.load_state(tensors, metadata)

    def evaluate(self) -> dict[str, Any]:
        spec, data, trainer, model = self.spec, self._data, self._trainer, self.model
        model.eval()
        loop = trainer.data
        self.train_codes = codes_of(model, loop.train_x[:PROJECTION_ROWS], _head(loop.train_a, PROJECTION_ROWS))
        self.projection = fit_projection(self.train_codes)
        test = trainer.evaluate()
        figures: dict[str, Any] = {
            "architecture": spec.architecture,
            "denoising": spec.denoising,
            "loss": spec.resolved_loss,
            "epochs": trainer.epoch,
            "train_items": len(loop.train_x),
            "test_items": len(loop.test_x),
            "skipped_items": data.skipped,
            "skipped_examples": data.skipped_examples[:5],
            "code_size": int(model.code_size),
            "parameters": sum(p.numel() for p in model.parameters()),
            "weights": weight_count(model),
            "train_loss": round(trainer.history[-1]["train_loss"], 5) if trainer.history else None,
            "test_loss": round(test.loss, 5),
            "test_mean_abs_code": round(test.mean_abs_code, 4),
            "map": {"method": self.projection.method, "explained_variance": self.projection.explained},
        }
        if spec.denoising:
            figures["noisy_input_loss"] = round(self._noisy_input_loss(), 5)
        if test.attribute_loss is not None:
            figures["test_attribute_loss"] = round(test.attribute_loss, 5)
        if spec.attributes == "class":
            figures["test_attribute_accuracy"] = round(self._class_accuracy(), 4)
        if spec.architecture == "linear" and isinstance(model, DenseAutoencoder):
            # The decoder's columns (the course's V), not the encoder's rows: a pixel that never varies
            # (MNIST's border) gives its encoder weights no gradient, so W keeps its random part there.
            figures["principal_angles"] = principal_angles(model.decoder_weight(), loop.train_x)
        return figures

    @torch.no_grad()
    def _noisy_input_loss(self) -> float:
        """The noisy test images' own loss against the clean ones: what denoising must beat."""
        trainer, total, count = self._trainer, 0.0, 0
        for _start, noisy, clean, _attributes in trainer.test_chunks():
            if self.spec.resolved_loss == "bce":
                value = torch.nn.functional.binary_cross_entropy(noisy.clamp(1e-7, 1 - 1e-7), clean)
            else:
                value = torch.nn.functional.mse_loss(noisy, clean)
            total, count = total + float(value) * len(noisy), count + len(noisy)
        return total / max(count, 1)

    @torch.no_grad()
    def _class_accuracy(self) -> float:
        """How often the class decoded from the joint code is the image's class."""
        trainer, right, count = self._trainer, 0, 0
        for start, inputs, _clean, attributes in trainer.test_chunks():
            _code, _logits, out = self.model(inputs, attributes)
            labels = trainer.data.test_y
            if out is None or labels is None:
                return 0.0
            right += int((out.argmax(1) == labels[start : start + len(inputs)]).sum())
            count += len(inputs)
        return right / max(count, 1)

    def write_outputs(self, figures: dict[str, Any]) -> None:
        spec, data = self.spec, self._data
        if self.projection is None or self.train_codes is None:
            raise RuntimeError("evaluate() first")
        config = {
            **self.network_config(),
            "color": spec.color,
            "loss": spec.resolved_loss,
            "denoising": spec.denoising,
            "noise_factor": spec.noise_factor if spec.denoising else None,
            "classes": list(data.classes) if data.classes is not None else None,
            "attributes": data.attribute_info or None,
            "projection": self.projection.to_config(),
            "test_loss": figures["test_loss"],
        }
        self.ctx.save_model(self.model.state_dict(), config)
        report.write_training_pictures(self.ctx, spec, self._trainer, data, self.projection, self.train_codes, figures)


def _head(values: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    return values[:rows] if values is not None else None


def _labels(data: AutoencoderData, split: str, device: torch.device) -> torch.Tensor | None:
    labels = getattr(data, split).labels
    return torch.from_numpy(labels).to(device) if labels is not None else None


def load_model(config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> nn.Module:
    module = build_autoencoder(config)
    module.load_state_dict(tensors, strict=True)
    return module


PLUGIN = TrainingPlugin(
    pipeline=AutoencoderTraining,
    load_model=load_model,
    report=ReportHooks(sections=report.training_sections),
)
