"""Several saliency methods on the same images: one ``SaliencyPipeline`` per method, each writing through
a context that prefixes its files with the method, their outcomes merged per item. Outputs are named
``NAME:METHOD`` (``overlay:grad_cam``); per-method results (explained class, quality, boxes) sit under
``methods`` in the manifest, so the report can set the methods side by side."""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.models import ModelRef
from shared.specs.saliency import SaliencySpec
from worker.pipelines.base import Item, LoadedModel, MapPipeline, Outcome, PipelineContext, TrainedModel
from worker.pipelines.saliency_method import SaliencyPipeline

_PER_METHOD = ("target", "targets", "quality", "boxes", "unit", "units")
"""Manifest fields that differ between methods (predictions are the model's, the same for all)."""


class _MethodContext:
    def __init__(self, inner: PipelineContext, method: str) -> None:
        self.inner, self.method, self.device = inner, method, inner.device

    def write(self, item: Item, output: str, data: bytes, content_type: str) -> str:
        return self.inner.write(item, f"{self.method}-{output}", data, content_type)

    def write_job(self, output: str, data: bytes, content_type: str) -> str:
        return self.inner.write_job(f"{self.method}-{output}", data, content_type)

    def model(self, ref: ModelRef) -> LoadedModel:
        return self.inner.model(ref)

    def trained(self, job_id: str, model_type: str) -> TrainedModel:
        return self.inner.trained(job_id, model_type)


def method_spec(spec: SaliencySpec, method: str) -> SaliencySpec:
    """The spec one method runs: gradient-only options are kept for the gradient alone."""
    gradient = method == "gradient"
    return spec.model_copy(
        update={
            "method": method,
            "methods": None,
            "signed": spec.signed and gradient,
            "precision": spec.precision if gradient else "fp32",
        }
    )


class SaliencyComparison(MapPipeline):
    spec: SaliencySpec

    def __init__(self, spec: SaliencySpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.parts = [
            (method, SaliencyPipeline(method_spec(spec, method), _MethodContext(ctx, method)))
            for method in spec.compared
        ]
        self.batch_size = min(part.batch_size for _, part in self.parts)
        self._sums: dict[str, np.ndarray] | None = None

    def check(self) -> None:
        for _, part in self.parts:
            part.check()

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        merged = [Outcome(data={"methods": {}}) for _ in items]
        self._sums = None
        for method, part in self.parts:
            for outcome, result in zip(merged, part.run_batch(items), strict=True):
                outcome.outputs.update({f"{name}:{method}": key for name, key in result.outputs.items()})
                outcome.data["methods"][method] = {k: result.data[k] for k in _PER_METHOD if k in result.data}
                shared: dict[str, Any] = {k: v for k, v in result.data.items() if k not in _PER_METHOD}
                for key, value in shared.items():
                    outcome.data.setdefault(key, value)
            sums = part.take_batch_sums()  # taken from every part, so none carries sums into the next batch
            if self._sums is None:
                self._sums = sums  # the job's mean map is the first model-based method's
        return merged

    def take_batch_sums(self) -> dict[str, np.ndarray] | None:
        sums, self._sums = self._sums, None
        return sums
