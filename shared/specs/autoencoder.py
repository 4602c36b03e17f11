"""The autoencoder job specs: ``autoencoder_train`` (every variant of the Keras blog and the course, in one
spec with an ``architecture`` field) and ``autoencoder_apply`` (a trained autoencoder over an archive:
codes, reconstructions, errors, a 2-D map)."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from shared.specs.base import ArchiveSpec, TrainedModelRef, TrainedModelUse, TrainingSpec, check_input_uri

_TRAIN_INPUT = re.compile(r"^(builtin:mnist|upload://[A-Za-z0-9_-]+|s3://[a-z0-9][a-z0-9.-]{1,62}/\S+)$")

Architecture = Literal["dense", "deep", "conv", "linear", "tied", "sparse", "multimodal"]

DEFAULT_HIDDEN: dict[str, list[int]] = {
    "dense": [],
    "deep": [128, 64],
    "tied": [],
    "sparse": [],
    "multimodal": [128],
    "linear": [],
}
"""Hidden widths between the image and the code, per dense-family architecture (the decoder mirrors them)."""


def conv_fits(size: int, layers: int) -> bool:
    """Whether the conv decoder (2x upsampling per layer, the last convolution 'same' or 'valid') can
    return to ``size`` pixels; the worker's network does the same arithmetic."""
    encoded = size
    for _ in range(layers):
        encoded = math.ceil(encoded / 2)
    before_last = encoded * 2 ** (layers - 1)
    return size in (2 * before_last, 2 * (before_last - 2))


class AutoencoderTrainSpec(TrainingSpec):
    """Train an autoencoder on MNIST, an image archive or an object-store prefix (no labels needed).

    ``architecture``: ``dense`` (784-32-784, ReLU code, sigmoid output), ``deep`` (784-128-64-32-64-128-784),
    ``conv`` (the Keras blog's 16-8-8 conv + max-pool encoder, 4x4x8 code at 28 px, upsampling decoder),
    ``linear`` (one hidden layer, no activation, squared error: the SVD case), ``tied`` (decoder weights are
    the encoder's transposed), ``sparse`` (L1 penalty on the code) or ``multimodal`` (each image with its
    attribute vector through two encoders into one joint code). ``denoising`` trains any of them to
    remove Gaussian noise.
    """

    kind: Literal["autoencoder_train"]
    input: str = Field(
        ...,
        examples=["builtin:mnist"],
        description="builtin:mnist (the real MNIST from the assets folder), upload://ID (an image archive), "
        "s3://bucket/archive.tar or s3://bucket/prefix/",
    )
    architecture: Architecture = "dense"
    code_size: int | None = Field(
        None, ge=2, le=4096, description="Units of the code (default 32); conv: its last feature map is the code"
    )
    code_activation: Literal["auto", "relu", "linear"] = Field(
        "auto",
        description="The code layer's activation: relu (the blog's), linear, or auto: relu for codes of 4 units "
        "and more, linear for 2-3 units (a 2-D code to plot), where a ReLU unit that dies collapses the map to a "
        "line. conv's code is its last feature map and linear's is linear: auto only",
    )
    hidden_sizes: list[int] | None = Field(
        None,
        max_length=8,
        description="Widths between image and code (default dense/tied/sparse [], deep [128, 64], multimodal [128])",
    )
    conv_channels: list[int] = Field(
        [16, 8, 8], min_length=1, max_length=5, description="conv: widths of the encoder's conv + max-pool layers"
    )
    loss: Literal["bce", "mse"] | None = Field(None, description="Default bce; linear: mse (squared error) only")
    l1_weight: float | None = Field(
        None, ge=0.0, le=1.0, description="sparse: weight of the L1 penalty on the code (default 1e-5, the blog's)"
    )
    denoising: bool = Field(False, description="Train to remove noise: Gaussian noise on the input only, target clean")
    noise_factor: float = Field(0.5, gt=0.0, le=5.0, description="denoising: noise std, the result clipped to [0, 1]")
    attributes: Literal["class", "sidecar"] | None = Field(
        None,
        validate_default=True,
        description="multimodal: each image's attribute vector: 'class' (the label one-hot: MNIST's digit or the "
        "ImageFolder class) or 'sidecar' (numbers from NAME.json beside NAME.png, or an attributes.json mapping)",
    )
    attribute_weight: float = Field(1.0, ge=0.0, le=100.0, description="multimodal: weight of the attribute loss")
    color: Literal["gray", "rgb"] = Field("gray", description="Images are converted to grayscale (1 channel) or RGB")
    input_size: int = Field(28, ge=8, le=256, description="Images are resized to input_size x input_size")
    epochs: int = Field(50, ge=1, le=1000)
    batch_size: int | None = Field(None, ge=1, le=8192, description="Default 128 for conv, 256 otherwise (the blog's)")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="Adam")
    lr_schedule: Literal["constant", "cosine"] | None = Field(
        None,
        description="Default constant (the blog's); linear: cosine decay to zero, which takes out the minibatch "
        "noise that otherwise holds its subspace degrees off the SVD's",
    )
    train_items: int | None = Field(None, ge=2, le=60_000, description="builtin:mnist: the first N training digits")
    test_items: int | None = Field(None, ge=1, le=10_000, description="builtin:mnist: the first N test digits")
    test_fraction: float = Field(0.1, gt=0.0, lt=1.0, description="Other inputs: share held out for testing")
    max_items: int = Field(200_000, ge=2, le=2_000_000, description="Archives: images held in memory at most")

    @field_validator("input")
    @classmethod
    def _input_uri(cls, value: str) -> str:
        return check_input_uri(
            value, _TRAIN_INPUT, "input must be builtin:mnist, upload://ID or s3://bucket/archive-or-prefix"
        )

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: str | None, info: ValidationInfo) -> str | None:
        architecture = info.data.get("architecture")
        if architecture == "multimodal" and value is None:
            raise ValueError(
                "multimodal needs attributes: 'class' (the label one-hot) or 'sidecar' (numbers per image)"
            )
        if architecture not in (None, "multimodal") and value is not None:
            raise ValueError("attributes are for architecture 'multimodal'")
        if value == "sidecar" and info.data.get("input") == "builtin:mnist":
            raise ValueError("builtin:mnist has no sidecar files: use attributes 'class'")
        return value

    @field_validator("hidden_sizes")
    @classmethod
    def _hidden(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not all(1 <= width <= 16384 for width in value):
            raise ValueError("hidden widths must be between 1 and 16384")
        return value

    @field_validator("conv_channels")
    @classmethod
    def _conv_channels(cls, value: list[int]) -> list[int]:
        if not all(1 <= width <= 512 for width in value):
            raise ValueError("conv widths must be between 1 and 512")
        return value

    @model_validator(mode="after")
    def _check(self) -> AutoencoderTrainSpec:
        arch = self.architecture
        if arch == "conv":
            if self.code_size is not None or self.hidden_sizes is not None:
                raise ValueError(
                    "code_size and hidden_sizes are for dense architectures: conv's code is its last "
                    "feature map (set conv_channels)"
                )
            if not conv_fits(self.input_size, len(self.conv_channels)):
                raise ValueError(
                    f"input_size {self.input_size} does not fit a {len(self.conv_channels)}-layer conv "
                    "autoencoder (multiples of 4 fit three layers)"
                )
        if arch in ("conv", "linear") and self.code_activation != "auto":
            raise ValueError(f"code_activation is fixed for {arch}: leave it auto")
        if arch == "linear" and self.hidden_sizes:
            raise ValueError("linear has one hidden layer, the code: hidden_sizes must be empty")
        if arch == "linear" and self.loss == "bce":
            raise ValueError("linear is the squared-error (SVD) case: loss must be mse")
        if self.l1_weight is not None and arch != "sparse":
            raise ValueError("l1_weight is for architecture 'sparse'")
        return self

    @property
    def resolved_loss(self) -> str:
        return self.loss or ("mse" if self.architecture == "linear" else "bce")

    @property
    def resolved_batch_size(self) -> int:
        return self.batch_size or (128 if self.architecture == "conv" else 256)

    @property
    def resolved_schedule(self) -> str:
        return self.lr_schedule or ("cosine" if self.architecture == "linear" else "constant")

    @property
    def resolved_code_size(self) -> int:
        return self.code_size or 32

    @property
    def resolved_code_activation(self) -> str:
        if self.architecture == "linear":
            return "linear"
        if self.code_activation != "auto":
            return self.code_activation
        return "linear" if self.architecture != "conv" and self.resolved_code_size <= 3 else "relu"

    @property
    def resolved_hidden(self) -> list[int]:
        return list(self.hidden_sizes) if self.hidden_sizes is not None else DEFAULT_HIDDEN.get(self.architecture, [])

    @property
    def resolved_l1_weight(self) -> float:
        if self.architecture != "sparse":
            return 0.0
        return 1e-5 if self.l1_weight is None else self.l1_weight

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3


class AutoencoderApplySpec(ArchiveSpec):
    """Run a trained autoencoder over an archive: per image its code (one ``arrays/code.npy`` for the job),
    its reconstruction (or denoised image), its reconstruction error and its place on the 2-D map; the
    job ranks images by error (the most anomalous first) and draws the whole archive's map."""

    kind: Literal["autoencoder_apply"]
    model: TrainedModelRef = Field(..., description='The autoencoder_train job: {"job": ID}')
    add_noise: bool = Field(
        False,
        description="Denoising models: add the model's training noise to each image first (seeded per image), "
        "write noisy.png, and measure the error against the clean image",
    )
    seed: int = Field(0, ge=0, description="Seeds add_noise")
    anomalies: int = Field(24, ge=0, le=256, description="How many of the highest-error images the report shows")
    write_inputs: bool = Field(
        True,
        description="Also write input.png, the image as the model sees it (shown beside its reconstruction); "
        "false halves the objects written per image",
    )
    batch_size: int = Field(256, ge=1, le=8192)

    def trained_models(self) -> list[TrainedModelUse]:
        return [TrainedModelUse("model.job", self.model.job, "autoencoder")]
