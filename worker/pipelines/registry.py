"""Job kind -> pipeline class. Read-only: new kinds are added here and to shared.specs.JobSpec."""

from __future__ import annotations

from types import MappingProxyType

from worker.pipelines.base import MapPipeline
from worker.pipelines.deepdream import DeepDreamPipeline
from worker.pipelines.feature_visualization import FeatureVisualizationPipeline
from worker.pipelines.filters import FiltersPipeline
from worker.pipelines.inversion import InversionPipeline
from worker.pipelines.saliency import SaliencyPipeline

MAP_PIPELINES: MappingProxyType[str, type[MapPipeline]] = MappingProxyType(
    {
        "saliency": SaliencyPipeline,
        "feature_visualization": FeatureVisualizationPipeline,
        "inversion": InversionPipeline,
        "filters": FiltersPipeline,
        "deepdream": DeepDreamPipeline,
    }
)


def map_pipeline(kind: str) -> type[MapPipeline]:
    try:
        return MAP_PIPELINES[kind]
    except KeyError as exc:
        raise ValueError(f"no map pipeline for job kind {kind!r}") from exc
