"""The ``glimpse_train`` kind: a Recurrent Attention Model (Mnih et al. 2014) trained on a digit task or an
ImageFolder archive, as the bounded, checkpointed steps of the training contract. The model is
``worker.nets.glimpse``, the loop ``glimpse_loop``, the data ``glimpse_data``; this module puts them in
the contract and writes the model, the curves, example trajectories and the test error beside the
paper's."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from torch import nn

from shared.specs.glimpse import GlimpseTrainSpec
from worker.nets.glimpse import GlimpseConfig, RecurrentAttention, build_glimpse_model
from worker.pictures import images as pictures
from worker.pipelines.glimpse_data import DATA_FIELDS, GlimpseData, load_data
from worker.pipelines.glimpse_figures import trajectory_figures
from worker.pipelines.glimpse_loop import Schedule, Trainer
from worker.pipelines.glimpse_report import curves_png, paper_row, training_sections
from worker.pipelines.plugin import ReportHooks, TrainingPlugin
from worker.pipelines.training_base import EpochLoopPipeline, TrainingContext

EXAMPLES = 8  # test images drawn with their trajectories


class GlimpseTraining(EpochLoopPipeline[Trainer]):
    spec: GlimpseTrainSpec

    def __init__(self, spec: GlimpseTrainSpec, ctx: TrainingContext) -> None:
        super().__init__(spec, ctx)
        self.data: GlimpseData | None = None
        self.trainer: Trainer | None = None
        self.test_locations: torch.Tensor | None = None
        self.test_probabilities: torch.Tensor | None = None

    def load_data(self) -> None:
        spec = self.spec
        key = "glimpse:" + spec.model_dump_json(include=DATA_FIELDS)
        self.data = self.ctx.cached(key, lambda: load_data(spec, self.ctx))

    def network(self) -> GlimpseConfig:
        spec, data = self.spec, self._data
        return GlimpseConfig(
            image_size=data.image_size,
            channels=data.channels,
            classes=len(data.classes),
            glimpses=spec.glimpses,
            patch_size=spec.patch_size,
            scales=spec.scales,
            scale=spec.scale,
            glimpse_hidden=spec.glimpse_hidden,
            location_hidden=spec.location_hidden,
            hidden=spec.hidden,
            core=spec.core,
            std=spec.std,
            random_locations=spec.random_locations,
        )

    def build(self, *, resuming: bool) -> None:
        spec = self.spec
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model = RecurrentAttention(self.network())
        schedule = Schedule(
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            lr_schedule=spec.lr_schedule,
            lr_patience=spec.lr_patience,
            lr_factor=spec.lr_factor,
            patience=spec.patience,
            reinforce_weight=spec.reinforce_weight,
            samples=spec.samples,
            seed=spec.seed,
        )
        self.trainer = Trainer(model.to(self.ctx.device), self._data, schedule, self.ctx.device)

    @property
    def _data(self) -> GlimpseData:
        if self.data is None:
            raise RuntimeError("load_data() first")
        return self.data

    def evaluate(self) -> dict[str, Any]:
        spec, data, trainer = self.spec, self._data, self._trainer
        trainer.use_best()
        test = trainer.evaluate(data.test_x, data.test_y, samples=spec.samples)
        self.test_locations, self.test_probabilities = test.locations, test.probabilities
        task = data.task
        error = round(100.0 * (1.0 - test.accuracy), 3)
        paper = paper_row(
            task.name if task else None,
            task.size if task else 0,
            task.distractors if task else 0,
            spec.patch_size,
            spec.scales,
            spec.glimpses,
            spec.random_locations,
        )
        figures: dict[str, Any] = {
            "task": spec.input
            if task is None
            else f"{task.name} {task.size}x{task.size}"
            + (f", {task.distractors} distractors" if task.distractors else ""),
            "test_accuracy": round(test.accuracy, 5),
            "test_error_percent": error,
            "paper": paper,
            "samples": spec.samples,
            "epochs": trainer.epoch,
            "best_epoch": trainer.best_epoch,
            "best_validation_accuracy": round(trainer.best_accuracy, 5),
            "stopped_early": trainer.stopped,
            "settings": {
                name: getattr(spec, name)
                for name in ("glimpses", "patch_size", "scales", "scale", "core", "std", "random_locations")
            },
            "images": {"train": len(data.train_y), "validation": len(data.val_y), "test": len(data.test_y)},
            "classes": list(data.classes),
            "parameters": sum(p.numel() for p in trainer.model.parameters()),
            "skipped_items": data.skipped,
            "skipped_examples": data.skipped_examples[:5],
        }
        if data.test_boxes is not None and len(data.test_boxes):
            figures["glimpses_on_digit"] = _on_digit(test.locations, data.test_boxes, data.image_size)
        return figures

    def write_outputs(self, figures: dict[str, Any]) -> None:
        spec, data, trainer = self.spec, self._data, self._trainer
        config = {
            "network": self.network().to_dict(),
            "classes": list(data.classes),
            "color": "gray" if data.channels == 1 else "rgb",
            "trained_on": spec.input,
            "task": figures["task"],
            "samples": spec.samples,
            "test_error_percent": figures["test_error_percent"],
        }
        self.ctx.save_model({k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}, config)
        history = trainer.history
        self.ctx.write_file("metrics.jsonl", "".join(json.dumps(row) + "\n" for row in history).encode(), "text/plain")
        if history:
            self.ctx.write_file("curves.png", curves_png(history), "image/png")
        if self.test_locations is not None and self.test_probabilities is not None and len(data.test_y):
            shown = min(EXAMPLES, len(data.test_y))
            images = data.test_x[:shown].float().div(255.0)
            predicted = self.test_probabilities[:shown].argmax(dim=1).tolist()
            titles = [
                f"{data.classes[p]} (label {data.classes[int(y)]})"
                for p, y in zip(predicted, data.test_y[:shown].tolist(), strict=True)
            ]
            drawn = trajectory_figures(trainer.model, images, self.test_locations[:shown], titles, 160)
            sheet = np.concatenate([np.pad(f, ((0, 8), (0, 0), (0, 0)), constant_values=255) for f in drawn])
            self.ctx.write_file("trajectories.png", pictures.encode_png(sheet), "image/png")


def _on_digit(locations: torch.Tensor, digit_boxes: torch.Tensor, side: int) -> float:
    """The share of glimpses (after the random first one) whose centre falls inside the digit's box."""
    if locations.shape[1] < 2:
        return 0.0
    later = locations[:, 1:]
    x = torch.floor((later[..., 0] + 1.0) * 0.5 * side)
    y = torch.floor((later[..., 1] + 1.0) * 0.5 * side)
    b = digit_boxes[:, None, :].float()
    inside = (x >= b[..., 0]) & (x < b[..., 2]) & (y >= b[..., 1]) & (y < b[..., 3])
    return round(float(inside.float().mean()), 4)


def load_model(config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> nn.Module:
    module = build_glimpse_model(config)
    module.load_state_dict(tensors, strict=True)
    return module


PLUGIN = TrainingPlugin(
    pipeline=GlimpseTraining,
    load_model=load_model,
    report=ReportHooks(sections=training_sections),
)
