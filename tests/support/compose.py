"""The compose files as Compose reads them: YAML, then variable interpolation (``${VAR}``,
``${VAR:-default}``, ``${VAR:?error}``, ``$$`` for a literal ``$``), without a Docker engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
GPUS = REPO / "deploy" / "compose.gpus.yml"
ENV_EXAMPLE = REPO / "deploy" / "env.example"

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def raw(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def variables(path: Path) -> dict[str, str | None]:
    """Every variable a compose file interpolates -> its default (None: required or no default)."""
    found: dict[str, str | None] = {}
    for match in _VARIABLE.finditer(path.read_text()):
        name = match.group(1) or match.group(4)
        if name:
            found[name] = match.group(3) if match.group(2) in (":-", "-") else None
    return found


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``value`` with every variable replaced as Compose does; a missing required one raises KeyError."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3)
        found = env.get(name)
        if op == ":-" and not found or op == "-" and found is None:
            return str(arg)
        if found is None or op == ":?" and not found:
            raise KeyError(f"{name}: {arg or 'required'}")
        return found

    return _VARIABLE.sub(one, value)


def model(env: dict[str, str], with_gpus: bool = True) -> dict[str, Any]:
    """The application model of docker-compose.yml (and the GPU override), interpolated with ``env``.
    The override only adds whole services, so merging is adding its services."""
    merged = interpolate(raw(COMPOSE), env)
    if with_gpus:
        merged["services"].update(interpolate(raw(GPUS), env)["services"])
    return dict(merged)


def workers(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The GPU workers (the item queue); the control worker is ``control_worker``'s."""
    return {
        name: service
        for name, service in services.items()
        if service.get("command", [None])[:2] == ["fovea", "worker"] and "control" not in service["command"]
    }
