"""What a kind's module exports as ``PLUGIN``: its pipeline factory and its report hooks.

The registry entry (``shared.kinds``) names the module; the engine and the report room ask the plug-in,
never the kind's name. Report hooks are plain data and small functions over manifest entries, so the
same captions and figures can serve the static report and any other view of the results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from worker.pipelines.base import MapPipeline, PipelineContext
from worker.pipelines.training_base import TrainingContext, TrainingPipeline


@dataclass(frozen=True)
class Figure:
    """A picture in a report section: PNG bytes made for the report, or an output already in the store."""

    alt: str
    png: bytes | None = None
    key: str | None = None
    width: int | None = None


@dataclass(frozen=True)
class Section:
    """A block of the report above the gallery: a title, a paragraph, label/value rows, a table
    (first row the header) and figures. All text is plain: the report escapes it."""

    title: str
    text: str = ""
    rows: tuple[tuple[str, str], ...] = ()
    table: tuple[tuple[str, ...], ...] = ()
    figures: tuple[Figure, ...] = ()


class JobFiles(Protocol):
    """What a job summary may touch while the job is finalised: its items' outputs and job-level files."""

    def read(self, key: str) -> bytes: ...

    def write_job(self, output: str, data: bytes, content_type: str) -> str: ...


class JobSummary(Protocol):
    """Figures over a whole job, fed one manifest entry at a time (memory stays bounded whatever the job's
    size); ``finish`` returns the summary's extra fields and may write job-level pictures."""

    def add(self, item: dict[str, Any]) -> None: ...

    def finish(self, files: JobFiles) -> dict[str, Any]: ...


class Sidecars(Protocol):
    """Members of an input that describe its images instead of being images (a captions JSON, a
    ``KEY.txt`` beside ``KEY.jpg``): read while the job is planned, then attached to each image as its
    ground truth (``Item.truth``). One reader per job."""

    def claims(self, name: str) -> bool:
        """True for a member that is description, not an item."""

    def read(self, name: str, data: bytes) -> None:
        """Take in one such member; raise ``InvalidInput`` naming the file (and line) when it is malformed."""

    def finish(self, item_names: set[str]) -> None:
        """Every member has been seen; raise ``InvalidInput`` for descriptions of images that are not there."""

    def truth(self, item_name: str) -> dict[str, Any] | None:
        """What the descriptions say of this image (JSON-able), or None."""


def _no_caption(_item: dict[str, Any]) -> list[str]:
    return []


def _nothing_beside(_output: str) -> bool:
    return False


def _no_sections(_summary: dict[str, Any]) -> list[Section]:
    return []


@dataclass(frozen=True)
class ReportHooks:
    preview: tuple[str, ...] = ()
    """Outputs that stand for an item in a gallery, the first one present (else the item's first output)."""
    preview_width: int | None = None
    """Show the preview this wide in the gallery instead of a small tile (a strip of panels)."""
    beside: Callable[[str], bool] = _nothing_beside
    """Which other outputs are shown small beside the preview."""
    caption: Callable[[dict[str, Any]], list[str]] = _no_caption
    """Lines of plain text under an item's name, from its manifest entry."""
    panels: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None
    """Instead of one preview: (label, output) pairs shown side by side (a comparison of methods)."""
    summary: Callable[[Any], JobSummary] | None = None
    """Given the spec, a fresh summary that the finaliser feeds every item."""
    sections: Callable[[dict[str, Any]], list[Section]] = _no_sections
    """Report sections from the job's summary (quality figures, training results)."""

    def stands_for(self, item: dict[str, Any]) -> str | None:
        """The output that stands for an item (its thumbnail's source): the first preview present, else
        the first panel of a comparison, else the item's first output."""
        outputs: dict[str, str] = item.get("outputs", {})
        found = next((name for name in self.preview if name in outputs), None)
        if found is None and self.panels is not None:
            found = next((output for _label, output in self.panels(item) if output in outputs), None)
        return found or next(iter(outputs), None)


@dataclass(frozen=True)
class MapPlugin:
    """A kind whose items are images of an input, or its own render targets."""

    pipeline: Callable[[Any, PipelineContext], MapPipeline]
    report: ReportHooks = field(default_factory=ReportHooks)
    sidecars: Callable[[Any], Sidecars] | None = None
    """Given the spec, a reader of the input's description members (None: every member is an item)."""


@dataclass(frozen=True)
class TrainingPlugin:
    """A kind that trains a model in checkpointed steps."""

    pipeline: Callable[[Any, TrainingContext], TrainingPipeline]
    load_model: Callable[[dict[str, Any], dict[str, torch.Tensor]], nn.Module]
    """Rebuild the trained module from its config and tensors (for ``{"job": ID}`` references)."""
    report: ReportHooks = field(default_factory=ReportHooks)
