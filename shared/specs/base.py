"""What every job spec shares, and the three shapes a spec can have: a map over the images of an input,
targets rendered as items, or a chain of training steps. The kind registry (``shared.kinds``) checks
that each kind's spec has the base class of its shape."""

from __future__ import annotations

import re
from abc import abstractmethod
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator

from shared.models import ModelRef
from shared.strict import RequestModel
from shared.uris import parse_s3_uri

_BUILTIN_PARAM = r"(n=\d{1,6}|seed=\d{1,9}|size=\d{2,3})"
_DIGIT_PARAM = r"(n=\d{1,5}|seed=\d{1,9}|size=\d{2,3}|distractors=\d{1,2})"
_INPUT = re.compile(
    rf"^(upload://[A-Za-z0-9_-]+|s3://\S+|builtin:(captioned_)?shapes(\?{_BUILTIN_PARAM}(&{_BUILTIN_PARAM}){{0,2}})?"
    rf"|builtin:mnist(_translated|_cluttered)?(\?{_DIGIT_PARAM}(&{_DIGIT_PARAM}){{0,3}})?)$"
)


def check_input_uri(value: str, pattern: re.Pattern[str], usage: str) -> str:
    """An input URI of the allowed forms; an ``s3://`` one must be in its one canonical spelling."""
    if not pattern.match(value):
        raise ValueError(usage)
    if value.startswith("s3://"):
        parse_s3_uri(value)  # raises ValueError saying what is wrong with the key
    return value


def _strings(value: Any, scheme: str, path: str = "") -> list[tuple[str, str]]:
    """(field path, value) of every string of the spec that starts with ``scheme``."""
    if isinstance(value, str):
        return [(path, value)] if value.startswith(scheme) else []
    if isinstance(value, dict):
        return [
            found for key, item in value.items() for found in _strings(item, scheme, f"{path}.{key}" if path else key)
        ]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _strings(item, scheme, f"{path}.{i}")]
    return []


@dataclass(frozen=True)
class TrainedModelUse:
    """A model a job takes from an earlier training job: where the spec names it, the job, and the type
    of model it must be (what the producing kind's registry entry says it ``produces``)."""

    field: str
    job: str
    model_type: str


class TrainedModelRef(RequestModel):
    """A model trained by an earlier job of the same tenant: ``{"job": ID}``."""

    model_config = ConfigDict(extra="forbid")

    job: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The training job's id")


class SpecBase(RequestModel):
    """Every job spec: its kind (the discriminator) and an optional name."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    name: str | None = Field(None, max_length=200, description="A label shown in listings and the report")

    def input_uri(self) -> str | None:
        """The input this job reads (an upload, an object, a prefix or a built-in set), if any."""
        return None

    def object_uris(self) -> list[tuple[str, str]]:
        """Every ``s3://`` URI the spec names (inputs, weights), with its field path: each is checked
        against the service's own storage area where the settings are known (API, worker)."""
        return _strings(self.model_dump(mode="json"), "s3://")

    def upload_ids(self) -> list[str]:
        """Every upload the spec uses (its input, uploaded weights): these uploads are kept."""
        return [value.removeprefix("upload://") for _, value in _strings(self.model_dump(mode="json"), "upload://")]

    def trained_models(self) -> list[TrainedModelUse]:
        """Models taken from earlier training jobs. By default every ``ModelRef`` field with a ``job``
        needs a classifier; kinds that use other trained models override this."""
        uses = []
        for field in type(self).model_fields:
            value = getattr(self, field)
            if isinstance(value, ModelRef) and value.job is not None:
                uses.append(TrainedModelUse(f"{field}.job", value.job, "classifier"))
        return uses


def _packed_outputs() -> Any:
    return Field(
        False,
        description=(
            "Store the outputs of each shard in one tar (members INDEX.NAME) instead of one object per output: "
            "for big jobs, O(shards) objects in the store. Per-item URLs still work (served by the API)"
        ),
    )


class ArchiveSpec(SpecBase):
    """A job over the images of an input: one result per image."""

    packed_outputs: bool = _packed_outputs()

    input: str = Field(
        ...,
        description=(
            "upload://ID (from POST /v1/uploads), s3://bucket/archive.tar|.tar.gz|.zip, s3://bucket/prefix/, or "
            "builtin:shapes[?n=200&seed=12345] (generated shapes with ground-truth boxes: quality figures), "
            "builtin:captioned_shapes[?n=..&seed=..&size=..] (generated scenes with captions and boxes); size: the "
            "side in pixels (default 64 and 128); a caption job over scenes of the default size whose captioner was "
            "trained on another size fails at once, naming it; "
            "builtin:mnist|mnist_translated|mnist_cluttered[?n=..&seed=..&size=..&distractors=..] (MNIST test "
            "digits, alone or placed on a larger canvas with distractors; each with its class and box)"
        ),
        examples=["upload://u_0123456789abcdef"],
    )

    def input_uri(self) -> str | None:
        return self.input

    @field_validator("input")
    @classmethod
    def _input_uri(cls, value: str) -> str:
        usage = (
            "input must be upload://ID, s3://bucket/key (an archive), s3://bucket/prefix/ or "
            "builtin:shapes|captioned_shapes[?n=N&seed=S&size=P] or "
            "builtin:mnist|mnist_translated|mnist_cluttered[?n=N&seed=S&size=SIDE&distractors=D]"
        )
        checked = check_input_uri(value, _INPUT, usage)
        size = re.search(r"[?&]size=(\d+)", checked) if checked.startswith("builtin:") else None
        if size is not None and not 32 <= int(size.group(1)) <= 512:
            raise ValueError(f"builtin size={size.group(1)}: the images' side must be 32-512 pixels")
        return checked


class TargetsSpec(SpecBase):
    """A job whose items are its own targets (one rendered image each), not the images of an input."""

    batch_size: int
    packed_outputs: bool = _packed_outputs()

    @abstractmethod
    def render_targets(self) -> list[tuple[str, dict[str, Any]]]:
        """Each item as ``(name, params)``, in a stable order (the item's index is its place here)."""


class TrainingSpec(SpecBase):
    """A job that trains a model in bounded, checkpointed steps; later jobs use it as ``{"job": ID}``."""

    input: str
    seed: int = Field(0, ge=0, description="Seeds initialisation, data order and splits: a seeded job repeats")
    step_seconds: float = Field(120.0, ge=1.0, le=1200.0, description="Training time per bounded step")

    def input_uri(self) -> str | None:
        return self.input


class Unit(RequestModel):
    """A hidden unit, or several: channels of a named layer, optionally at one position of its grid."""

    model_config = ConfigDict(extra="forbid")

    layer: str = Field(..., min_length=1, max_length=200, examples=["features.7"])
    channel: Annotated[int, Field(ge=0)] | list[Annotated[int, Field(ge=0)]] = Field(
        ...,
        description="A channel, or a list of up to 1024 distinct channels (hidden-unit saliency takes up to 64: "
        "a grid of their receptive fields per image; feature visualisation renders one image each)",
    )
    position: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] | None = Field(
        None,
        description="[row, column] in the layer's output grid: one neuron. Null: saliency explains the unit at its "
        "most active position in each image; feature visualisation maximises the channel's mean",
    )

    @property
    def channels(self) -> list[int]:
        return self.channel if isinstance(self.channel, list) else [self.channel]

    @field_validator("channel")
    @classmethod
    def _channels(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, list) and not 1 <= len(value) <= 1024:
            raise ValueError("give 1 to 1024 channels")
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("channels must be distinct")
        return value
