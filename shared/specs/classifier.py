"""The ``classifier_train`` job spec: a small CNN trained, or a torchvision backbone fine-tuned, so that
any labelled data set has a model to explain."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from shared.models import ARCHITECTURES, check_weights
from shared.specs.base import TrainingSpec, check_input_uri

_TRAIN_INPUT = re.compile(r"^(builtin:(shapes|digits)|upload://[A-Za-z0-9_-]+|s3://\S+)$")


class ClassifierTrainSpec(TrainingSpec):
    """Train a small CNN, or fine-tune a torchvision backbone, on a labelled data set.

    ``input``: ``builtin:shapes`` (one shape on clutter, with boxes), ``builtin:digits`` (scikit-learn's
    8x8 digits), or an archive in the ImageFolder layout (one folder per class). Training runs as
    bounded steps that checkpoint to the store and resume after a crash; later jobs refer to the model
    as ``{"job": "<id>"}``.
    """

    kind: Literal["classifier_train"]
    input: str = Field(
        ..., examples=["builtin:shapes"], description="builtin:shapes, builtin:digits, upload://ID, s3://..."
    )
    arch: str = Field("tiny_cnn", description="Any architecture of the model zoo")
    weights: str | None = Field(
        None, description="Start from these weights (fine-tuning); the classifier layer is replaced"
    )
    input_size: int = Field(64, ge=16, le=512)
    preprocessing: Literal["imagenet", "symmetric", "unit"] = "unit"
    epochs: int = Field(5, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=4096)
    learning_rate: float = Field(2e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    train_items: int = Field(4000, ge=10, le=1_000_000, description="builtin:shapes: training images generated")
    test_items: int = Field(1000, ge=10, le=1_000_000, description="builtin:shapes: test images generated")
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Other inputs: share held out for testing")
    max_items: int = Field(200_000, ge=10, le=2_000_000, description="Archives: images held in memory at most")

    @field_validator("input")
    @classmethod
    def _input_uri(cls, value: str) -> str:
        usage = "input must be builtin:shapes, builtin:digits, upload://ID, s3://bucket/archive or s3://bucket/prefix/"
        return check_input_uri(value, _TRAIN_INPUT, usage)

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: str | None) -> str | None:
        return None if value is None else check_weights(value)

    @field_validator("arch")
    @classmethod
    def _arch(cls, value: str) -> str:
        if value not in ARCHITECTURES:
            raise ValueError(f"unknown arch {value!r}; known: {', '.join(ARCHITECTURES)}")
        return value
