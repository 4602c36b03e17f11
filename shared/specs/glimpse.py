"""The glimpse-network job specs (Recurrent Attention Model; Mnih et al. 2014): ``glimpse_train`` trains the
model on a digit task made from the real MNIST or on any labelled image archive, and ``glimpse``
classifies the images of any input with it, drawing where it looked. Defaults are the widely used
PyTorch version's settings (6 glimpses of 8x8, Adam 3e-4, batch 128, policy std 0.05, 10 Monte-Carlo
samples at test time)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from shared.specs.base import ArchiveSpec, TrainedModelRef, TrainedModelUse, TrainingSpec, check_input_uri

DIGIT_TASKS = ("builtin:mnist", "builtin:mnist_translated", "builtin:mnist_cluttered")
_TRAIN_INPUT = re.compile(
    r"^(builtin:mnist(_translated|_cluttered)?|upload://[A-Za-z0-9_-]+|s3://[a-z0-9][a-z0-9.-]{1,62}/\S+)$"
)


# Booleans are StrictBool: JSON Schema says boolean, so 0 or "yes" is a 422, not a quiet False or True.


class GlimpseTrainSpec(TrainingSpec):
    """Train a Recurrent Attention Model: a glimpse sensor (k patches around a location, each ``scale`` times
    as wide as the last, shrunk to ``patch_size``), a glimpse network, a recurrent core, a Gaussian location
    policy trained by REINFORCE with a learned baseline, and an action network trained by cross-entropy."""

    kind: Literal["glimpse_train"]
    input: str = Field(
        ...,
        examples=["builtin:mnist_cluttered"],
        description="builtin:mnist (28x28), builtin:mnist_translated (the digit at a random place on a canvas_size "
        "canvas), builtin:mnist_cluttered (the same with distractors: random 8x8 crops of other digits), or an "
        "ImageFolder archive (upload://ID, s3://bucket/archive.tar, s3://bucket/prefix/: one folder per class)",
    )
    canvas_size: int | None = Field(
        None, ge=28, le=256, description="Digit tasks: canvas side (default 28 for builtin:mnist, else 60)"
    )
    distractors: int | None = Field(
        None, ge=0, le=64, description="builtin:mnist_cluttered: 8x8 distractor crops (default 4; the paper: 8 on 100)"
    )
    input_size: int = Field(28, ge=8, le=256, description="Archives: images are resized to input_size square")
    color: Literal["gray", "rgb"] = Field("gray", description="Archives: images as grayscale or RGB")
    glimpses: int = Field(6, ge=1, le=64, description="Glimpses per image (T)")
    patch_size: int = Field(
        8, ge=2, le=128, description="Side of the innermost patch, and of every patch after shrinking"
    )
    scales: int = Field(1, ge=1, le=8, description="Patches per glimpse (k)")
    scale: float = Field(2.0, ge=1.0, le=8.0, description="Each patch is this many times as wide as the last")
    glimpse_hidden: int = Field(128, ge=4, le=4096, description="Units for what the patches show")
    location_hidden: int = Field(128, ge=4, le=4096, description="Units for where they are")
    hidden: int = Field(256, ge=4, le=8192, description="Core units")
    core: Literal["rnn", "lstm"] = Field("rnn", description="The paper's ReLU RNN core, or an LSTM")
    std: float = Field(0.05, gt=0.0, le=1.0, description="Fixed std of the Gaussian location policy")
    reinforce_weight: float = Field(
        0.01, ge=0.0, le=100.0, description="Weight of the REINFORCE term in the hybrid loss (the PyTorch version's)"
    )
    samples: int = Field(10, ge=1, le=100, description="Monte-Carlo samples averaged per image at evaluation (M)")
    epochs: int = Field(200, ge=1, le=2000, description="At most this many epochs")
    patience: int = Field(
        50, ge=0, le=2000, description="Stop after this many epochs without a better validation accuracy (0: never)"
    )
    batch_size: int = Field(128, ge=1, le=8192)
    learning_rate: float = Field(3e-4, gt=0.0, le=1.0, description="Adam")
    lr_schedule: Literal["plateau", "constant"] = Field(
        "plateau",
        description="plateau: the rate falls by lr_factor after lr_patience epochs without a better validation accuracy",
    )
    lr_patience: int = Field(20, ge=1, le=1000)
    lr_factor: float = Field(0.1, gt=0.0, lt=1.0)
    validation_fraction: float = Field(
        0.1, gt=0.0, lt=0.9, description="Share of the training images held out to validate"
    )
    train_items: int | None = Field(
        None, ge=2, le=60_000, description="Digit tasks: the first N training digits (before the validation cut)"
    )
    test_items: int | None = Field(None, ge=1, le=10_000, description="Digit tasks: the first N test digits")
    test_fraction: float = Field(0.1, gt=0.0, lt=0.9, description="Archives: share held out for testing")
    max_items: int = Field(200_000, ge=3, le=2_000_000, description="Archives: images held in memory at most")
    random_locations: StrictBool = Field(
        False, description="A control: glimpse at uniformly random places instead of the learned policy's"
    )

    @field_validator("input")
    @classmethod
    def _input_uri(cls, value: str) -> str:
        usage = (
            "input must be builtin:mnist, builtin:mnist_translated, builtin:mnist_cluttered, upload://ID or "
            "s3://bucket/archive-or-prefix"
        )
        return check_input_uri(value, _TRAIN_INPUT, usage)

    @model_validator(mode="after")
    def _check(self) -> GlimpseTrainSpec:
        if self.input not in DIGIT_TASKS and (self.canvas_size is not None or self.distractors is not None):
            raise ValueError("canvas_size and distractors are for the built-in digit tasks")
        if self.input == "builtin:mnist" and self.canvas_size not in (None, 28):
            raise ValueError("canvas_size: builtin:mnist is 28x28; use builtin:mnist_translated for a larger canvas")
        if self.distractors is not None and self.input != "builtin:mnist_cluttered":
            raise ValueError("distractors are for builtin:mnist_cluttered")
        return self

    @property
    def task(self) -> str | None:
        """The digit task's name (``mnist_cluttered``), or None for an archive."""
        return self.input.removeprefix("builtin:") if self.input in DIGIT_TASKS else None


class GlimpseSpec(ArchiveSpec):
    """Classify every image of an input with a trained glimpse network: the class, its probability, the
    locations visited and the trajectory figure (each glimpse's patches as nested boxes, numbered in
    order, beside what the retina saw at each step)."""

    kind: Literal["glimpse"]
    model: TrainedModelRef = Field(..., description="The glimpse_train job: {'job': ID}")
    samples: int = Field(
        1, ge=1, le=100, description="Monte-Carlo samples per image: their class probabilities are averaged"
    )
    seed: int = Field(0, ge=0, description="Seeds each image's own first location and policy noise")
    figure: StrictBool = Field(True, description="Write the trajectory figure per image (trajectory.png)")
    raw_glimpses: StrictBool = Field(
        False,
        description="Also write what the retina saw as float16 glimpses.npy (glimpses x scales x channels x patch "
        "x patch); figure or raw_glimpses must be on",
    )
    panel_size: int = Field(160, ge=48, le=1024, description="Side of the image panel of the figure")
    batch_size: int = Field(64, ge=1, le=4096)

    @model_validator(mode="after")
    def _some_output(self) -> GlimpseSpec:
        if not (self.figure or self.raw_glimpses):
            raise ValueError("every image needs an output: keep figure or turn on raw_glimpses")
        return self

    def trained_models(self) -> list[TrainedModelUse]:
        return [TrainedModelUse("model.job", self.model.job, "glimpse_network")]
