"""The ``classifier_train`` kind: a small CNN trained, or a torchvision backbone fine-tuned, on built-in
shapes or digits or on an ImageFolder archive, so that any data set has a model to explain. The loop is
``classifier_loop.Trainer``; this module is its data, its model and its place in the training contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from shared.specs.classifier import ClassifierTrainSpec
from worker.inputs.imagefolder import labelled_from_members, split
from worker.inputs.shapes import LabelledImages, make_digits, make_shapes
from worker.nets import zoo
from worker.pictures.plots import finish_png, new_figure
from worker.pipelines.classifier_loop import TrainData, Trainer, to_tensor_images
from worker.pipelines.plugin import ReportHooks, Section, TrainingPlugin
from worker.pipelines.training_base import TrainingContext, TrainingPipeline

_DATA_FIELDS = {"input", "input_size", "seed", "train_items", "test_items", "test_fraction", "max_items"}


class ClassifierTraining(TrainingPipeline):
    spec: ClassifierTrainSpec

    def __init__(self, spec: ClassifierTrainSpec, ctx: TrainingContext) -> None:
        super().__init__(spec, ctx)
        self.data: TrainData | None = None
        self.trainer: Trainer | None = None

    def load_data(self) -> None:
        spec = self.spec
        key = "classifier:" + spec.model_dump_json(include=_DATA_FIELDS)
        train, test, skipped = self.ctx.cached(key, self._labelled)
        device = self.ctx.device
        self.data = TrainData(
            train_x=to_tensor_images(train.images, spec.input_size, device),
            train_y=torch.from_numpy(train.labels).to(device),
            test_x=to_tensor_images(test.images, spec.input_size, device),
            test_y=torch.from_numpy(test.labels).to(device),
            classes=train.classes,
            skipped=skipped,
        )

    def _labelled(self) -> tuple[LabelledImages, LabelledImages, int]:
        """Train and test sets and the count of unusable archive members (built once per process)."""
        spec = self.spec
        if spec.input == "builtin:shapes":
            return (
                make_shapes(spec.train_items, spec.input_size, spec.seed),
                make_shapes(spec.test_items, spec.input_size, spec.seed + 1_000_003),
                0,
            )
        if spec.input == "builtin:digits":
            return *split(make_digits(), spec.test_fraction, spec.seed), 0
        data, skipped = labelled_from_members(
            self.ctx.members(spec.input),
            size=spec.input_size,
            max_items=spec.max_items,
            max_pixels=self.ctx.limits.max_image_pixels,
            max_bytes=self.ctx.limits.max_item_bytes,
        )
        return *split(data, spec.test_fraction, spec.seed), len(skipped)

    def build(self, *, resuming: bool) -> None:
        """Seeded initialisation (without touching the process's global generator); on a fresh start,
        optionally from given weights with a new classifier layer."""
        spec, data = self.spec, self._data
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            if spec.weights is None or resuming:
                model = zoo.build(spec.arch, len(data.classes))
            else:
                pretrained = zoo.build(spec.arch, 1000)
                pretrained.load_state_dict(self.ctx.weights(spec.weights, spec.arch))
                model = zoo.replace_classifier(pretrained, len(data.classes))
        self.trainer = Trainer(
            model.to(self.ctx.device),
            data,
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            weight_decay=spec.weight_decay,
            preprocessing=spec.preprocessing,
            seed=spec.seed,
        )

    @property
    def _data(self) -> TrainData:
        if self.data is None:
            raise RuntimeError("load_data() first")
        return self.data

    @property
    def _trainer(self) -> Trainer:
        if self.trainer is None:
            raise RuntimeError("build() first")
        return self.trainer

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
        data, final = self._data, self._trainer.history[-1]
        return {
            "epochs": self._trainer.epoch,
            "train_items": len(data.train_y),
            "test_items": len(data.test_y),
            "skipped_items": data.skipped,
            "classes": list(data.classes),
            "test_accuracy": round(final["test_accuracy"], 4),
            "test_loss": round(final["test_loss"], 4),
        }

    def write_outputs(self, figures: dict[str, Any]) -> None:
        spec = self.spec
        config = {
            "arch": spec.arch,
            "num_classes": len(self._data.classes),
            "input_size": spec.input_size,
            "preprocessing": spec.preprocessing,
            "class_names": list(self._data.classes),
        }
        self.ctx.save_model(self._trainer.model.state_dict(), config)
        self.ctx.write_file("curves.png", curves_png(self._trainer.history), "image/png")


def curves_png(history: list[dict[str, float]]) -> bytes:
    epochs = [h["epoch"] for h in history]
    figure, axes = new_figure(2, (9, 3.4))
    loss_axis, accuracy_axis = axes
    loss_axis.plot(epochs, [h["train_loss"] for h in history], label="train")
    loss_axis.plot(epochs, [h["test_loss"] for h in history], label="test")
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    accuracy_axis.plot(epochs, [h["train_accuracy"] for h in history], label="train")
    accuracy_axis.plot(epochs, [h["test_accuracy"] for h in history], label="test")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    return finish_png(figure, axes)


def load_model(config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> nn.Module:
    module = zoo.build(config["arch"], config["num_classes"])
    module.load_state_dict(tensors, strict=True)
    return module


def sections(summary: dict[str, Any]) -> list[Section]:
    classes = summary.get("classes", [])
    shown = ", ".join(classes[:20]) + (", …" if len(classes) > 20 else "")
    rows = (
        ("test accuracy", f"{summary['test_accuracy']:.2%}"),
        ("test loss (cross-entropy)", f"{summary['test_loss']:.4f}"),
        ("epochs", str(summary["epochs"])),
        (f"classes ({len(classes)})", shown),
        ("training / test images", f"{summary['train_items']} / {summary['test_items']}"),
        ("archive members skipped", str(summary["skipped_items"])),
    )
    return [Section("Result", rows=rows)]


PLUGIN = TrainingPlugin(
    pipeline=ClassifierTraining,
    load_model=load_model,
    report=ReportHooks(sections=sections),
)
