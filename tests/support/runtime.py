"""A worker's resources for in-process tests, with an enqueue that records what it was asked to send."""

from __future__ import annotations

from typing import Any

from shared.settings import Settings
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
