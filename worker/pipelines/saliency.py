"""The ``saliency`` kind's plug-in: one method (``saliency_method``) or several compared on the same
images (``saliency_compare``), and how its results are shown: the overlay stands for an image, the
object map, boxes, signed map and receptive fields sit beside it, compared methods side by side."""

from __future__ import annotations

from typing import Any

from shared.specs.saliency import SaliencySpec
from worker.pipelines.base import MapPipeline, PipelineContext
from worker.pipelines.plugin import MapPlugin, ReportHooks
from worker.pipelines.saliency_compare import SaliencyComparison
from worker.pipelines.saliency_method import SaliencyPipeline
from worker.pipelines.saliency_quality import SaliencySummary, saliency_sections

_BESIDE = frozenset({"boxes", "objects", "signed", "receptive_field", "unit_grid", "overlay_rank2", "overlay_rank3"})
"""Outputs shown small beside an item's overlay (the heatmap repeats the overlay, so it is left out)."""


def saliency_pipeline(spec: SaliencySpec, ctx: PipelineContext) -> MapPipeline:
    """One method, or a comparison of several."""
    return SaliencyComparison(spec, ctx) if spec.methods else SaliencyPipeline(spec, ctx)


def caption(item: dict[str, Any]) -> list[str]:
    lines = []
    unit = item.get("unit")
    if unit:
        where = f" at {unit['position']}" if unit.get("position") else ""
        lines.append(f"unit {unit['layer']}:{unit['channel']}{where}, activation {unit['activation']:.3g}")
    if item.get("units"):
        layers = sorted({u["layer"] for u in item["units"]})
        lines.append(f"{len(item['units'])} units of {', '.join(layers)}")
    if item.get("boxes") is not None:
        lines.append(f"{len(item['boxes'])} object box(es)")
    target = item.get("target")
    if target:
        prob = next((p["probability"] for p in item.get("predictions", []) if p["class"] == target["class"]), None)
        lines.append(f"{target['label']}" + (f" ({prob:.0%})" if prob is not None else ""))
    return lines


def panels(item: dict[str, Any]) -> list[tuple[str, str]]:
    """A comparison: each method's overlay, marked with its pointing-game result where there is one."""
    out = []
    for method, data in (item.get("methods") or {}).items():
        hit = (data.get("quality") or {}).get("pointing_hit")
        mark = "" if hit is None else (" ✓" if hit else " ✗")
        out.append((f"{method}{mark}", f"overlay:{method}"))
    return out


PLUGIN = MapPlugin(
    pipeline=saliency_pipeline,
    report=ReportHooks(
        preview=("overlay", "overlay_rank1"),
        beside=lambda name: name in _BESIDE,
        caption=caption,
        panels=panels,
        summary=SaliencySummary,
        sections=saliency_sections,
    ),
)
