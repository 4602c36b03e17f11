"""A worker's resources for in-process tests, with an enqueue that records what it was asked to send."""

from __future__ import annotations

from typing import Any

import pytest

from shared.settings import Settings
from worker.pipelines.base import Item
from worker.pipelines.saliency_method import SaliencyPipeline
from worker.runtime.resources import Resources

_SENT: dict[int, list[tuple[str, tuple[Any, ...]]]] = {}


def recording_resources(settings: Settings) -> Resources:
    sent: list[tuple[str, tuple[Any, ...]]] = []
    rt = Resources.create(settings, lambda name, args: sent.append((name, args)))
    _SENT[id(rt)] = sent
    return rt


def sent_tasks(rt: Resources) -> list[tuple[str, tuple[Any, ...]]]:
    """Every (task name, arguments) the engine enqueued through ``rt`` so far, in order."""
    return _SENT[id(rt)]


def recorded_batches(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The item indices of every batch the saliency pipeline runs from now on (it still runs them)."""
    batches: list[list[int]] = []
    original = SaliencyPipeline.run_batch

    def recorded(self: SaliencyPipeline, items: list[Item]) -> list[Any]:
        batches.append([item.index for item in items])
        return original(self, items)

    monkeypatch.setattr(SaliencyPipeline, "run_batch", recorded)
    return batches
