"""The one registry of job kinds: the only place a kind is declared.

Each entry names the kind's spec type, its shape, the worker-side plug-in that runs it, and (for training
kinds) the type of model it leaves behind. Everything else is derived from here: the spec union the API
validates, the kind list of its docs and errors, and which engine path a job takes. The plug-in is a
module path (``worker.pipelines.saliency``), resolved only on workers, so ``shared`` and the API never
import torch; the module's ``PLUGIN`` holds the pipeline factory and the report hooks.

Adding a kind: its spec (``shared/specs/``), its pipeline module (``worker/pipelines/``) with a
``PLUGIN``, one entry below, its tests and its docs.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field, TypeAdapter

from shared.specs.autoencoder import AutoencoderApplySpec, AutoencoderTrainSpec
from shared.specs.base import ArchiveSpec, SpecBase, TargetsSpec, TrainingSpec
from shared.specs.captioning import CaptioningTrainSpec, CaptionSpec
from shared.specs.classifier import ClassifierTrainSpec
from shared.specs.glimpse import GlimpseSpec, GlimpseTrainSpec
from shared.specs.optvis import DeepDreamSpec, FeatureVisualizationSpec, FiltersSpec, InversionSpec
from shared.specs.saliency import SaliencySpec


class Shape(StrEnum):
    MAP = "map"
    """One result per image of the input, planned into shards."""
    TARGETS = "targets"
    """The spec's own targets are the items (one rendered image each), planned into shards."""
    TRAIN = "train"
    """A chain of bounded, checkpointed training steps that leaves a model."""


_BASE_OF_SHAPE: dict[Shape, type[SpecBase]] = {
    Shape.MAP: ArchiveSpec,
    Shape.TARGETS: TargetsSpec,
    Shape.TRAIN: TrainingSpec,
}


@dataclass(frozen=True)
class Kind:
    name: str
    spec: type[SpecBase]
    shape: Shape
    plugin: str
    """The worker module whose ``PLUGIN`` runs this kind."""
    summary: str
    """One line for the API docs and the CLI."""
    produces: str | None = None
    """Training kinds: the type of model they leave (what ``{"job": ID}`` references ask for)."""

    def __post_init__(self) -> None:
        literal = typing.get_args(self.spec.model_fields["kind"].annotation)
        if literal != (self.name,):
            raise TypeError(f"{self.spec.__name__}.kind must be Literal[{self.name!r}], not {literal}")
        if not issubclass(self.spec, _BASE_OF_SHAPE[self.shape]):
            raise TypeError(f"a {self.shape} kind's spec derives from {_BASE_OF_SHAPE[self.shape].__name__}")
        if (self.produces is not None) != (self.shape is Shape.TRAIN):
            raise TypeError("training kinds, and only they, produce a model")


_ENTRIES = (
    Kind(
        "saliency",
        SaliencySpec,
        Shape.MAP,
        "worker.pipelines.saliency",
        "Saliency maps: gradient (classes and hidden units), SmoothGrad, Integrated Gradients, Grad-CAM, "
        "spectral residual",
    ),
    Kind(
        "feature_visualization",
        FeatureVisualizationSpec,
        Shape.TARGETS,
        "worker.pipelines.feature_visualization",
        "Images that maximise a class or a channel",
    ),
    Kind(
        "inversion",
        InversionSpec,
        Shape.MAP,
        "worker.pipelines.inversion",
        "Images rebuilt from a layer's representation",
    ),
    Kind(
        "filters",
        FiltersSpec,
        Shape.MAP,
        "worker.pipelines.filters",
        "First-layer filters and per-image activation maps",
    ),
    Kind("deepdream", DeepDreamSpec, Shape.MAP, "worker.pipelines.deepdream", "DeepDream over every image"),
    Kind(
        "classifier_train",
        ClassifierTrainSpec,
        Shape.TRAIN,
        "worker.pipelines.classifier_train",
        "Train or fine-tune a classifier to explain",
        produces="classifier",
    ),
    Kind(
        "captioning_train",
        CaptioningTrainSpec,
        Shape.TRAIN,
        "worker.pipelines.captioning_train",
        "Train a Show, Attend and Tell captioner (soft or hard attention) on a caption set",
        produces="captioner",
    ),
    Kind(
        "caption",
        CaptionSpec,
        Shape.MAP,
        "worker.pipelines.caption",
        "Caption images by beam search with a trained captioner, one attention map per word",
    ),
    Kind(
        "autoencoder_train",
        AutoencoderTrainSpec,
        Shape.TRAIN,
        "worker.pipelines.autoencoder_train",
        "Train an autoencoder (dense, deep, conv, linear, tied, sparse, denoising, multimodal)",
        produces="autoencoder",
    ),
    Kind(
        "autoencoder_apply",
        AutoencoderApplySpec,
        Shape.MAP,
        "worker.pipelines.autoencoder_apply",
        "Codes, reconstructions, errors and a 2-D map of an archive through a trained autoencoder",
    ),
    Kind(
        "glimpse_train",
        GlimpseTrainSpec,
        Shape.TRAIN,
        "worker.pipelines.glimpse_train",
        "Train a glimpse network (Recurrent Attention Model) on translated or cluttered MNIST or an image folder",
        produces="glimpse_network",
    ),
    Kind(
        "glimpse",
        GlimpseSpec,
        Shape.MAP,
        "worker.pipelines.glimpse",
        "Classify images with a trained glimpse network and draw where it looked",
    ),
)

KINDS: Mapping[str, Kind] = MappingProxyType({entry.name: entry for entry in _ENTRIES})


def kind_of(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError as exc:
        raise ValueError(f"unknown job kind {name!r}; known: {', '.join(KINDS)}") from exc


def producer_of(model_type: str) -> list[str]:
    """The kinds whose trained model is of this type."""
    return [entry.name for entry in KINDS.values() if entry.produces == model_type]


if TYPE_CHECKING:
    JobSpec = SpecBase
else:
    JobSpec = Annotated[Union[tuple(entry.spec for entry in _ENTRIES)], Field(discriminator="kind")]  # noqa: UP007
"""Every kind's spec, discriminated by ``kind``: the body of ``POST /v1/jobs``."""

_ADAPTER: TypeAdapter[SpecBase] = TypeAdapter(JobSpec)


def parse_spec(data: object) -> SpecBase:
    """Validate a spec from plain data (raises pydantic.ValidationError)."""
    return _ADAPTER.validate_python(data)
