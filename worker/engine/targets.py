"""A feature-visualisation job's targets, one item each: ``(name, params)`` in a stable order."""

from __future__ import annotations

from typing import Any

from shared.optvis_specs import ChannelTarget, ClassTarget, FeatureVisualizationSpec


def expand_targets(spec: object) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(spec, FeatureVisualizationSpec):
        raise ValueError(f"{type(spec).__name__} has no render targets")
    out: list[tuple[str, dict[str, Any]]] = []
    for target in spec.targets:
        if isinstance(target, ClassTarget):
            out.append((f"class-{target.class_index}", {"class": target.class_index}))
            continue
        assert isinstance(target, ChannelTarget)
        channels = target.channel if isinstance(target.channel, list) else [target.channel]
        for channel in channels:
            params: dict[str, Any] = {"layer": target.layer, "channel": channel}
            name = f"{target.layer}-{channel}"
            if target.position is not None:
                params["position"] = list(target.position)
                name += f"-at-{target.position[0]}-{target.position[1]}"
            out.append((name, params))
    return out
