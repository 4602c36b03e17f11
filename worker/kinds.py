"""The worker side of the kind registry: each kind's plug-in, imported from the module its registry
entry names (``shared.kinds``), checked against its shape, and cached per process."""

from __future__ import annotations

import importlib
from functools import cache

from shared.kinds import KINDS, Kind, Shape, kind_of
from worker.pipelines.plugin import MapPlugin, TrainingPlugin


@cache
def _plugin(name: str) -> MapPlugin | TrainingPlugin:
    entry = kind_of(name)
    plugin = getattr(importlib.import_module(entry.plugin), "PLUGIN", None)
    wanted = TrainingPlugin if entry.shape is Shape.TRAIN else MapPlugin
    if not isinstance(plugin, wanted):
        raise TypeError(f"{entry.plugin}.PLUGIN must be a {wanted.__name__} for the {entry.shape} kind {name!r}")
    return plugin


def map_plugin(name: str) -> MapPlugin:
    plugin = _plugin(name)
    if not isinstance(plugin, MapPlugin):
        raise TypeError(f"{name!r} is a training kind")
    return plugin


def training_plugin(name: str) -> TrainingPlugin:
    plugin = _plugin(name)
    if not isinstance(plugin, TrainingPlugin):
        raise TypeError(f"{name!r} is not a training kind")
    return plugin


def plugin_of(entry: Kind) -> MapPlugin | TrainingPlugin:
    return _plugin(entry.name)


def load_all() -> None:
    """Import every kind's plug-in now (a worker does it before it forks its pool)."""
    for name in KINDS:
        _plugin(name)
