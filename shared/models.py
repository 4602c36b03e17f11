"""Model references: which network a job explains, with its weights, preprocessing and class names.

Names only live here (no torch): the worker's model zoo turns a reference into an ``nn.Module``.
Weights are never downloaded unless the operator allows it (``FOVEA_ALLOW_DOWNLOADS``):

- ``null``                          random initialisation (useful for tests and timing);
- ``assets:weights/FILE``           a safetensors file in the operator's assets folder (FOVEA_ASSETS_DIR);
- ``upload://ID`` / ``s3://B/K``    a safetensors file in the object store (never pickle);
- ``torchvision:DEFAULT``           torchvision's own weights from the local torch cache (TORCH_HOME).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from shared.strict import RequestModel
from shared.uris import parse_s3_uri

ARCHITECTURES = (
    "squeezenet1_1",
    "mobilenet_v2",
    "resnet18",
    "resnet50",
    "vgg16",
    "alexnet",
    "tiny_cnn",
    "inception5h",
    "inception_v3",
)

Preprocessing = Literal["imagenet", "symmetric", "unit", "inception5h"]
"""imagenet: RGB/255 then ImageNet mean/std; symmetric: RGB/127.5 - 1; unit: RGB/255;
inception5h: RGB in 0..255 minus 117 (the original DeepDream GoogLeNet)."""

ClassNames = Literal["imagenet", "inception5h"]
"""Named label sets: torchvision's 1000 ImageNet classes, or inception5h's 1008 outputs (its labels file
in the assets folder; indices 0 and 1001..1007 are unused)."""

CLASS_COUNTS = {"imagenet": 1000, "inception5h": 1008}

_WEIGHTS = re.compile(r"^(assets:[A-Za-z0-9._/-]+|upload://[A-Za-z0-9_-]+|s3://\S+|torchvision:[A-Z0-9_]+)$")


def check_weights(value: str) -> str:
    """A weights reference of the allowed forms (see the module docstring), in its canonical spelling."""
    if not _WEIGHTS.match(value):
        raise ValueError("weights must be null, assets:PATH, upload://ID, s3://BUCKET/KEY or torchvision:NAME")
    if value.startswith("assets:") and any(
        part in ("", ".", "..") for part in value.removeprefix("assets:").split("/")
    ):
        raise ValueError("weights path must not contain '..', '.' or empty segments")
    if value.startswith("s3://"):
        location = parse_s3_uri(value)
        if location.is_prefix:
            raise ValueError("weights must name one object, not a prefix")
    return value


PRESETS: dict[str, dict[str, object]] = {
    "squeezenet1_1-imagenet": {
        "arch": "squeezenet1_1",
        "weights": "assets:weights/squeezenet1_1-imagenet.safetensors",
        "preprocessing": "imagenet",
        "class_names": "imagenet",
    },
    "mobilenet_v2-imagenet": {
        "arch": "mobilenet_v2",
        "weights": "assets:weights/mobilenet_v2-imagenet-int8.safetensors",
        "preprocessing": "symmetric",
        "class_names": "imagenet",
    },
    "inception5h": {
        "arch": "inception5h",
        "weights": "assets:weights/inception5h.safetensors",
        "preprocessing": "inception5h",
        "class_names": "inception5h",
        "num_classes": 1008,
    },
}


class ModelRef(RequestModel):
    """A network to explain: a ``job`` that trained one, a ``preset`` name, or ``arch`` with explicit weights."""

    model_config = ConfigDict(extra="forbid")

    job: str | None = Field(
        None, max_length=64, description="The classifier trained by this classifier_train job (same tenant)"
    )
    preset: str | None = Field(None, description=f"One of: {', '.join(PRESETS)}", examples=["squeezenet1_1-imagenet"])
    arch: str | None = Field(None, description=f"One of: {', '.join(ARCHITECTURES)}")
    weights: str | None = Field(
        None, description="null (random init), assets:..., upload://..., s3://..., torchvision:DEFAULT"
    )
    num_classes: int = Field(1000, ge=1, le=100_000)
    seed: int = Field(
        0, ge=0, description="With null weights: seeds the random initialisation (same seed, same network)"
    )
    preprocessing: Preprocessing = "imagenet"
    input_size: int = Field(224, ge=16, le=1024, description="The model's input is input_size x input_size")
    resize: Literal["squash", "center_crop", "pad"] = Field(
        "squash",
        description="How an image becomes the model's square input: squash (the whole image resized, aspect not "
        "kept; the map covers all of it), center_crop (shorter side to input_size x 256/224, then the centre: the "
        "ImageNet weights' evaluation transform; the map is blank outside the crop) or pad (aspect kept, the rest "
        "the mean image; the map covers all of it)",
    )
    class_names: ClassNames | list[str] | None = Field(
        None,
        description="'imagenet' for the 1000 ImageNet classes, 'inception5h' for that network's 1008 labels, "
        "a list, or null for indices",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("preset") is not None:
            preset = PRESETS.get(str(data["preset"]))
            if preset is None:
                raise ValueError(f"unknown preset {data['preset']!r}; known: {', '.join(PRESETS)}")
            return {**preset, **{k: v for k, v in data.items() if v is not None}}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelRef:
        if self.job is not None:
            if self.arch is not None or self.weights is not None or self.preset is not None:
                raise ValueError("a 'job' model takes its architecture and weights from that job: give only resize")
            if not re.fullmatch(r"[A-Za-z0-9_-]+", self.job):
                raise ValueError("job must be a job id")
            return self
        if self.arch is None:
            raise ValueError("give 'job', 'preset' or 'arch'")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {self.arch!r}; known: {', '.join(ARCHITECTURES)}")
        if self.weights is not None:
            check_weights(self.weights)
        if isinstance(self.class_names, str) and self.num_classes != CLASS_COUNTS[self.class_names]:
            raise ValueError(f"class_names {self.class_names!r} needs num_classes {CLASS_COUNTS[self.class_names]}")
        if isinstance(self.class_names, list) and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names for {self.num_classes} classes")
        return self
