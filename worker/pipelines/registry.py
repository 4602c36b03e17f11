"""Job kind -> pipeline class. Read-only: new kinds are added here and to shared.specs.JobSpec."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from worker.pipelines.base import MapPipeline, PipelineContext
from worker.pipelines.deepdream import DeepDreamPipeline
from worker.pipelines.feature_visualization import FeatureVisualizationPipeline
from worker.pipelines.filters import FiltersPipeline
from worker.pipelines.inversion import InversionPipeline
from worker.pipelines.saliency_compare import saliency_pipeline

PipelineFactory = Callable[[Any, PipelineContext], MapPipeline]

MAP_PIPELINES: MappingProxyType[str, PipelineFactory] = MappingProxyType(
    {
        "saliency": saliency_pipeline,
        "feature_visualization": FeatureVisualizationPipeline,
        "inversion": InversionPipeline,
        "filters": FiltersPipeline,
        "deepdream": DeepDreamPipeline,
    }
)


def map_pipeline(kind: str) -> PipelineFactory:
    try:
        return MAP_PIPELINES[kind]
    except KeyError as exc:
        raise ValueError(f"no map pipeline for job kind {kind!r}") from exc
